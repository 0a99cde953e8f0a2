"""Adaptation methods, one module each, registered in METHODS: zero_shot / few_shot (in-context), fft,
lora, dora, qlora, ia3, ptuning, prompt_tuning, prefix. A new method is one module + one import below."""

from .base import METHODS, Method, PeftMethod
from . import fft, ia3, icl, lora, prompt_learning, qlora  # noqa: E402,F401  (registers the methods)

__all__ = ["METHODS", "Method", "PeftMethod"]
