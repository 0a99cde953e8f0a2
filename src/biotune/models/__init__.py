"""Model families and model references. `resolve(name)` turns an alias, a local path or a hub id into
something `from_pretrained` loads; `causal.load` loads a decoder-only LM for evaluation."""

from .aliases import ALIASES, resolve

__all__ = ["ALIASES", "resolve"]
