"""Question answering (PubMedQA: yes/no/maybe; BioASQ: yes/no) with the abstract or snippets as context;
scored by accuracy."""

from __future__ import annotations

import numpy as np

from .base import TASKS, ChoiceQuery, Parsed, Task, clean_output, find_first_option, record_label

UNPARSED = "<unparsed>"


@TASKS.register("qa")
class QaTask(Task):
    name = "qa"
    schema = "qa"
    fields = {"id": "str", "question": "str", "context": "str", "answer": "str"}
    source_fields = ("id", "question", "context", "answer")
    labelled = True
    encoder_head = "sequence_classification"
    gold_field = "answer"
    rule = "accuracy"
    max_new_tokens = 4

    def default_instruction(self) -> str:
        return (
            "Answer the biomedical research question using the context. "
            f"Answer with one word: {', '.join(self.spec.labels)}."
        )

    @classmethod
    def from_record(cls, get, spec, bad) -> dict:
        return {
            "question": str(get("question")),
            "context": str(get("context")),
            "answer": record_label(get("answer"), spec, bad),
        }

    def render_input(self, example: dict) -> str:
        return f"Question: {example['question']}\nContext: {example['context']}"

    def target(self, example: dict) -> str:
        return example["answer"]

    def parse(self, text: str, example: dict) -> Parsed:
        found = find_first_option(clean_output(text), self.spec.labels)
        return Parsed(found.lower(), True) if found else Parsed(UNPARSED, False)

    def encoder_input(self, example: dict):
        return (example["question"], example["context"])

    def gold(self, example: dict) -> str:
        return example["answer"]

    def rule_stats(self, golds, predictions, ids):
        if len(golds) != len(predictions):
            raise ValueError(f"{len(golds)} gold answers but {len(predictions)} predictions")
        return np.array([(g == p, 1) for g, p in zip(golds, predictions)], dtype=float).reshape(-1, 2)

    def rule_score(self, totals):
        t = np.asarray(totals, dtype=float)
        return 100 * np.divide(t[..., 0], t[..., 1], out=np.zeros(t.shape[:-1]), where=t[..., 1] > 0)

    def rule_details(self, totals) -> dict:
        return {"accuracy": float(self.rule_score(totals))}

    def choice_queries(self) -> list[ChoiceQuery]:
        return [ChoiceQuery(self.instruction(), list(self.spec.labels), self.target)]
