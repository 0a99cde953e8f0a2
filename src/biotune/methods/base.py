"""What an adaptation method provides: its hyperparameters (a pydantic model with published defaults), which
model families it fits, and `apply(model, ...)` that makes the model trainable its way (thin over peft)."""

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
    default_lr = 2e-4
    params_model: type[BaseModel] = NoParams
    families: tuple[str, ...] | None = None  # None: every family

    def fits(self, family, head: str | None = None) -> bool:
        """Whether this method can adapt `family` (with this task `head`, when known)."""
        return self.families is None or family.name in self.families

    def apply(self, model, family, head: str, params: BaseModel):
        """Returns the model to train, with exactly this method's parameters trainable."""
        raise NotImplementedError

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

    def peft_config(self, family, head: str, params: BaseModel, model):
        raise NotImplementedError

    def apply(self, model, family, head, params):
        from peft import get_peft_model

        return get_peft_model(model, self.peft_config(family, head, params, model))


METHODS: Registry[Method] = Registry("method")


def register(method_class):
    METHODS.add(method_class.name, method_class())
    return method_class
