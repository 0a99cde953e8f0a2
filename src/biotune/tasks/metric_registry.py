"""Metrics a dataset file may choose instead of its task type's BLURB rule (`metric:`), for a user's own data:

| name       | task types                | score                                                            |
|------------|---------------------------|------------------------------------------------------------------|
| accuracy   | relation, qa              | share of examples whose label is right                           |
| macro_f1   | relation, qa              | unweighted mean over the dataset's labels of each label's F1     |
| spearman   | similarity                | Spearman's rank correlation (Pearson r of average ranks)         |
| strict_entity_f1 | ner                 | entity-level micro F1 by strict IOB2 (an entity must begin with B-) |

`auto` (the default) keeps the task type's BLURB rule. A task holds the metric its dataset chose
(`Task.chosen_metric`) and scores by it on its one path (biotune.tasks.base): per-example sufficient statistics
(`stats`), summed, then the score (`score_stats`), for a run, a predictions file and a bootstrap resample alike.
Spearman's ranks are taken over the whole split, so a resample's score is Pearson r of those ranks: the whole
split's score is exact, a resample's is Spearman's rho up to re-ranking inside the resample.

Adding a metric: one more entry here with the task types it fits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from biotune import metrics
from biotune.registry import Registry


@dataclass(frozen=True)
class Metric:
    name: str
    title: str  # as the report names it
    tasks: tuple[str, ...]
    stats: Callable  # (task, golds, predictions) -> (n, k) array
    score_stats: Callable  # (task, totals) -> score x100
    low: float = 0.0  # its lowest score x100 (a correlation's: -100); the highest is 100


METRICS: Registry[Metric] = Registry("metric")


def metric_choices(task_type: str) -> list[str]:
    return [n for n, m in METRICS.items() if task_type in m.tasks]


def _accuracy_stats(task, golds, preds):
    return np.array([(g == p, 1) for g, p in zip(golds, preds)], dtype=float).reshape(-1, 2)


def _accuracy(task, t):
    t = np.asarray(t, dtype=float)
    return 100 * np.divide(t[..., 0], t[..., 1], out=np.zeros(t.shape[:-1]), where=t[..., 1] > 0)


def _macro_stats(task, golds, preds):
    labels = list(task.spec.labels)
    rows = [[x for label in labels for x in (g == p == label, p == label, g == label)] for g, p in zip(golds, preds)]
    return np.array(rows, dtype=float).reshape(-1, 3 * len(labels))


def _macro(task, t):
    t = np.asarray(t, dtype=float)
    k = t.shape[-1] // 3
    per = t.reshape(*t.shape[:-1], k, 3)
    return 100 * metrics.f1_from_counts(per[..., 0], per[..., 1], per[..., 2]).mean(axis=-1)


def _strict_entity_stats(task, golds, preds):
    return task.entity_stats(golds, preds, strict=True)  # the NER rule's counts, chunked by strict IOB2


def _micro_f1(task, t):
    return task.rule_score(t)  # the NER rule's micro F1 of the summed (tp, predicted, gold)


def _spearman_stats(task, golds, preds):
    from scipy.stats import rankdata

    x = rankdata(np.asarray(golds, dtype=float))
    y = rankdata(np.asarray(preds, dtype=float))
    return np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=1).reshape(-1, 6)


def _spearman(task, t):
    return 100 * metrics.pearson_from_moments(t)


METRICS.add("accuracy", Metric("accuracy", "accuracy", ("relation", "qa"), _accuracy_stats, _accuracy))
METRICS.add("macro_f1", Metric("macro_f1", "macro F1 over the labels", ("relation", "qa"), _macro_stats, _macro))
METRICS.add("spearman", Metric("spearman", "Spearman rho", ("similarity",), _spearman_stats, _spearman, low=-100.0))
METRICS.add(
    "strict_entity_f1",
    Metric("strict_entity_f1", "entity-level micro F1, strict IOB2", ("ner",), _strict_entity_stats, _micro_f1),
)
