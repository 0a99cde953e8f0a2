"""Tables, one example per line: `tsv` (tab-separated, no quoting: BLURB's relation files, BIOSSES, BioASQ) and
`csv` (comma-separated, with quoting, as spreadsheets write it).

The columns are named by the dataset's `columns` (file order; `_` = ignore) or, with `header: true` and no
`columns`, by the first line; `fields` maps them onto the schema (biotune.data.formats.records).
"""

from __future__ import annotations

import csv

from biotune.errors import DataFormatError

from .records import check_columns, to_example
from .registry import FORMATS


def _rows(path, spec, lines, kind: str):
    columns = list(spec.columns)
    rows: list[dict] = []
    for lineno, parts in lines:
        if lineno == 1 and spec.header:
            if not columns:
                columns = [p.strip() for p in parts]
            check_columns(spec, [c for c in columns if c != "_"], path, 1)
            continue
        if not columns:
            raise DataFormatError(
                path,
                lineno,
                f"no column names: set header: true (the first line names them) or columns: [...] in {spec.definition}",
            )
        if rows == [] and not spec.header:
            check_columns(spec, [c for c in columns if c != "_"], path, lineno)
        if len(parts) != len(columns):
            raise DataFormatError(
                path, lineno, f"expected {len(columns)} {kind} columns ({', '.join(columns)}), got {len(parts)}"
            )
        record = {c: v.strip() for c, v in zip(columns, parts) if c != "_"}
        rows.append(to_example(record, spec, len(rows), path, lineno))
    return rows


@FORMATS.register("tsv")
def read_tsv(path, spec) -> list[dict]:
    def lines():
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\n").rstrip("\r")
                if line.strip():
                    yield lineno, line.split("\t")

    return _rows(path, spec, lines(), "tab-separated")


@FORMATS.register("csv")
def read_csv(path, spec) -> list[dict]:
    def lines():
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            try:
                for parts in reader:
                    if any(p.strip() for p in parts):
                        yield reader.line_num, parts
            except csv.Error as e:
                raise DataFormatError(path, reader.line_num, f"not valid CSV: {e}") from None

    return _rows(path, spec, lines(), "comma-separated")
