"""What every task type provides. A task type is a small object with four verbs:

    prompt pieces  instruction() + render_input(example)   what a generative model reads
                   (encoder_input(example): what an encoder reads)
    target(example)                                        the answer text fine-tuning trains on / shots show
    parse(text, example) -> Parsed                         generated text back to the metric's structure
    score(examples, predictions) -> dict                   the dataset's official BLURB rule (x100);
                                                           score_gold(golds, predictions, ids) from files

Label-choice task types (relation, QA, HoC labels) also give `choice_queries()`: questions whose answer is one
of a few option texts, so a model can be scored by option log-likelihood instead of free generation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from biotune.registry import Registry

if TYPE_CHECKING:
    from biotune.data.spec import DatasetSpec

# Bumped whenever a metric, a prompt, a target format or a parser changes what a run scores: part of every result's
# identity (biotune.identity), so results scored the old way are rerun, never mixed with new ones.
# 1: the first BLURB-exact rules; 2: PICO macro F1 over the classes present, mentions placed by occurrence.
SCORING_VERSION = 2


@dataclass
class Parsed:
    value: Any  # the prediction in the structure the metric needs
    ok: bool  # False: the output could not be parsed; `value` is then a wrong prediction


@dataclass
class ChoiceQuery:
    """One multiple-choice question asked of an example: the model picks the option it finds most likely."""

    instruction: str
    options: list[str]  # option texts, as the model would write them
    answer: Callable[[dict], str]  # the correct option text for an example (used for shots)


class Task:
    """Base of the task types; subclasses register in TASKS under their task-type name."""

    name = ""
    schema = ""  # the example schema its datasets load into (biotune.data.schema)
    metric = ""  # human-readable name of the official metric
    max_new_tokens = 16

    def __init__(self, spec: DatasetSpec):
        self.spec = spec
        if spec.metric != "auto":  # a dataset file's own metric instead of the BLURB rule
            from .metric_registry import bind

            bind(self, spec.metric)

    # -- prompt ------------------------------------------------------------------------------------
    def instruction(self) -> str:
        return self.spec.instruction or self.default_instruction()

    def default_instruction(self) -> str:
        raise NotImplementedError

    def render_input(self, example: dict) -> str:
        raise NotImplementedError

    def target(self, example: dict) -> str:
        raise NotImplementedError

    # -- output ------------------------------------------------------------------------------------
    def parse(self, text: str, example: dict) -> Parsed:
        raise NotImplementedError

    def gold(self, example: dict) -> Any:
        """The gold answer in the metric's structure (also what an encoder head is trained on)."""
        raise NotImplementedError

    def encoder_input(self, example: dict) -> Any:
        """What an encoder reads: a word list (token tagging), a text, or a (text, text) pair."""
        raise NotImplementedError

    def score(self, examples: Sequence[dict], predictions: Sequence[Any]) -> dict:
        """Returns at least {"score": x100 official metric}."""
        return self.score_gold([self.gold(e) for e in examples], predictions, [e["id"] for e in examples])

    def score_gold(self, golds: Sequence[Any], predictions: Sequence[Any], ids: Sequence[str]) -> dict:
        """The same from gold answers (as `gold` gives them) and example ids: what a predictions file holds."""
        raise NotImplementedError

    # -- sufficient statistics (biotune.metrics): score = score_stats(stats.sum(axis=0)) -----------------------
    def stats(self, golds: Sequence[Any], predictions: Sequence[Any], ids: Sequence[str]):
        """One row of counts per example (an (n, k) array) whose column sums determine the score."""
        raise NotImplementedError

    def score_stats(self, totals):
        """The score (x100) from summed stats; vectorized over leading axes (one row per resample)."""
        raise NotImplementedError

    # -- option log-likelihood ---------------------------------------------------------------------
    def choice_queries(self) -> list[ChoiceQuery] | None:
        """None: this task type has no fixed options (free generation only)."""
        return None

    def from_choices(self, example: dict, chosen: list[str]) -> Parsed:
        """Combine the chosen option of each query into a prediction."""
        return self.parse(chosen[0], example)


class TokenTaggingTask(Task):
    """Task types on token/tag examples (NER, PICO): the model reads the sentence, scores are per token.
    `output_format` (biotune.tasks.mentions): `list` (the mentions) or `inline` (the sentence, mentions marked)."""

    schema = "token_tagging"
    default_output_format = "list"

    def __init__(self, spec: DatasetSpec, output_format: str | None = None):
        from .mentions import OUTPUT_FORMATS

        super().__init__(spec)
        self.output_format = output_format or self.default_output_format
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output format {self.output_format!r}; valid: {', '.join(OUTPUT_FORMATS)}")

    def render_input(self, example: dict) -> str:
        return " ".join(example["tokens"])

    def encoder_input(self, example: dict) -> list[str]:
        return list(example["tokens"])

    def gold(self, example: dict) -> list[str]:
        return list(example["tags"])

    def stats(self, golds, predictions, ids):
        import numpy as np

        from biotune.metrics import entity_counts

        return np.array([entity_counts(g, p) for g, p in zip(golds, predictions)], dtype=float).reshape(-1, 3)

    def score_stats(self, totals):
        from biotune.metrics import f1_from_counts

        return 100 * f1_from_counts(totals[..., 0], totals[..., 1], totals[..., 2])


TASKS: Registry[type[Task]] = Registry("task type")


def task_for(spec: DatasetSpec, output_format: str | None = None) -> Task:
    """The task of a dataset; `output_format` (token-tagging task types only): how mentions are written."""
    cls = TASKS.get(spec.task)
    return cls(spec, output_format) if issubclass(cls, TokenTaggingTask) else cls(spec)


def output_format_for(spec: DatasetSpec, requested: str = "auto") -> str | None:
    """The output format a dataset's task uses: `requested`, or the task type's default for 'auto'; None for task
    types that write no mentions."""
    cls = TASKS.get(spec.task)
    if not issubclass(cls, TokenTaggingTask):
        return None
    return cls.default_output_format if requested == "auto" else requested


# -- helpers shared by the parsers ------------------------------------------------------------------


def clean_output(text: str) -> str:
    """Generated text up to the end of the answer: strips whitespace and anything after a blank line."""
    return text.strip().split("\n\n", 1)[0].strip()


def find_first_option(text: str, options: Sequence[str]) -> str | None:
    """The option (whole word, case-insensitive) that appears first in `text`."""
    best, best_pos = None, None
    for option in options:
        m = re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text, flags=re.IGNORECASE)
        if m and (best_pos is None or m.start() < best_pos):
            best, best_pos = option, m.start()
    return best
