"""Plain tab-separated tables, one example per line: relation files (ChemProt, DDI, GAD), BIOSSES, BioASQ.

`spec.columns` names the columns in file order, mapped onto schema fields; `spec.header` says whether the
first line is a header (checked, then skipped).
"""

from __future__ import annotations

from biotune.errors import DataFormatError

from . import FORMATS


@FORMATS.register("tsv_table")
def read(path, spec) -> list[dict]:
    columns: list[str] = list(spec.columns)
    rows: list[dict] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if lineno == 1 and spec.header:
                continue
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != len(columns):
                raise DataFormatError(
                    path,
                    lineno,
                    f"expected {len(columns)} tab-separated columns ({', '.join(columns)}), "
                    f"got {len(parts)}",
                )
            row = {c: v.strip() for c, v in zip(columns, parts) if c != "_"}
            if "score" in row:
                try:
                    row["score"] = float(row["score"])
                except ValueError:
                    raise DataFormatError(
                        path, lineno, f"score {row['score']!r} is not a number"
                    ) from None
            if "label" in row and spec.labels and row["label"] not in spec.labels:
                raise DataFormatError(
                    path, lineno, f"unknown label {row['label']!r}; {spec.name} uses {list(spec.labels)}"
                )
            if "answer" in row and spec.labels and row["answer"] not in spec.labels:
                raise DataFormatError(
                    path, lineno, f"unknown answer {row['answer']!r}; {spec.name} uses {list(spec.labels)}"
                )
            row["id"] = row.get("id") or str(len(rows))
            rows.append(row)
    return rows
