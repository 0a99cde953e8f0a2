"""LoRA (Hu et al. 2021) and DoRA (Liu et al. 2024, LoRA with a learned magnitude), through peft."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .base import PeftMethod, register


class LoraParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"  # every linear layer but the output head
    use_rslora: bool = False
    packed_dropout: bool = True  # biotune.kernels.PackedDropout (same dropout, a quarter of the random draws)


def lora_config(family, head, params: LoraParams, use_dora: bool = False):
    from peft import LoraConfig

    return LoraConfig(
        r=params.r, lora_alpha=params.alpha, lora_dropout=params.dropout, target_modules=params.target_modules,
        # a task head (encoders' classifier) trains in full through peft's modules_to_save, not through LoRA
        exclude_modules=list(family.head_modules) or None,
        use_rslora=params.use_rslora, use_dora=use_dora, task_type=family.peft_task_type_for(head),
    )


@register
class Lora(PeftMethod):
    name = "lora"
    default_lr = 2e-4
    params_model = LoraParams

    def peft_config(self, family, head, params, model):
        return lora_config(family, head, params)

    def apply(self, model, family, head, params):
        model = super().apply(model, family, head, params)
        if params.packed_dropout:
            from biotune.kernels import pack_dropouts

            pack_dropouts(model)
        return model


@register
class Dora(Lora):
    name = "dora"

    def peft_config(self, family, head, params, model):
        return lora_config(family, head, params, use_dora=True)
