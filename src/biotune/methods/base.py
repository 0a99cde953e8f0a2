"""What an adaptation method provides: its hyperparameters (a pydantic model with published defaults), which
model families it fits, and `apply(model, ...)` that makes the model trainable its way (thin over peft); where a
method needs more of the training loop, it says so here and the loop asks: the schedule's length (`apply`'s
`total_steps`), callbacks run by the Trainer (`callbacks`), its own optimizer (`optimizer`), a loss its forward
computes itself (`loss_in_forward`) and work on the trained weights once saved (`finish`)."""

from __future__ import annotations

import contextlib

from pydantic import BaseModel, ConfigDict

from biotune.registry import Registry


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Method:
    name = ""
    trains = True  # False: in-context methods (zero-/few-shot), evaluated without training
    deterministic = False  # True: the seed changes nothing (greedy zero-shot); a study runs one seed
    quantized = False  # the base model is loaded in 4-bit (QLoRA)
    trains_base = False  # True: the base weights themselves train (FFT), so they are kept in fp32
    virtual_tokens = False  # True: trained virtual tokens go before the input (soft prompts)
    # True: the model's forward adds terms of the method's own to the loss (AdaLoRA's orthogonal regulariser), so
    # training takes the model's loss instead of biotune's answer-position loss (runtime.logits_at_answers)
    loss_in_forward = False
    # True: the model at the end of training is the one kept (and scored on dev), not the best dev checkpoint:
    # the method changes the adapter's structure while it trains (AdaLoRA's budget), so an earlier checkpoint
    # does not load into the final model
    keeps_final = False
    default_lr = 2e-4
    # what a study's search tries for this method where the study names no values for a field (search.defaults):
    # a log grid around the published rate, and where it comes from (said in the dry run and the README)
    search_space: dict[str, list] = {}
    search_source = ""
    params_model: type[BaseModel] = NoParams
    families: tuple[str, ...] | None = None  # None: every family

    def fits(self, family, head: str | None = None) -> bool:
        """Whether this method can adapt `family` (with this task `head`, when known)."""
        return self.families is None or family.name in self.families

    def apply(self, model, family, head: str, params: BaseModel, total_steps: int | None = None):
        """Returns the model to train, with exactly this method's parameters trainable. `total_steps`: the optimizer
        steps training will take (None where nothing trains, e.g. the cost planner's shape-only build)."""
        raise NotImplementedError

    def callbacks(self, model, params: BaseModel) -> list:
        """Trainer callbacks (transformers.TrainerCallback) the method needs while `model` trains."""
        return []

    def optimizer(self, model, params: BaseModel, learning_rate: float, weight_decay: float):
        """The optimizer to train `model` with, or None for the Trainer's own (AdamW, no decay on biases and
        norms)."""
        return None

    def finish(self, model, params: BaseModel, folder) -> None:
        """After training, with the trained weights saved in `folder` (the run's `final/`): make them what a user
        loads (e.g. an adapter expressed against the unchanged base model)."""

    def extra_flops(self, adapted: list[tuple[int, int]], params: BaseModel) -> dict[str, float]:
        """FLOPs the method adds beyond one pass through each weight a token meets (for the cost planner,
        biotune.plan), given the (in, out) features of each adapted linear layer: `train_token` per training
        token, `call` per forward pass whatever its length."""
        return {"train_token": 0.0, "call": 0.0}

    def training_context(self, model, params: BaseModel, autocast: bool) -> contextlib.AbstractContextManager:
        """What the training loop (its dev-loss evaluations included) runs in; `autocast`: it computes under
        bf16/fp16 autocast."""
        return contextlib.nullcontext()

    def prediction_context(self, model) -> contextlib.AbstractContextManager:
        """Undoes `training_context` for a prediction made inside the training loop (the dev score of a
        checkpoint), which runs as test prediction does, outside autocast."""
        return contextlib.nullcontext()


class PeftMethod(Method):
    """A method that is one peft config."""

    def peft_config(self, family, head: str, params: BaseModel, model, total_steps: int | None = None):
        """The peft config; `total_steps` as for `apply` (a method whose schedule depends on it: AdaLoRA)."""
        raise NotImplementedError

    def apply(self, model, family, head, params, total_steps=None):
        from peft import get_peft_model

        return get_peft_model(model, self.peft_config(family, head, params, model, total_steps))


METHODS: Registry[Method] = Registry("method")


def register(method_class):
    METHODS.add(method_class.name, method_class())
    return method_class
