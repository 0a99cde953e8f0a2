"""QLoRA (Dettmers et al. 2023): the base model frozen and quantized to 4-bit NF4 (bitsandbytes, double
quantization), LoRA adapters on top computing in bf16 (fp32 where the hardware has no bf16)."""

from __future__ import annotations

from typing import Literal

from .base import register
from .lora import Lora, LoraParams


class QLoraParams(LoraParams):
    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True


@register
class QLora(Lora):
    name = "qlora"
    quantized = True
    params_model = QLoraParams

    def quantization_config(self, params: QLoraParams, compute_dtype, family):
        from transformers import BitsAndBytesConfig

        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=params.quant_type,
            bnb_4bit_use_double_quant=params.double_quant,
            bnb_4bit_compute_dtype=compute_dtype,
            # a task head stays in full precision: it trains in full (the LM head is kept by transformers itself)
            llm_int8_skip_modules=list(family.head_modules) or None,
        )

    def apply(self, model, family, head, params, total_steps=None):
        # Not peft's prepare_model_for_kbit_training: it casts every non-4-bit weight (embeddings included) to
        # fp32, doubling the frozen weights that QLoRA exists to shrink. The base is frozen by peft and the
        # adapters are created in fp32; bf16 autocast does the compute.
        keep_training_layout(model)
        return super().apply(model, family, head, params, total_steps)


def keep_training_layout(model) -> None:
    """bitsandbytes 0.50 repacks a 4-bit layer for its AVX512-BF16 CPU inference kernel the first time the
    layer runs in eval mode, and never unpacks it for training: training after an evaluation (Trainer's dev
    loss) then takes the inference kernel, which fails on layers with a bias (GLM's q/k/v). Turn the
    repacking off; it only speeds up CPU inference."""
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
