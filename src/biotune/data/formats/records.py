"""One source record (a table row, a JSON line, a hub example) -> one example of its task type, through the dataset
file's `fields` mapping (the task type's `from_record` reads the columns and checks every value against the
dataset's labels / tags); errors name the file and line."""

from __future__ import annotations

from collections.abc import Iterable

from biotune.errors import DataFormatError, excerpt
from biotune.tasks import TASKS

OPTIONAL_FIELDS = ("id", "doc_id")  # numbered / left empty where a source has no such column


def columns_needed(spec) -> dict[str, str]:
    """schema field -> source column the reader must find (optional fields left out)."""
    return {f: spec.fields.get(f, f) for f in TASKS.get(spec.task).source_fields if f not in OPTIONAL_FIELDS}


def check_columns(spec, available: Iterable[str], path, line: int | None) -> None:
    """A clear error when a column the mapping names is not in the file."""
    available = list(available)
    for field, column in columns_needed(spec).items():
        if column not in available:
            how = f"fields.{field} maps it to {column!r}" if field in spec.fields else f"the {field} field"
            raise DataFormatError(
                path,
                line,
                f"no column {excerpt(column)} ({how}; dataset file {spec.definition}); the "
                f"columns are: {', '.join(c[:30] for c in available[:12]) or 'none'}"
                f"{' ...' if len(available) > 12 else ''}. Fix fields.{field}",
            )


def to_example(rec: dict, spec, index: int, path, line: int | None) -> dict:
    def column(field: str):
        name = spec.fields.get(field, field)
        if name not in rec:
            if field in OPTIONAL_FIELDS:
                return None
            check_columns(spec, rec.keys(), path, line)
        return rec[name]

    def bad(msg: str):
        raise DataFormatError(path, line, msg)

    given_id = column("id")
    example_id = str(given_id) if given_id not in (None, "") else str(index)  # numbered where the file has none

    def get(field: str):
        return example_id if field == "id" else column(field)

    return {"id": example_id, **TASKS.get(spec.task).from_record(get, spec, bad)}
