"""IA3 (Liu et al. 2022, T-Few): learned rescaling of keys, values and the feed-forward input, through peft."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from .base import PeftMethod, register

# peft knows the module names of many architectures; these fill in the ones it lacks
EXTRA_TARGETS = {
    "glm": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "glm4": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
}


class IA3Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_modules: list[str] | None = None  # None: peft's defaults for the architecture
    feedforward_modules: list[str] | None = None


@register
class IA3(PeftMethod):
    name = "ia3"
    default_lr = 3e-3  # T-Few
    search_space = {"training.learning_rate": [1.0e-3, 3.0e-3, 1.0e-2]}
    search_source = "(IA)3 in T-Few (Liu et al. 2022): 3e-3"
    params_model = IA3Params

    def peft_config(self, family, head, params, model, total_steps=None):
        from peft import IA3Config

        targets, feedforward = params.target_modules, params.feedforward_modules
        if targets is None and model.config.model_type in EXTRA_TARGETS:
            targets, feedforward = EXTRA_TARGETS[model.config.model_type]
        return IA3Config(
            target_modules=targets, feedforward_modules=feedforward, task_type=family.peft_task_type_for(head)
        )
