"""Readers, one module per source file format. Each registers `read(path, spec) -> list[dict]` in FORMATS.

Adding a format: write `formats/<name>.py` with a function decorated `@FORMATS.register("<name>")` and
import it below.
"""

from biotune.registry import Registry

FORMATS: Registry = Registry("data format")

from . import conll_tags, hoc_tsv, pubmedqa_json, tsv_table  # noqa: E402,F401  (registers readers)
