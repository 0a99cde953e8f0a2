"""What every task type provides. A task type is one module: a class registered in TASKS that owns everything about
its kind of example, from the dataset file to the score:

    data      fields (example field -> type), source_fields (what a dataset file maps from its columns),
              labelled (a closed label set), check_file(df) (its own checks of a dataset file),
              from_record(get, spec, bad) (one source record -> the example's fields)
    encoder   encoder_head (biotune.models.heads) and head_labels(spec) (the head's classes in index order)
    prompt    instruction() + render_input(example): what a generative model reads;
              encoder_input(example): what an encoder reads
    target(example)                      the answer text fine-tuning trains on / shots show
    parse(text, example) -> Parsed       generated text back to the metric's structure
    score     one path: per-example counts (stats) summed, then the score (score_stats) and its parts (details),
              by the dataset's official BLURB rule (x100) or the metric its dataset file chose (metric_registry)

Label-choice task types (relation, QA, HoC labels) also give `choice_queries()`: questions whose answer is one
of a few option texts, so a model can be scored by option log-likelihood instead of free generation.

Adding a task type: its module, decorated `@TASKS.register("<name>")`, and one import line in tasks/__init__.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from biotune.errors import excerpt
from biotune.fields import ConfigFieldError
from biotune.metrics import f1_from_counts
from biotune.registry import Registry

from .mentions import OUTPUT_FORMATS
from .metric_registry import METRICS, Metric

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
    schema = ""  # the name of its example structure (task types with the same fields share it)
    fields: dict[str, Any] = {}  # example field -> type: "str", "float", ["str"] (a list), [["str"]] (of lists)
    source_fields: tuple[str, ...] = ()  # the fields a dataset file maps from its source's columns (`fields:`)
    labelled = False  # a closed label set: a dataset file must give `labels:`
    encoder_head = ""  # the head an encoder gets for it (biotune.models.heads)
    typed_entities = False  # a dataset file may name typed entities (`entities:`)
    rule = ""  # its BLURB rule, as a report names the metric
    rule_low = 0.0  # the rule's lowest score x100 (Pearson r's: -100); every score's highest is 100
    gold_field = ""  # the example field that holds its gold answer (what `gold` reads)
    max_new_tokens = 16

    def __init__(self, spec: DatasetSpec):
        self.spec = spec
        # the metric a dataset file chose instead of the BLURB rule (None: the rule)
        self.chosen_metric: Metric | None = None if spec.metric == "auto" else METRICS.get(spec.metric)

    # -- the dataset file --------------------------------------------------------------------------
    @classmethod
    def check_file(cls, df) -> None:
        """Checks of a dataset file (biotune.data.dataset_file.DatasetFile) that only this task type needs; a
        problem raises ConfigFieldError naming the field."""
        if df.entities and not cls.typed_entities:
            raise ConfigFieldError(["entities"], "typed entities are for ner datasets")
        if cls.labelled and not df.labels:
            raise ConfigFieldError(
                ["labels"], f"a {cls.name} dataset needs its labels, e.g. labels: {{positive: yes, negative: no}}"
            )

    @classmethod
    def from_record(cls, get: Callable[[str], Any], spec: DatasetSpec, bad: Callable[[str], None]) -> dict:
        """One source record's example fields (all but `id`): `get(field)` reads the column the field maps to,
        `bad(message)` raises the error naming the file and line."""
        raise NotImplementedError

    @classmethod
    def head_labels(cls, spec: DatasetSpec) -> list[str]:
        """The encoder head's classes in index order."""
        return list(spec.labels)

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

    def answer_text(self, value: Any, example: dict) -> str:
        """A gold answer or a prediction (in the metric's structure, as `gold` gives it) written as the answer
        text: what a report shows a reader."""
        try:
            return self.target({**example, self.gold_field: value})
        except (KeyError, TypeError, ValueError):
            return str(value)

    def gold(self, example: dict) -> Any:
        """The gold answer in the metric's structure (also what an encoder head is trained on)."""
        raise NotImplementedError

    def encoder_input(self, example: dict) -> Any:
        """What an encoder reads: a word list (token tagging), a text, or a (text, text) pair."""
        raise NotImplementedError

    # -- score: score_stats(stats(...).sum(axis=0)), one path for a run, a predictions file and a resample --------
    @property
    def metric(self) -> str:
        """The metric's name as a report writes it."""
        return self.chosen_metric.title if self.chosen_metric else self.rule

    @property
    def score_range(self) -> tuple[float, float]:
        """The lowest and highest score x100 its metric can give: an interval is cut there."""
        return (self.chosen_metric.low if self.chosen_metric else self.rule_low), 100.0

    def score(self, examples: Sequence[dict], predictions: Sequence[Any]) -> dict:
        """At least {"score": the metric x100}, and its parts (precision, recall, a type's F1, ...)."""
        return self.score_gold([self.gold(e) for e in examples], predictions, [e["id"] for e in examples])

    def score_gold(self, golds: Sequence[Any], predictions: Sequence[Any], ids: Sequence[str]) -> dict:
        """The same from gold answers (as `gold` gives them) and example ids: what a predictions file holds."""
        golds, predictions, ids = self.units(golds, predictions, ids)
        totals = self.stats(golds, predictions, ids).sum(axis=0)
        score = float(self.score_stats(totals))
        if self.chosen_metric:
            return {"score": score, self.chosen_metric.name: score}
        return {"score": score, **self.rule_details(totals)}

    def units(self, golds, predictions, ids):
        """The scored units: the examples themselves (doc classification: the rows of one document unioned)."""
        return golds, predictions, ids

    def stats(self, golds: Sequence[Any], predictions: Sequence[Any], ids: Sequence[str]) -> np.ndarray:
        """One row of counts per unit (an (n, k) array) whose column sums determine the score
        (biotune.metrics: sufficient statistics)."""
        if self.chosen_metric:
            return self.chosen_metric.stats(self, golds, predictions)
        return self.rule_stats(golds, predictions, ids)

    def score_stats(self, totals):
        """The score (x100) from summed stats; vectorized over leading axes (one row per resample)."""
        if self.chosen_metric:
            return self.chosen_metric.score_stats(self, totals)
        return self.rule_score(totals)

    # the BLURB rule of the task type
    def rule_stats(self, golds, predictions, ids) -> np.ndarray:
        raise NotImplementedError

    def rule_score(self, totals):
        raise NotImplementedError

    def rule_details(self, totals) -> dict:
        """The score's parts from the summed stats of the whole split."""
        return {}

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
    fields = {"id": "str", "doc_id": "str", "tokens": ["str"], "tags": ["str"]}
    source_fields = ("id", "doc_id", "tokens", "tags")
    encoder_head = "token_classification"
    gold_field = "tags"
    default_output_format = "list"

    def __init__(self, spec: DatasetSpec, output_format: str | None = None):

        super().__init__(spec)
        self.output_format = output_format or self.default_output_format
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output format {self.output_format!r}; valid: {', '.join(OUTPUT_FORMATS)}")

    @classmethod
    def check_file(cls, df) -> None:
        super().check_file(df)
        if not df.tags:
            raise ConfigFieldError(["tags"], "a token-tagging dataset needs its tag set, e.g. tags: [B, I, O]")

    @classmethod
    def from_record(cls, get, spec, bad) -> dict:
        tokens, tags = record_strings(get("tokens"), "tokens", bad), record_strings(get("tags"), "tags", bad)
        if len(tokens) != len(tags):
            bad(f"{len(tokens)} tokens but {len(tags)} tags")
        for t in tags:
            if t not in spec.tags:
                bad(
                    f"unknown tag {excerpt(t)}; {spec.name} uses {list(spec.tags)} (fix the file or the dataset's tags)"
                )
        return {"doc_id": str(get("doc_id") or ""), "tokens": tokens, "tags": tags}

    @classmethod
    def head_labels(cls, spec) -> list[str]:
        return ["O"] + [t for t in spec.tags if t != "O"]

    def render_input(self, example: dict) -> str:
        return " ".join(example["tokens"])

    def encoder_input(self, example: dict) -> list[str]:
        return list(example["tokens"])

    def gold(self, example: dict) -> list[str]:
        return list(example["tags"])


class MicroF1Rule:
    """A rule scored by micro F1 of summed (tp, predicted, gold) counts in the first three columns of its stats
    (entities, relations, (document, label) cells), with precision and recall beside it."""

    def rule_score(self, totals):
        return 100 * f1_from_counts(totals[..., 0], totals[..., 1], totals[..., 2])

    def rule_details(self, totals) -> dict:
        return prf_details(totals)


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


# -- helpers shared by the record mappings ----------------------------------------------------------


def record_strings(value, what: str, bad) -> list[str]:
    """A record's list of strings (tokens, tags, labels); `bad` when it is not a list."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        bad(f"{what} must be a list, got {type(value).__name__} {excerpt(value)}")
    return [str(v) for v in value]


def record_label(value, spec, bad) -> str:
    """A record's label, which must be one of the dataset's labels."""
    label = str(value).strip() if value is not None else ""
    if label not in spec.labels:
        bad(
            f"unknown label {excerpt(label)}; {spec.name} has labels {list(spec.labels)} (add it to the dataset file's "
            "labels, with its answer text)"
        )
    return label


def prf_details(totals) -> dict:
    """Precision, recall and F1 (x100) of summed (tp, predicted, gold) counts in the first three columns."""
    tp, n_pred, n_gold = (float(totals[i]) for i in range(3))
    return {
        "precision": 100 * (tp / n_pred if n_pred else 0.0),
        "recall": 100 * (tp / n_gold if n_gold else 0.0),
        "f1": float(100 * f1_from_counts(tp, n_pred, n_gold)),
    }
