"""HoC as BLURB ships it: one sentence a line, `labels<TAB>sentence<TAB>index`, with labels `0_0,1_1,...`
(ten binary hallmark flags) and index `<PMID>_s<n>`. Sentences are grouped into documents (BLURB scores HoC
per document), keeping each sentence's id and labels."""

from __future__ import annotations

from biotune.errors import DataFormatError, excerpt

from .registry import FORMATS


def doc_id_of(sentence_id: str) -> str:
    """`22239943_s0` -> `22239943`."""
    return sentence_id.rsplit("_", 1)[0]


def _parse_flags(field: str, spec, path, lineno) -> list[str]:
    labels = []
    for item in field.split(","):
        try:
            index, flag = item.split("_")
            index, flag = int(index), int(flag)
            name = spec.labels[index]
        except (ValueError, IndexError):
            raise DataFormatError(
                path, lineno, f"bad label flag {excerpt(item)}; expected '<0-{len(spec.labels) - 1}>_<0|1>'"
            ) from None
        if flag not in (0, 1):
            raise DataFormatError(path, lineno, f"bad label flag {excerpt(item)}; the flag must be 0 or 1")
        if flag:
            labels.append(name)
    return labels


@FORMATS.register("hoc_tsv")
def read(path, spec) -> list[dict]:
    docs: dict[str, dict] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if lineno == 1 or not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                raise DataFormatError(
                    path, lineno, f"expected 3 tab-separated columns (labels, sentence, index), got {len(parts)}"
                )
            flags, sentence, sid = parts
            labels = _parse_flags(flags, spec, path, lineno)
            doc = docs.setdefault(
                doc_id_of(sid),
                {"id": doc_id_of(sid), "sentences": [], "sentence_ids": [], "sentence_labels": []},
            )
            doc["sentences"].append(sentence)
            doc["sentence_ids"].append(sid)
            doc["sentence_labels"].append(labels)
    rows = list(docs.values())
    for doc in rows:  # gold document labels: the union over its sentences, in label order
        union = {label for labels in doc["sentence_labels"] for label in labels}
        doc["labels"] = [label for label in spec.labels if label in union]
    return rows
