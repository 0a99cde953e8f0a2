"""A split's examples in their task type's fields (`Split`: a read-only sequence of example dicts), each field cast
to its type as `datasets.Features` would cast it (tested equal on every BLURB split): a run needs no `datasets` (or
pyarrow) for local files, only for hub datasets. Each task type declares its fields (`Task.fields`,
biotune.tasks): token_tagging (ner, pico), relation, sentence_pair (similarity), document_labels
(doc_classification), qa.
"""

from collections.abc import Iterable, Sequence


def _cast(value, kind):
    if value is None:
        return None
    if isinstance(kind, list):
        if kind[0] == "str" and all(type(v) is str for v in value):
            return list(value)  # the common case (a sentence's tokens and tags): already strings, copied as they are
        return [_cast(v, kind[0]) for v in value]
    if kind == "float":
        return float(value)
    if isinstance(value, bool):
        return "true" if value else "false"  # as Arrow casts a bool to a string
    return value if isinstance(value, str) else str(value)


def _fresh(value):
    """A copy of a row's value that a caller may change without changing the split."""
    return [_fresh(v) for v in value] if isinstance(value, list) else value


class Split(Sequence):
    """One split's examples in a schema: `len`, `split[i]` (a fresh dict), `split["field"]` (a column), iteration,
    `select(indices)`, `to_list()`, `column_names` — the part of `datasets.Dataset` biotune uses."""

    def __init__(self, rows: Iterable[dict], fields: dict, schema: str = "", _cast_rows: bool = True):
        self.fields, self.schema = fields, schema  # field -> type (a task type's `fields`); their name
        self._rows = (
            [{name: _cast(row.get(name), kind) for name, kind in fields.items()} for row in rows]
            if _cast_rows
            else list(rows)
        )

    @property
    def column_names(self) -> list[str]:
        return list(self.fields)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i):
        if isinstance(i, str):  # a column: every example's value of that field
            if i not in self.fields:
                raise KeyError(f"{i!r}: the {self.schema} schema's fields are {', '.join(self.fields)}")
            return [_fresh(row[i]) for row in self._rows]
        if isinstance(i, slice):
            return self.select(range(len(self))[i])
        return {k: _fresh(v) for k, v in self._rows[i].items()}

    def select(self, indices: Iterable[int]) -> "Split":
        return Split((self._rows[i] for i in indices), self.fields, self.schema, _cast_rows=False)

    def to_list(self) -> list[dict]:
        return [self[i] for i in range(len(self))]

    def __repr__(self) -> str:
        return f"Split({self.schema}, {len(self)} examples)"
