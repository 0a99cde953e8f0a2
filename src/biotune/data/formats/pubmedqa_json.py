"""PubMedQA's own JSON (`{pmid: {QUESTION, CONTEXTS, final_decision, ...}}`), as its split script writes it."""

from __future__ import annotations

import json

from biotune.errors import DataFormatError, excerpt

from .registry import FORMATS


@FORMATS.register("pubmedqa_json")
def read(path, spec) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DataFormatError(path, e.lineno, f"invalid JSON: {e.msg}") from None
    if not isinstance(data, dict):
        raise DataFormatError(path, 1, "expected a JSON object keyed by PMID")
    rows = []
    for pmid, item in data.items():
        try:
            question, contexts, answer = item["QUESTION"], item["CONTEXTS"], item["final_decision"]
        except (KeyError, TypeError) as e:
            raise DataFormatError(path, None, f"entry {excerpt(pmid)} lacks field {e}") from None
        if answer not in spec.labels:
            raise DataFormatError(
                path,
                None,
                f"entry {excerpt(pmid)}: unknown final_decision {excerpt(answer)}; expected {list(spec.labels)}",
            )
        rows.append({"id": str(pmid), "question": question, "context": " ".join(contexts), "answer": answer})
    return rows
