"""Readers, one module per source file format. Each registers `read(path, spec) -> list[dict]` in FORMATS
(registry.py).

Adding a format: write `formats/<name>.py` with a function decorated `@FORMATS.register("<name>")` and
import it below.
"""

from . import conll, hoc_tsv, hub, jsonl, pubmedqa_json, table  # noqa: F401  (registers the readers)
from .registry import FORMATS

__all__ = ["FORMATS"]
