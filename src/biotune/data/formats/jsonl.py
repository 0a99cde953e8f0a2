"""JSON Lines: one JSON object per line (token lists as JSON arrays); `fields` maps keys onto the schema."""

from __future__ import annotations

import json

from biotune.errors import DataFormatError

from .records import to_example
from .registry import FORMATS


@FORMATS.register("jsonl")
def read(path, spec) -> list[dict]:
    rows: list[dict] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(path, lineno, f"not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(record, dict):
                raise DataFormatError(path, lineno, f"expected a JSON object, got {type(record).__name__}")
            rows.append(to_example(record, spec, len(rows), path, lineno))
    return rows
