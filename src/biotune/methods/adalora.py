"""AdaLoRA (Zhang et al. 2023): LoRA in SVD form whose rank budget moves during training to the weight matrices
where it matters (importance from gradient sensitivity), with an orthogonality regulariser on the singular
vectors; through peft. The budget is reallocated after every optimizer step by a Trainer callback, on a schedule
set from the run's length; the regulariser is part of the model's own loss."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .base import PeftMethod, register


class AdaLoraParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    init_r: int = Field(12, ge=1)  # the starting rank of every adapted matrix (peft's and the paper's default)
    target_r: int = Field(8, ge=1)  # the average rank left at the end
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"  # as LoRA's, so the two compare on the same layers
    # the schedule as fractions of the run's optimizer steps: no pruning during the first `warmup_fraction`
    # (the paper's t_i), the final budget fixed for the last `final_fraction` (t_f); reallocated every
    # `interval` steps (delta T) in between
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    final_fraction: float = Field(0.3, ge=0, lt=1)
    interval: int = Field(1, ge=1)
    beta1: float = Field(0.85, gt=0, lt=1)  # the importance's moving averages (paper: 0.85)
    beta2: float = Field(0.85, gt=0, lt=1)
    orth_reg_weight: float = Field(0.5, ge=0)  # the orthogonality regulariser's weight (paper: 0.1-0.5)

    @model_validator(mode="after")
    def _budget(self):
        if self.target_r > self.init_r:
            raise ValueError(f"target_r ({self.target_r}) must not exceed init_r ({self.init_r})")
        if self.warmup_fraction + self.final_fraction >= 1:
            raise ValueError("warmup_fraction + final_fraction must be below 1 (the budget moves in between)")
        return self


@register
class AdaLora(PeftMethod):
    name = "adalora"
    default_lr = 5e-4  # the paper's GLUE rates are 5e-4..1.2e-3 (DeBERTaV3-base)
    search_space = {"training.learning_rate": [2.0e-4, 5.0e-4, 1.2e-3]}
    search_source = "AdaLoRA (Zhang et al. 2023): 5e-4 to 1.2e-3 on GLUE with DeBERTaV3-base"
    params_model = AdaLoraParams
    loss_in_forward = True  # peft's AdaLoRA forward adds the orthogonal regulariser to the model's loss
    keeps_final = True  # the budget prunes ranks as it trains: a checkpoint from before the final budget does not
    #                     load into the pruned model (peft resizes the model to the current rank pattern first)

    def peft_config(self, family, head, params, model, total_steps=None):
        from peft import AdaLoraConfig

        # the planner builds shapes only (no schedule): any length gives the same ones
        total = max(int(total_steps or 100), 3)
        tinit = int(params.warmup_fraction * total)
        tfinal = min(int(params.final_fraction * total), total - tinit - 1)
        return AdaLoraConfig(
            init_r=params.init_r,
            target_r=params.target_r,
            lora_alpha=params.alpha,
            lora_dropout=params.dropout,
            target_modules=params.target_modules,
            exclude_modules=list(family.head_modules) or None,
            tinit=tinit,
            tfinal=tfinal,
            deltaT=params.interval,
            beta1=params.beta1,
            beta2=params.beta2,
            orth_reg_weight=params.orth_reg_weight,
            total_step=total,
            task_type=family.peft_task_type_for(head),
        )

    def apply(self, model, family, head, params, total_steps=None):
        model = super().apply(model, family, head, params, total_steps)
        # peft (0.21) upcasts a bf16 adapter to fp32 by putting a new tensor into each ParameterDict, which wraps it
        # in a Parameter that requires grad: on a bf16 machine AdaLoRA's rank counts (`ranknum`, the constant its
        # scaling divides by) would then train with the adapter. They stay frozen, as on fp32 machines.
        for name, p in model.named_parameters():
            if ".ranknum." in name:
                p.requires_grad_(False)
        return model

    def callbacks(self, model, params):
        from transformers import TrainerCallback

        class Reallocate(TrainerCallback):
            """peft's `update_and_allocate` after each optimizer step, before the gradients it reads are zeroed;
            the step index is the Trainer's (0-based here, as in peft's own loop)."""

            def on_optimizer_step(self, args, state, control, **kwargs):
                model.base_model.update_and_allocate(state.global_step)

        return [Reallocate()]
