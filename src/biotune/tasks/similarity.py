"""Sentence similarity (BIOSSES): a score from 0 to 4; scored by Pearson r."""

from __future__ import annotations

import re

import numpy as np

from biotune import metrics
from biotune.errors import excerpt

from .base import TASKS, Parsed, Task, clean_output

LOW, HIGH = 0.0, 4.0
UNPARSED = (LOW + HIGH) / 2  # an unparsed output predicts the middle of the scale
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


@TASKS.register("similarity")
class SimilarityTask(Task):
    name = "similarity"
    schema = "sentence_pair"
    fields = {"id": "str", "sentence1": "str", "sentence2": "str", "score": "float"}
    source_fields = ("id", "sentence1", "sentence2", "score")
    encoder_head = "regression"
    gold_field = "score"
    rule = "Pearson r"
    rule_low = -100.0
    max_new_tokens = 6

    def default_instruction(self) -> str:
        return (
            "Rate how similar in meaning the two sentences are, from 0 (no relation) to 4 (equivalent). "
            "Answer with the number only."
        )

    @classmethod
    def from_record(cls, get, spec, bad) -> dict:
        try:
            score = float(get("score"))
        except (TypeError, ValueError):
            bad(f"score {excerpt(get('score'))} is not a number")
        return {"sentence1": str(get("sentence1")), "sentence2": str(get("sentence2")), "score": score}

    def render_input(self, example: dict) -> str:
        return f"Sentence 1: {example['sentence1']}\nSentence 2: {example['sentence2']}"

    def target(self, example: dict) -> str:
        return f"{example['score']:.1f}"

    def parse(self, text: str, example: dict) -> Parsed:
        m = _NUMBER.search(clean_output(text))
        if not m:
            return Parsed(UNPARSED, False)
        return Parsed(min(HIGH, max(LOW, float(m.group()))), True)

    def encoder_input(self, example: dict):
        return (example["sentence1"], example["sentence2"])

    def gold(self, example: dict) -> float:
        return float(example["score"])

    def rule_stats(self, golds, predictions, ids):
        """Per pair: the moments (1, x, y, x², y², xy) of gold x and prediction y, each taken about its mean over
        the pairs given (Pearson r does not change under a shift; the sums then stay well conditioned)."""
        if len(golds) != len(predictions):
            raise ValueError(f"{len(golds)} gold scores but {len(predictions)} predictions")
        x, y = np.asarray(golds, dtype=float), np.asarray(predictions, dtype=float)
        if len(x):
            x, y = x - x.mean(), y - y.mean()
        return np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=1).reshape(-1, 6)

    def rule_score(self, totals):
        return 100 * metrics.pearson_from_moments(totals)

    def rule_details(self, totals) -> dict:
        r = float(self.rule_score(totals))
        # a constant prediction (or gold) leaves r undefined: reported as 0 and flagged
        return {"pearson": r, "pearson_undefined": bool(not metrics.pearson_defined(totals))}
