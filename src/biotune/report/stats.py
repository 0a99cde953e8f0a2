"""Numbers behind the report: seed aggregates, BLURB scores, paired bootstrap, Pareto fronts, recommendations."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std of the test score over seeds per (dataset, model, method), the mean dev score, mean
    resources, and the cost of the configuration (training time plus its search's)."""
    g = df.groupby(["task", "dataset", "model", "method"], sort=False)
    out = g.agg(score_mean=("score", "mean"), score_std=("score", "std"), seeds=("seed", "nunique"),
                dev_mean=("dev_score", "mean"), trainable_params=("trainable_params", "mean"),
                peak_memory_mb=("peak_memory_mb", "mean"), train_seconds=("train_seconds", "mean"),
                search_seconds=("search_seconds", "first"), trains=("trains", "first")).reset_index()
    out["score_std"] = out["score_std"].fillna(0.0)
    # what the configuration cost: one run's training plus the search that chose it (the other candidates)
    out["cost_seconds"] = out["train_seconds"].fillna(0) + out["search_seconds"].fillna(0)
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


def resample_weights(n: int, samples: int, seed: int = 0, chunk: int = 500):
    """Bootstrap resamples of n examples as count vectors, `chunk` rows at a time: yields (b, n) float32 arrays
    whose row r counts how often each example was drawn in resample r. The same seed gives the same draws, so
    every method compared on one test set sees the same resamples (a paired bootstrap)."""
    rng = np.random.default_rng(seed)
    for start in range(0, samples, chunk):
        b = min(chunk, samples - start)
        idx = rng.integers(0, n, (b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float32)


def replicate_scores(stats: dict, score: Callable, samples: int = 10000, seed: int = 0) -> tuple[dict, dict]:
    """For every run (key -> its (n, k) per-example stats on the same n examples): the observed score and its
    score in each of `samples` example resamples (the same resamples for every run)."""
    keys = list(stats)
    observed = {k: float(score(stats[k].sum(axis=0))) for k in keys}
    if not keys:
        return observed, {}
    n = next(iter(stats.values())).shape[0]
    parts = {k: [] for k in keys}
    for w in resample_weights(n, samples, seed):
        for k in keys:
            parts[k].append(np.asarray(score(w @ stats[k].astype(np.float32)), dtype=float))
    return observed, {k: np.concatenate(v) for k, v in parts.items()}


def seed_example_test(observed_a: Sequence[float], reps_a: Sequence[np.ndarray], observed_b: Sequence[float],
                      reps_b: Sequence[np.ndarray], seed: int = 0, alpha: float = 0.05) -> dict:
    """Method A vs method B over the seeds they share (pairs: A's and B's run of one seed; arrays of example
    resamples from `replicate_scores`). Each replicate draws the seeds with replacement and the examples (the
    resample of that replicate) and averages score(A) - score(B) over the drawn seeds: so the interval holds
    both sources of variation, seed-to-seed and test-set sampling. Returns the observed mean difference, the
    (1 - alpha) percentile interval, a two-sided p-value ((hits + 1) / (samples + 1), never 0), the counts."""
    s = len(observed_a)
    if s == 0 or s != len(observed_b):
        raise ValueError("need the same seeds on both sides")
    d = np.stack([ra - rb for ra, rb in zip(reps_a, reps_b)])  # (seeds, samples)
    samples = d.shape[1]
    rng = np.random.default_rng(seed + 1)
    drawn = rng.integers(0, s, (samples, s))
    diffs = d[drawn, np.arange(samples)[:, None]].mean(axis=1)
    observed = float(np.mean(np.asarray(observed_a) - np.asarray(observed_b)))
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2 * min(((diffs <= 0).sum() + 1) / (samples + 1), ((diffs >= 0).sum() + 1) / (samples + 1)))
    return {"diff": observed, "ci_low": float(lo), "ci_high": float(hi), "p_value": float(p), "seeds": s,
            "samples": samples}


def seed_example_interval(observed: Sequence[float], reps: Sequence[np.ndarray], seed: int = 0,
                          alpha: float = 0.05) -> dict:
    """One method's score over its seeds (the mean) with a (1 - alpha) interval from resampling seeds and
    examples, as in `seed_example_test`."""
    d = np.stack(list(reps))
    s, samples = d.shape
    drawn = np.random.default_rng(seed + 2).integers(0, s, (samples, s))
    means = d[drawn, np.arange(samples)[:, None]].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return {"score": float(np.mean(observed)), "ci_low": float(lo), "ci_high": float(hi), "seeds": s}


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error over all the tests given, any dependence):
    the i-th smallest p times (m - i), made monotone, capped at 1. Reject where adjusted < alpha."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate(np.minimum(1.0, p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out


def paired_bootstrap(score: Callable[[Sequence[int]], float], other: Callable[[Sequence[int]], float], n: int,
                     samples: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict:
    """Paired bootstrap of score(A) - score(B) over the same n test examples of one run each, resampled with
    replacement; `score(idx)` scores a system on the examples at `idx`. The reference the stats-based test is
    checked against (tests/test_significance.py)."""
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
    """Best (model, method) per task type under each memory x time budget, decided on dev: the highest mean dev
    score over the task type's datasets among (model, method) pairs whose every cell fits the budget (time: the
    configuration's cost, its search included); `score` is the same pairs' mean test score, shown beside. Pairs
    with the same best dev score are a tie: the cheaper one (less peak memory, then less cost) is named and the
    others are listed in `tied_with`. Pairs without a dev score are never recommended."""
    cost = "cost_seconds" if "cost_seconds" in agg else "train_seconds"
    dev = agg["dev_mean"] if "dev_mean" in agg else pd.Series(np.nan, index=agg.index)
    by_pair = agg.assign(dev_mean=dev).groupby(["task", "model", "method"]).agg(
        dev=("dev_mean", lambda v: v.mean() if v.notna().all() else np.nan), score=("score_mean", "mean"),
        peak_memory_mb=("peak_memory_mb", "max"), cost_s=(cost, "max")).reset_index()
    by_pair = by_pair[by_pair["dev"].notna()]
    rows = []
    for task, g in by_pair.groupby("task", sort=False):
        for mem in memory_mb:
            for sec in seconds:
                fit = g[(g["peak_memory_mb"] <= mem) & (g["cost_s"].fillna(0) <= sec)]
                top = fit[np.isclose(fit["dev"], fit["dev"].max())] if len(fit) else fit
                top = top.assign(c=top["cost_s"].fillna(0)).sort_values(["peak_memory_mb", "c"])
                rows.append({"task": task, "memory_budget_mb": mem, "time_budget_s": sec,
                             "model": top["model"].iloc[0] if len(top) else None,
                             "method": top["method"].iloc[0] if len(top) else None,
                             "dev": float(top["dev"].iloc[0]) if len(top) else None,
                             "score": float(top["score"].iloc[0]) if len(top) else None,
                             "tied_with": [f"{m} / {k}" for m, k in zip(top["model"].iloc[1:], top["method"].iloc[1:])]})
    return pd.DataFrame(rows, columns=["task", "memory_budget_mb", "time_budget_s", "model", "method", "dev", "score",
                                       "tied_with"])
