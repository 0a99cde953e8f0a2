"""Decoder-only causal LMs (LLaMA and alike); GGUF files are de-quantized into model folders by gguf.py."""

from __future__ import annotations

from .base import ModelFamily, register


@register
class CausalFamily(ModelFamily):
    """Decoder-only LMs: LLaMA and alike (SmolLM2, Llama-3, Mistral, Qwen, ...)."""

    name = "causal"
    peft_task_type = "CAUSAL_LM"

    @property
    def config_class(self):
        from transformers import LlamaConfig

        return LlamaConfig

    def auto_class(self, head: str):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM
