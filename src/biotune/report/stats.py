"""Numbers behind the report: seed aggregates, BLURB scores, paired bootstrap, Pareto fronts, recommendations."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std of the score over seeds per (dataset, model, method), with mean resources."""
    g = df.groupby(["task", "dataset", "model", "method"], sort=False)
    out = g.agg(score_mean=("score", "mean"), score_std=("score", "std"), seeds=("seed", "nunique"),
                trainable_params=("trainable_params", "mean"), peak_memory_mb=("peak_memory_mb", "mean"),
                train_seconds=("train_seconds", "mean"), trains=("trains", "first")).reset_index()
    out["score_std"] = out["score_std"].fillna(0.0)
    return out


def blurb_scores(df: pd.DataFrame) -> pd.DataFrame:
    """BLURB score per (model, method, seed) over the datasets present (macro over task types), then mean and
    std over seeds. `task_types` says how many of the 6 were present."""
    rows = []
    for (model, method, seed), g in df.groupby(["model", "method", "seed"], sort=False):
        task_means = g.groupby("task")["score"].mean()
        rows.append({"model": model, "method": method, "seed": seed, "blurb": task_means.mean(),
                     "task_types": len(task_means)})
    per_seed = pd.DataFrame(rows)
    if per_seed.empty:
        return per_seed
    out = per_seed.groupby(["model", "method"], sort=False).agg(
        blurb_mean=("blurb", "mean"), blurb_std=("blurb", "std"), seeds=("seed", "nunique"),
        task_types=("task_types", "min")).reset_index()
    out["blurb_std"] = out["blurb_std"].fillna(0.0)
    return out.sort_values("blurb_mean", ascending=False)


def seed_variance(agg: pd.DataFrame) -> pd.DataFrame:
    """Seed std of fine-tuning vs in-context methods, over the cells run with more than one seed."""
    multi = agg[agg["seeds"] > 1].copy()
    multi["kind"] = np.where(multi["trains"], "fine-tuning", "in-context")
    return multi.groupby(["kind", "method"]).agg(mean_seed_std=("score_std", "mean"),
                                                 cells=("score_std", "size")).reset_index()


def paired_bootstrap(score: Callable[[Sequence[int]], float], other: Callable[[Sequence[int]], float], n: int,
                     samples: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict:
    """Paired bootstrap of score(A) - score(B) over the same n test examples, resampled with replacement.
    `score(idx)` scores a system on the examples at `idx`. Returns the observed difference, the
    (1 - alpha) percentile interval, a two-sided p-value and whether the interval excludes 0."""
    rng = np.random.default_rng(seed)
    everything = np.arange(n)
    observed = score(everything) - other(everything)
    diffs = np.empty(samples)
    for i in range(samples):
        idx = rng.integers(0, n, n)
        diffs[i] = score(idx) - other(idx)
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean()))
    return {"diff": float(observed), "ci_low": float(lo), "ci_high": float(hi), "p_value": float(p),
            "significant": bool(lo > 0 or hi < 0)}


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: lower cost (x) and higher score (y)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def recommendations(agg: pd.DataFrame, memory_mb: Sequence[float], seconds: Sequence[float]) -> pd.DataFrame:
    """Best (model, method) per task type under each memory x time budget: the highest mean score over the
    task type's datasets among (model, method) pairs whose every cell fits the budget. Pairs with the same best
    score are a tie: the cheaper one (less peak memory, then less training time) is named and the others are
    listed in `tied_with`."""
    by_pair = agg.groupby(["task", "model", "method"]).agg(
        score=("score_mean", "mean"), peak_memory_mb=("peak_memory_mb", "max"),
        train_seconds=("train_seconds", "max")).reset_index()
    rows = []
    for task, g in by_pair.groupby("task", sort=False):
        for mem in memory_mb:
            for sec in seconds:
                fit = g[(g["peak_memory_mb"] <= mem) & (g["train_seconds"].fillna(0) <= sec)]
                top = fit[np.isclose(fit["score"], fit["score"].max())] if len(fit) else fit
                top = top.assign(cost_s=top["train_seconds"].fillna(0)).sort_values(["peak_memory_mb", "cost_s"])
                rows.append({"task": task, "memory_budget_mb": mem, "time_budget_s": sec,
                             "model": top["model"].iloc[0] if len(top) else None,
                             "method": top["method"].iloc[0] if len(top) else None,
                             "score": float(top["score"].iloc[0]) if len(top) else None,
                             "tied_with": [f"{m} / {k}" for m, k in zip(top["model"].iloc[1:], top["method"].iloc[1:])]})
    return pd.DataFrame(rows)
