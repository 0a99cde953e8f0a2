"""Document classification (HoC, multi-label): name the cancer hallmarks an abstract discusses; scored by
micro F1 over (document, label) cells after the union per document."""

from __future__ import annotations

from biotune import metrics

from .base import TASKS, ChoiceQuery, Parsed, Task, clean_output, find_first_option
from .mentions import NONE_WORDS


@TASKS.register("doc_classification")
class DocClassificationTask(Task):
    name = "doc_classification"
    schema = "document_labels"
    metric = "document-level micro F1"
    max_new_tokens = 48

    def default_instruction(self) -> str:
        return (
            "Which of these cancer hallmarks does the abstract discuss: "
            + "; ".join(self.spec.labels)
            + "? Answer with the matching hallmarks separated by '; ', or 'none'."
        )

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

    def score_gold(self, golds, predictions, ids) -> dict:
        m = metrics.doc_label_micro_f1(ids, golds, predictions, self.spec.labels)
        return {"score": 100 * m["f1"], **{k: 100 * v for k, v in m.items()}}

    def stats(self, golds, predictions, ids):
        """Per document (rows sharing an id are unioned first, as the rule does): (tp, predicted, gold) cells."""
        import numpy as np

        labels = set(self.spec.labels)
        g_doc, p_doc = {}, {}
        for d, g, p in zip(ids, golds, predictions):
            g_doc.setdefault(d, set()).update(set(g) & labels)
            p_doc.setdefault(d, set()).update(set(p) & labels)
        if len(g_doc) != len(ids):
            raise ValueError("stats need one row per document: union the rows of a document first")
        return np.array([(len(g_doc[d] & p_doc[d]), len(p_doc[d]), len(g_doc[d])) for d in g_doc], dtype=float).reshape(
            -1, 3
        )

    def score_stats(self, totals):
        return 100 * metrics.f1_from_counts(totals[..., 0], totals[..., 1], totals[..., 2])

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
