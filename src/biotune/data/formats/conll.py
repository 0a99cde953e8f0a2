"""CoNLL-style token files (NER, EBM PICO): `token<TAB>tag` lines (BLURB's files), or whitespace-separated columns
with the token first and the tag last (CoNLL-2003 style); a blank line between sentences; optional
`-DOCSTART- <id>` lines."""

from __future__ import annotations

import re

from biotune.errors import DataFormatError, excerpt

from .registry import FORMATS

_DOC_ID = re.compile(r"-DOCSTART-\s*\(?([^)\s]*)\)?")


@FORMATS.register("conll")
def read(path, spec) -> list[dict]:
    allowed = set(spec.tags)
    rows: list[dict] = []
    tokens: list[str] = []
    tags: list[str] = []
    doc_id = ""

    def flush():
        if tokens:
            rows.append({"id": str(len(rows)), "doc_id": doc_id, "tokens": tokens.copy(), "tags": tags.copy()})
            tokens.clear()
            tags.clear()

    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                flush()
                continue
            if line.startswith("-DOCSTART-"):
                flush()
                doc_id = _DOC_ID.match(line).group(1)
                continue
            parts = line.split("\t") if "\t" in line else line.split()
            if "\t" not in line and len(parts) > 2:
                parts = [parts[0], parts[-1]]
            if len(parts) != 2:
                raise DataFormatError(
                    path, lineno, f"expected 'token<TAB>tag', got {len(parts)} field(s): {excerpt(line)}"
                )
            token, tag = parts
            if tag not in allowed:
                read_as = (
                    ""
                    if "\t" in line
                    else (
                        f" (read {excerpt(line)} as token {excerpt(token)}, tag {excerpt(tag)}: expected "
                        "'token<TAB>tag', or whitespace-separated columns, the tag last)"
                    )
                )
                raise DataFormatError(
                    path, lineno, f"unknown tag {excerpt(tag)}; {spec.name} uses {sorted(allowed)}{read_as}"
                )
            tokens.append(token)
            tags.append(tag)
    flush()
    return rows
