"""One source record (a table row, a JSON line, a hub example) -> one example of the task type's schema
(biotune.data.schema), through the dataset file's `fields` mapping; every value checked against the dataset's
labels / tags, with errors naming the file and line."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from biotune.data.schema import OPTIONAL_FIELDS, SOURCE_FIELDS
from biotune.errors import DataFormatError, excerpt


def columns_needed(spec) -> dict[str, str]:
    """schema field -> source column the reader must find (optional fields left out)."""
    return {f: spec.fields.get(f, f) for f in SOURCE_FIELDS[spec.schema] if f not in OPTIONAL_FIELDS}


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
    def get(field: str):
        column = spec.fields.get(field, field)
        if column not in rec:
            if field in OPTIONAL_FIELDS:
                return None
            check_columns(spec, rec.keys(), path, line)
        return rec[column]

    def bad(msg: str):
        raise DataFormatError(path, line, msg)

    given_id = get("id")
    out = {"id": str(given_id) if given_id not in (None, "") else str(index)}
    schema = spec.schema
    if schema == "token_tagging":
        tokens, tags = _strings(get("tokens"), "tokens", bad), _strings(get("tags"), "tags", bad)
        if len(tokens) != len(tags):
            bad(f"{len(tokens)} tokens but {len(tags)} tags")
        for t in tags:
            if t not in spec.tags:
                bad(
                    f"unknown tag {excerpt(t)}; {spec.name} uses {list(spec.tags)} (fix the file or the dataset's tags)"
                )
        out.update(doc_id=str(get("doc_id") or ""), tokens=tokens, tags=tags)
    elif schema == "relation":
        out.update(text=str(get("text")), label=_label(get("label"), spec, bad))
    elif schema == "qa":
        out.update(question=str(get("question")), context=str(get("context")), answer=_label(get("answer"), spec, bad))
    elif schema == "sentence_pair":
        try:
            score = float(get("score"))
        except (TypeError, ValueError):
            bad(f"score {excerpt(get('score'))} is not a number")
        out.update(sentence1=str(get("sentence1")), sentence2=str(get("sentence2")), score=score)
    elif schema == "document_labels":
        raw = get("labels")
        if isinstance(raw, str):
            raw = [x.strip() for x in raw.split(spec.label_separator) if x.strip()]
        labels = {_label(x, spec, bad) for x in _strings(raw, "labels", bad)}
        text = str(get("text"))
        out.update(
            sentences=[text],
            sentence_ids=[out["id"]],
            sentence_labels=[sorted(labels)],
            labels=[x for x in spec.labels if x in labels],
        )
    else:
        raise ValueError(f"no record mapping for schema {schema!r}")
    return out


def _strings(value, what: str, bad) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        bad(f"{what} must be a list, got {type(value).__name__} {excerpt(value)}")
    return [str(v) for v in value]


def _label(value, spec, bad) -> str:
    label = str(value).strip() if value is not None else ""
    if label not in spec.labels:
        bad(
            f"unknown label {excerpt(label)}; {spec.name} has labels {list(spec.labels)} (add it to the dataset file's "
            "labels, with its answer text)"
        )
    return label
