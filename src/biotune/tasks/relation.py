"""Relation extraction (ChemProt, DDI, GAD): pick the relation label of the marked entity pair; scored by
micro F1 without the negative class."""

from __future__ import annotations

from biotune import metrics

from .base import TASKS, ChoiceQuery, Parsed, Task, clean_output, find_first_option

UNPARSED = "<unparsed>"  # never a gold label, and not the negative one: an unparsed output is a wrong positive


@TASKS.register("relation")
class RelationTask(Task):
    name = "relation"
    schema = "relation"
    metric = "micro F1, negative class excluded"
    max_new_tokens = 6

    def _verbal(self) -> dict[str, str]:
        return {label: self.spec.label_names.get(label, label) for label in self.spec.labels}

    def default_instruction(self) -> str:
        return (
            "The sentence marks two entities with @...$ placeholders. Which relation does the sentence state "
            f"between them? Answer with one word: {', '.join(self._verbal().values())}."
        )

    def render_input(self, example: dict) -> str:
        return example["text"]

    def target(self, example: dict) -> str:
        return self._verbal()[example["label"]]

    def parse(self, text: str, example: dict) -> Parsed:
        by_word = {v: k for k, v in self._verbal().items()}
        found = find_first_option(clean_output(text), list(by_word))
        return Parsed(by_word[found], True) if found else Parsed(UNPARSED, False)

    def encoder_input(self, example: dict):
        return example["text"]

    def gold(self, example: dict) -> str:
        return example["label"]

    def score_gold(self, golds, predictions, ids) -> dict:
        m = metrics.relation_micro_f1(golds, predictions, self.spec.negative)
        return {"score": 100 * m["f1"], **{k: 100 * v for k, v in m.items()}}

    def stats(self, golds, predictions, ids):
        import numpy as np

        neg = self.spec.negative
        return np.array([(g == p != neg, p != neg, g != neg) for g, p in zip(golds, predictions)], dtype=float).reshape(
            -1, 3
        )

    def score_stats(self, totals):
        return 100 * metrics.f1_from_counts(totals[..., 0], totals[..., 1], totals[..., 2])

    def choice_queries(self) -> list[ChoiceQuery]:
        return [ChoiceQuery(self.instruction(), list(self._verbal().values()), self.target)]
