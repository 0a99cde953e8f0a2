"""LoRA (Hu et al. 2021) and DoRA (Liu et al. 2024, LoRA with a learned magnitude), through peft."""

from __future__ import annotations

import contextlib

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from .base import PeftMethod, register


class LoraParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"  # every linear layer but the output head
    use_rslora: bool = False
    # biotune.kernels.FastDropout: the same dropout, drawing only the dropped positions on CPU (the earlier name
    # packed_dropout is still read)
    fast_dropout: bool = Field(True, validation_alias=AliasChoices("fast_dropout", "packed_dropout"))
    # adapters that read the same tensor (q/k/v; gate/up) share one dropout mask, as in the LoRA reference code's
    # fused q/k/v layer (biotune.kernels.SharedDraw); needs fast_dropout
    shared_dropout: bool = True
    # (the fused CPU layer is a speed setting: runtime.fused_lora)


def lora_config(family, head, params: LoraParams, use_dora: bool = False, init_lora_weights: bool | str = True):
    from peft import LoraConfig

    return LoraConfig(
        r=params.r,
        lora_alpha=params.alpha,
        lora_dropout=params.dropout,
        target_modules=params.target_modules,
        # a task head (encoders' classifier) trains in full through peft's modules_to_save, not through LoRA
        exclude_modules=list(family.head_modules) or None,
        use_rslora=params.use_rslora,
        use_dora=use_dora,
        init_lora_weights=init_lora_weights,
        task_type=family.peft_task_type_for(head),
    )


@register
class Lora(PeftMethod):
    name = "lora"
    default_lr = 2e-4
    search_space = {"training.learning_rate": [1.0e-4, 3.0e-4, 1.0e-3]}
    search_source = (
        "LoRA (Hu et al. 2021) and QLoRA (Dettmers et al. 2023: 2e-4 up to 13B); a LoRA's best rate is "
        "about 10x full fine-tuning's (Schulman et al. 2025, 'LoRA Without Regret')"
    )
    params_model = LoraParams

    def peft_config(self, family, head, params, model, total_steps=None):
        return lora_config(family, head, params)

    def apply(self, model, family, head, params, total_steps=None):
        model = super().apply(model, family, head, params, total_steps)
        if params.fast_dropout:
            from biotune.kernels import fast_dropouts

            fast_dropouts(model, share=params.shared_dropout)
        return model

    def training_context(self, model, params, autocast):
        # Under autocast peft copies each adapter's input to the adapter's dtype (fp32) and autocast copies it back
        # to bf16 for the matmul: the same numbers after two copies, per adapter and step, forward and backward.
        # Without peft's cast the adapters read the bf16 activations as they are (and adapters that read the same
        # tensor can share its dropout draw). Only under autocast, which does the casting peft would have done
        # (peft's own 4-bit layers skip the cast under autocast too).
        if not autocast:
            return super().training_context(model, params, autocast)
        from peft.helpers import disable_input_dtype_casting

        return disable_input_dtype_casting(model)

    @contextlib.contextmanager
    def prediction_context(self, model):
        # peft's cast of each adapter's input to the adapter's dtype, back on while predicting (no autocast then)
        from peft.tuners.tuners_utils import BaseTunerLayer

        layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
        before = [m.cast_input_dtype_enabled for m in layers]
        for m in layers:
            m.cast_input_dtype_enabled = True
        try:
            yield
        finally:
            for m, b in zip(layers, before):
                m.cast_input_dtype_enabled = b


@register
class Dora(Lora):
    name = "dora"

    def peft_config(self, family, head, params, model, total_steps=None):
        return lora_config(family, head, params, use_dora=True)

    def extra_flops(self, adapted, params):
        # peft's DoRA: while training with dropout, each adapted layer multiplies the dropped input by its frozen
        # weight a second time; every forward pass forms B @ A (an identity of the input width through A and B)
        # for the weight norm
        second = sum(2 * i * o for i, o in adapted) if params.dropout > 0 else 0.0
        return {"train_token": second, "call": sum(2 * i * params.r * (i + o) for i, o in adapted)}
