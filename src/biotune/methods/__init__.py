"""Adaptation methods, one module each, registered in METHODS: zero_shot / few_shot (in-context), fft,
lora, dora, loraplus, pissa, olora, adalora, vera, qlora, loftq, ia3, ptuning, prompt_tuning, prefix. A new method
is one module + one import below."""

# importing a module registers its methods
from . import (  # noqa: F401
    adalora,
    fft,
    ia3,
    icl,
    loftq,
    lora,
    loraplus,
    pissa,
    prompt_learning,
    qlora,
    vera,
)
from .base import METHODS, Method, PeftMethod

__all__ = ["METHODS", "Method", "PeftMethod"]
