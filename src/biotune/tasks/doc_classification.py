"""Document classification (HoC, multi-label): name the cancer hallmarks an abstract discusses; scored by
micro F1 over (document, label) cells after the union per document."""

from __future__ import annotations

import numpy as np

from .base import (
    TASKS,
    ChoiceQuery,
    MicroF1Rule,
    Parsed,
    Task,
    clean_output,
    find_first_option,
    record_label,
    record_strings,
)
from .mentions import NONE_WORDS


@TASKS.register("doc_classification")
class DocClassificationTask(MicroF1Rule, Task):
    name = "doc_classification"
    schema = "document_labels"
    fields = {
        "id": "str",  # the document's id
        "sentences": ["str"],
        "sentence_ids": ["str"],
        "sentence_labels": [["str"]],
        "labels": ["str"],  # the document's label set
    }
    # a source gives a document's text and labels, which become one sentence with the document's labels
    source_fields = ("id", "text", "labels")
    labelled = True
    encoder_head = "multi_label"
    gold_field = "labels"
    rule = "document-level micro F1"
    max_new_tokens = 48

    def default_instruction(self) -> str:
        return (
            "Which of these cancer hallmarks does the abstract discuss: "
            + "; ".join(self.spec.labels)
            + "? Answer with the matching hallmarks separated by '; ', or 'none'."
        )

    @classmethod
    def from_record(cls, get, spec, bad) -> dict:
        raw = get("labels")
        if isinstance(raw, str):
            raw = [x.strip() for x in raw.split(spec.label_separator) if x.strip()]
        labels = {record_label(x, spec, bad) for x in record_strings(raw, "labels", bad)}
        return {
            "sentences": [str(get("text"))],
            "sentence_ids": [str(get("id"))],
            "sentence_labels": [sorted(labels)],
            "labels": [x for x in spec.labels if x in labels],
        }

    def render_input(self, example: dict) -> str:
        return " ".join(example["sentences"])

    def target(self, example: dict) -> str:
        return "; ".join(example["labels"]) or "none"

    def parse(self, text: str, example: dict) -> Parsed:
        text = clean_output(text)
        found = [label for label in self.spec.labels if find_first_option(text, [label])]
        ok = bool(found) or text.lower().strip(" .") in NONE_WORDS - {""}
        return Parsed(found, ok)

    def encoder_input(self, example: dict):
        return " ".join(example["sentences"])

    def gold(self, example: dict) -> list[str]:
        return list(example["labels"])

    def units(self, golds, predictions, ids):
        """One unit per document: the rows sharing an id (e.g. the sentences of one abstract) unioned, gold and
        predicted labels each, as the rule does."""
        if len(set(ids)) == len(ids):
            return golds, predictions, ids
        if not (len(ids) == len(golds) == len(predictions)):
            raise ValueError("doc_ids, gold and pred must have the same length")
        g_doc, p_doc = {}, {}
        for d, g, p in zip(ids, golds, predictions):
            g_doc.setdefault(d, set()).update(g)
            p_doc.setdefault(d, set()).update(p)
        docs = list(g_doc)
        return [sorted(g_doc[d]) for d in docs], [sorted(p_doc[d]) for d in docs], docs

    def rule_stats(self, golds, predictions, ids):
        """Per document: (tp, predicted, gold) (document, label) cells, labels outside the dataset's ignored."""
        if not (len(ids) == len(golds) == len(predictions)):
            raise ValueError("doc_ids, gold and pred must have the same length")
        if len(set(ids)) != len(ids):
            raise ValueError("stats need one row per document: union the rows of a document first (units)")
        labels = set(self.spec.labels)
        rows = []
        for g, p in zip(golds, predictions):
            g, p = set(g) & labels, set(p) & labels
            rows.append((len(g & p), len(p), len(g)))
        return np.array(rows, dtype=float).reshape(-1, 3)

    # option log-likelihood: one yes/no question per hallmark
    def choice_queries(self) -> list[ChoiceQuery]:
        return [
            ChoiceQuery(
                f"Does the abstract discuss the cancer hallmark '{label}'? Answer yes or no.",
                ["yes", "no"],
                lambda ex, label=label: "yes" if label in ex["labels"] else "no",
            )
            for label in self.spec.labels
        ]

    def from_choices(self, example: dict, chosen: list[str]) -> Parsed:
        return Parsed([label for label, c in zip(self.spec.labels, chosen) if c == "yes"], True)
