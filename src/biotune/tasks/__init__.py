"""Task types, one module each: its example fields, its dataset files' checks and record mapping, its encoder head,
its prompt, target, parser and score (biotune.tasks.base). Adding one: a new module whose class is decorated
`@TASKS.register("<name>")`, imported below."""

from . import doc_classification, ner, pico, qa, relation, similarity  # noqa: E402,F401  (registers)
from .base import SCORING_VERSION, TASKS, ChoiceQuery, Parsed, Task, output_format_for, task_for
from .metric_registry import METRICS, metric_choices

__all__ = [
    "SCORING_VERSION",
    "TASKS",
    "METRICS",
    "metric_choices",
    "ChoiceQuery",
    "Parsed",
    "Task",
    "output_format_for",
    "task_for",
]
