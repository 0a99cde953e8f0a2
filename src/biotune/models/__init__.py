"""Model families, one module each, registered in FAMILIES: causal (LLaMA and alike), seq2seq (T5 / FLAN-T5 /
UL2), glm (GLM-4), encoder (BERT-style, with task heads). Model references: aliases.py."""

from .aliases import ALIASES, resolve
from .base import FAMILIES, ModelFamily
from . import causal, encoder, glm, seq2seq  # noqa: E402,F401  (registers the families)

__all__ = ["ALIASES", "FAMILIES", "ModelFamily", "resolve"]
