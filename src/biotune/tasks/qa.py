"""Question answering (PubMedQA: yes/no/maybe; BioASQ: yes/no) with the abstract or snippets as context;
scored by accuracy."""

from __future__ import annotations

from biotune import metrics

from .base import TASKS, ChoiceQuery, Parsed, Task, clean_output, find_first_option

UNPARSED = "<unparsed>"


@TASKS.register("qa")
class QaTask(Task):
    name = "qa"
    schema = "qa"
    metric = "accuracy"
    max_new_tokens = 4

    def default_instruction(self) -> str:
        return (
            "Answer the biomedical research question using the context. "
            f"Answer with one word: {', '.join(self.spec.labels)}."
        )

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

    def score_gold(self, golds, predictions, ids) -> dict:
        m = metrics.accuracy(golds, predictions)
        return {"score": 100 * m["accuracy"], "accuracy": 100 * m["accuracy"]}

    def stats(self, golds, predictions, ids):
        import numpy as np

        return np.array([(g == p, 1) for g, p in zip(golds, predictions)], dtype=float).reshape(-1, 2)

    def score_stats(self, totals):
        import numpy as np

        t = np.asarray(totals, dtype=float)
        return 100 * np.divide(t[..., 0], t[..., 1], out=np.zeros(t.shape[:-1]), where=t[..., 1] > 0)

    def choice_queries(self) -> list[ChoiceQuery]:
        return [ChoiceQuery(self.instruction(), list(self.spec.labels), self.target)]
