"""Sentence similarity (BIOSSES): a score from 0 to 4; scored by Pearson r."""

from __future__ import annotations

import re

from biotune import metrics

from .base import TASKS, Parsed, Task, clean_output

LOW, HIGH = 0.0, 4.0
UNPARSED = (LOW + HIGH) / 2  # an unparsed output predicts the middle of the scale
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


@TASKS.register("similarity")
class SimilarityTask(Task):
    name = "similarity"
    schema = "sentence_pair"
    metric = "Pearson r"
    max_new_tokens = 6

    def default_instruction(self) -> str:
        return (
            "Rate how similar in meaning the two sentences are, from 0 (no relation) to 4 (equivalent). "
            "Answer with the number only."
        )

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

    def score_gold(self, golds, predictions, ids) -> dict:
        m = metrics.pearson(golds, predictions)
        return {"score": 100 * m["pearson"], "pearson": 100 * m["pearson"], "pearson_undefined": m["undefined"]}

    def stats(self, golds, predictions, ids):
        import numpy as np

        x, y = np.asarray(golds, dtype=float), np.asarray(predictions, dtype=float)
        return np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=1).reshape(-1, 6)

    def score_stats(self, totals):
        return 100 * metrics.pearson_from_moments(totals)
