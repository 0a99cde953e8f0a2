"""VeRA (Kopiczko et al. 2024): one pair of frozen random low-rank matrices shared by every adapted layer, and
per layer only two trained scaling vectors; through peft."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .base import PeftMethod, register


class VeraParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r: int = Field(256, ge=1)  # the paper's rank for instruction tuning (its trained vectors are r + out wide)
    d_initial: float = Field(0.1, gt=0)  # the initial value of the d vector (paper: 0.1)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"  # shared matrices sized to the widest layer
    projection_prng_key: int = 0  # the seed of the shared random matrices
    save_projection: bool = True  # the shared matrices saved with the adapter (loads without the seed's RNG)


@register
class Vera(PeftMethod):
    name = "vera"
    default_lr = 4e-3  # the paper's instruction-tuning rate (LLaMA); its GLUE rates are 4e-3..1e-2
    search_space = {"training.learning_rate": [1.0e-3, 4.0e-3, 1.0e-2]}
    search_source = "VeRA (Kopiczko et al. 2024): 4e-3 for instruction tuning, 4e-3 to 1e-2 on GLUE"
    params_model = VeraParams

    def peft_config(self, family, head, params, model, total_steps=None):
        from peft import VeraConfig

        return VeraConfig(
            r=params.r,
            d_initial=params.d_initial,
            vera_dropout=params.dropout,
            target_modules=params.target_modules,
            projection_prng_key=params.projection_prng_key,
            save_projection=params.save_projection,
            task_type=family.peft_task_type_for(head),
        )

    def extra_flops(self, adapted, params):
        # every adapted layer passes each token through the shared r x in and out x r matrices (frozen buffers,
        # which the planner's count of weights does not see)
        return {"train_token": sum(2 * params.r * (i + o) for i, o in adapted), "call": 0.0}
