"""Typed example schemas, one per kind of input. Every split loads as a `Split` (a read-only sequence of example
dicts) in one of these, with each field cast to its type as `datasets.Features` would cast it (tested equal on
every BLURB split): a run needs no `datasets` (or pyarrow) for local files, only for hub datasets.

| schema          | task types   | fields                                                              |
|-----------------|--------------|---------------------------------------------------------------------|
| token_tagging   | ner, pico    | id, doc_id, tokens: [str], tags: [str]                              |
| relation        | relation     | id, text (entities marked, e.g. @GENE$), label                      |
| sentence_pair   | similarity   | id, sentence1, sentence2, score (float)                             |
| document_labels | doc_class.   | id (doc id), sentences, sentence_ids, sentence_labels, labels (set) |
| qa              | qa           | id, question, context, answer                                       |
"""

from collections.abc import Iterable, Sequence

SCHEMA_NAMES = ("token_tagging", "relation", "sentence_pair", "document_labels", "qa")

# field -> type: "str", "float", ["str"] (a list of strings), [["str"]] (a list of lists of strings)
FIELDS: dict[str, dict] = {
    "token_tagging": {"id": "str", "doc_id": "str", "tokens": ["str"], "tags": ["str"]},
    "relation": {"id": "str", "text": "str", "label": "str"},
    "sentence_pair": {"id": "str", "sentence1": "str", "sentence2": "str", "score": "float"},
    "document_labels": {
        "id": "str",
        "sentences": ["str"],
        "sentence_ids": ["str"],
        "sentence_labels": [["str"]],
        "labels": ["str"],
    },
    "qa": {"id": "str", "question": "str", "context": "str", "answer": "str"},
}

# the fields a dataset file maps from its source's columns (`fields:`), per schema; a document_labels source gives
# the document's text and labels, which a reader expands into the schema's fields
SOURCE_FIELDS = {
    "token_tagging": ("id", "doc_id", "tokens", "tags"),
    "relation": ("id", "text", "label"),
    "sentence_pair": ("id", "sentence1", "sentence2", "score"),
    "document_labels": ("id", "text", "labels"),
    "qa": ("id", "question", "context", "answer"),
}
OPTIONAL_FIELDS = ("id", "doc_id")


def _cast(value, kind):
    if value is None:
        return None
    if isinstance(kind, list):
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

    def __init__(self, rows: Iterable[dict], schema: str, _cast_rows: bool = True):
        self.schema = schema
        fields = FIELDS[schema]
        self._rows = (
            [{name: _cast(row.get(name), kind) for name, kind in fields.items()} for row in rows]
            if _cast_rows
            else list(rows)
        )

    @property
    def column_names(self) -> list[str]:
        return list(FIELDS[self.schema])

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i):
        if isinstance(i, str):  # a column: every example's value of that field
            if i not in FIELDS[self.schema]:
                raise KeyError(f"{i!r}: the {self.schema} schema's fields are {', '.join(FIELDS[self.schema])}")
            return [_fresh(row[i]) for row in self._rows]
        if isinstance(i, slice):
            return self.select(range(len(self))[i])
        return {k: _fresh(v) for k, v in self._rows[i].items()}

    def select(self, indices: Iterable[int]) -> "Split":
        return Split((self._rows[i] for i in indices), self.schema, _cast_rows=False)

    def to_list(self) -> list[dict]:
        return [self[i] for i in range(len(self))]

    def __repr__(self) -> str:
        return f"Split({self.schema}, {len(self)} examples)"
