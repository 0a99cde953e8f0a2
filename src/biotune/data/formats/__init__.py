"""Readers, one module per source file format. Each registers `read(path, spec) -> list[dict]` in FORMATS.

Adding a format: write `formats/<name>.py` with a function decorated `@FORMATS.register("<name>")` and
import it below.
"""

from biotune.registry import Registry

FORMATS: Registry = Registry("format")

from . import conll, hoc_tsv, hub, jsonl, pubmedqa_json, table  # noqa: E402,F401  (registers readers)
