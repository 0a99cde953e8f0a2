"""Relation extraction (ChemProt, DDI, GAD): pick the relation label of the marked entity pair; scored by
micro F1 without the negative class."""

from __future__ import annotations

import numpy as np

from biotune.fields import ConfigFieldError

from .base import (
    TASKS,
    ChoiceQuery,
    MicroF1Rule,
    Parsed,
    Task,
    clean_output,
    find_first_option,
    record_label,
)

UNPARSED = "<unparsed>"  # never a gold label, and not the negative one: an unparsed output is a wrong positive


@TASKS.register("relation")
class RelationTask(MicroF1Rule, Task):
    name = "relation"
    schema = "relation"
    fields = {"id": "str", "text": "str", "label": "str"}  # text: the entities marked, e.g. @GENE$
    source_fields = ("id", "text", "label")
    labelled = True
    encoder_head = "sequence_classification"
    gold_field = "label"
    rule = "micro F1, negative class excluded"
    max_new_tokens = 6

    @classmethod
    def check_file(cls, df) -> None:
        super().check_file(df)
        if df.negative is None and df.metric == "auto":
            raise ConfigFieldError(
                ["negative"],
                "micro F1 (the relation rule) leaves out the negative label: "
                "name it (negative: none), or choose metric: macro_f1 or accuracy",
            )

    @classmethod
    def from_record(cls, get, spec, bad) -> dict:
        return {"text": str(get("text")), "label": record_label(get("label"), spec, bad)}

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

    def rule_stats(self, golds, predictions, ids):
        if len(golds) != len(predictions):
            raise ValueError(f"{len(golds)} gold labels but {len(predictions)} predictions")
        neg = self.spec.negative
        rows = [(g == p != neg, p != neg, g != neg) for g, p in zip(golds, predictions)]
        return np.array(rows, dtype=float).reshape(-1, 3)

    def choice_queries(self) -> list[ChoiceQuery]:
        return [ChoiceQuery(self.instruction(), list(self._verbal().values()), self.target)]
