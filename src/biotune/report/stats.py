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
    out = g.agg(
        score_mean=("score", "mean"),
        score_std=("score", "std"),
        seeds=("seed", "nunique"),
        dev_mean=("dev_score", "mean"),
        trainable_params=("trainable_params", "mean"),
        peak_memory_mb=("peak_memory_mb", "mean"),
        train_seconds=("train_seconds", "mean"),
        search_seconds=("search_seconds", "first"),
        trains=("trains", "first"),
        **({"budget": ("budget", "first")} if "budget" in df else {}),
        **({"memory_kind": ("memory_kind", "first")} if "memory_kind" in df else {}),
        **({"lost_seconds": ("lost_seconds", "sum")} if "lost_seconds" in df else {}),
        **({"eval_seconds": ("eval_seconds", "mean")} if "eval_seconds" in df else {}),
        **(
            {
                "n_unparsed": ("n_unparsed", lambda v: v.sum(min_count=1)),
                "n_test": ("n_test", "sum"),
                **({"n_truncated": ("n_truncated", lambda v: v.sum(min_count=1))} if "n_truncated" in df else {}),
            }
            if "n_unparsed" in df
            else {}
        ),
    ).reset_index()
    out["score_std"] = out["score_std"].fillna(0.0)
    # what the configuration cost: one run's training and test prediction, plus the search that chose it
    out["cost_seconds"] = (
        out["train_seconds"].fillna(0)
        + out["search_seconds"].fillna(0)
        + (out["eval_seconds"].fillna(0) if "eval_seconds" in out else 0)
    )
    return out


def macro_over_tasks(scores: pd.Series, tasks: pd.Series) -> float:
    """BLURB's rule: the mean over the task types present of each task type's mean dataset score."""
    return float(scores.groupby(tasks.to_numpy()).mean().mean())


def blurb_per_seed(df: pd.DataFrame) -> pd.DataFrame:
    """The macro score of each (model, method, seed): the mean over the task types present of each task type's
    mean dataset score; `task_types` says how many of BLURB's 6 were present."""
    rows = []
    for (model, method, seed), g in df.groupby(["model", "method", "seed"], sort=False):
        rows.append(
            {
                "model": model,
                "method": method,
                "seed": seed,
                "blurb": macro_over_tasks(g["score"], g["task"]),
                "task_types": g["task"].nunique(),
            }
        )
    return pd.DataFrame(rows, columns=["model", "method", "seed", "blurb", "task_types"])


def blurb_scores(df: pd.DataFrame) -> pd.DataFrame:
    """BLURB score per (model, method, seed) over the datasets present (macro over task types), then mean and
    std over seeds. `task_types` says how many of the 6 were present."""
    per_seed = blurb_per_seed(df)
    if per_seed.empty:
        return per_seed
    out = (
        per_seed.groupby(["model", "method"], sort=False)
        .agg(
            blurb_mean=("blurb", "mean"),
            blurb_std=("blurb", "std"),
            seeds=("seed", "nunique"),
            task_types=("task_types", "min"),
        )
        .reset_index()
    )
    out["blurb_std"] = out["blurb_std"].fillna(0.0)
    return out.sort_values("blurb_mean", ascending=False)


def seed_variance(agg: pd.DataFrame) -> pd.DataFrame:
    """Seed std of the test score per model and method (fine-tuning or in-context), the mean over the datasets
    run with more than one seed: one row per configuration, never two models' spreads in one number."""
    multi = agg[agg["seeds"] > 1].copy()
    multi["kind"] = np.where(multi["trains"], "fine-tuning", "in-context")
    return (
        multi.groupby(["kind", "model", "method"])
        .agg(mean_seed_std=("score_std", "mean"), datasets=("score_std", "size"))
        .reset_index()
    )


def resample_weights(n: int, samples: int, seed: int = 0, chunk: int = 500, clusters: Sequence | None = None):
    """Bootstrap resamples of n examples as count vectors, `chunk` rows at a time: yields (b, n) float32 arrays
    whose row r counts how often each example was drawn in resample r. With `clusters` (a label per example: the
    document it comes from), whole clusters are drawn with replacement and an example counts as often as its
    cluster was drawn (sentences of one abstract are not independent test examples). The same seed gives the same
    draws, so every method compared on one test set sees the same resamples (a paired bootstrap)."""
    rng = np.random.default_rng(seed)
    if clusters is None:
        codes, k = np.arange(n), n
    else:
        _, codes = np.unique(np.asarray(clusters, dtype=str), return_inverse=True)
        k = int(codes.max()) + 1
    for start in range(0, samples, chunk):
        b = min(chunk, samples - start)
        idx = rng.integers(0, k, (b, k)) + (np.arange(b) * k)[:, None]
        drawn = np.bincount(idx.ravel(), minlength=b * k).reshape(b, k)
        yield drawn[:, codes].astype(np.float32)


def replicate_scores(
    stats: dict, score: Callable, samples: int = 10000, seed: int = 0, clusters: Sequence | None = None
) -> tuple[dict, dict]:
    """For every run (key -> its (n, k) per-example stats on the same n examples): the observed score and its
    score in each of `samples` example resamples (the same resamples for every run; by cluster where given)."""
    keys = list(stats)
    observed = {k: float(score(stats[k].sum(axis=0))) for k in keys}
    if not keys:
        return observed, {}
    n = next(iter(stats.values())).shape[0]
    parts = {k: [] for k in keys}
    for w in resample_weights(n, samples, seed, clusters=clusters):
        for k in keys:
            parts[k].append(np.asarray(score(w @ stats[k].astype(np.float32)), dtype=float))
    return observed, {k: np.concatenate(v) for k, v in parts.items()}


def seed_example_variance(observed: Sequence[float], reps: Sequence[np.ndarray]) -> tuple[float, float, float, int]:
    """The mean of `observed` (one value per seed: a score, or a paired difference of scores) and the variance of
    that mean split into its two sources, estimated apart: (mean, seed part, example part, degrees of freedom).

    Seed part: the spread of the per-seed values, s² / s. It is measured on the one test set every seed shares,
    so it holds the seed-to-seed variation (and each seed's own example-level noise) but not the test set's.
    Example part: what the seeds have in common over resamples of the test examples — the mean covariance
    between two different seeds' resampled values (`reps`: each seed's value in the same resamples). Taking the
    variance of the resampled seed mean instead would count each seed's own noise a second time; with one seed
    there is nothing else to take. Degrees of freedom: s − 1 (the seed part is estimated from s values; a
    Welch–Satterthwaite value is larger but made the test too liberal at 3 seeds in the calibration,
    `biotune.report.calibration`); with one seed, the number of resampled units does not enter: infinite."""
    obs = np.asarray(observed, dtype=float)
    s = len(obs)
    if s == 0 or len(reps) != s:
        raise ValueError("one resample array per observed value")
    d = np.stack([np.asarray(r, dtype=float) for r in reps])
    if s == 1:
        return float(obs[0]), 0.0, float(d[0].var(ddof=1)) if d.shape[1] > 1 else 0.0, 0
    cov = np.cov(d)
    between = (cov.sum() - np.trace(cov)) / (s * (s - 1))
    return float(obs.mean()), float(obs.var(ddof=1) / s), max(0.0, float(between)), s - 1


def t_summary(mean: float, seed_var: float, example_var: float, df: int, alpha: float) -> dict:
    from scipy import stats as st

    se = math.sqrt(seed_var + example_var)
    crit = float(st.t.ppf(1 - alpha / 2, df)) if df > 0 else float(st.norm.ppf(1 - alpha / 2))
    if se == 0:
        p = 1.0 if mean == 0 else 0.0
    else:
        z = abs(mean) / se
        p = float(2 * (st.t.sf(z, df) if df > 0 else st.norm.sf(z)))
    return {
        "ci_low": mean - crit * se,
        "ci_high": mean + crit * se,
        "p_value": min(1.0, p),
        "se": se,
        "seed_var": seed_var,
        "example_var": example_var,
        "df": df if df > 0 else math.inf,
    }


def seed_example_test(
    observed_a: Sequence[float],
    reps_a: Sequence[np.ndarray],
    observed_b: Sequence[float],
    reps_b: Sequence[np.ndarray],
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """Configuration A vs B over paired runs (A's and B's run of one seed; a deterministic method's one run pairs
    with every seed of the other), scored on the same test examples; `reps_*`: each run's score in the same example
    resamples (`replicate_scores`). The per-seed differences' mean, with its variance split into the seed part and
    the example part (`seed_example_variance`) and a t reference with s − 1 degrees of freedom (few seeds: at 3,
    its 95 % critical value is 4.30, not 1.96). Calibrated by simulation (`biotune.report.calibration`: at most
    5 % false positives at alpha 0.05 with 3 seeds). Returns the difference, the (1 - alpha) interval, the two-
    sided p-value, the two variance parts, the degrees of freedom and the counts. (`seed`: kept for callers; the
    test has no random draws of its own.)"""
    s = len(observed_a)
    if s == 0 or s != len(observed_b) or len(reps_a) != s or len(reps_b) != s:
        raise ValueError("need the same seeds on both sides")
    diffs = [a - b for a, b in zip(observed_a, observed_b)]
    reps = [np.asarray(ra, dtype=float) - np.asarray(rb, dtype=float) for ra, rb in zip(reps_a, reps_b)]
    mean, seed_var, example_var, df = seed_example_variance(diffs, reps)
    return {"diff": mean, **t_summary(mean, seed_var, example_var, df, alpha), "seeds": s, "samples": int(len(reps[0]))}


def seed_example_interval(
    observed: Sequence[float], reps: Sequence[np.ndarray], seed: int = 0, alpha: float = 0.05
) -> dict:
    """One configuration's score over its seeds (the mean) with a (1 - alpha) interval that holds both the seed
    and the example variance, as `seed_example_test` does for a difference."""
    mean, seed_var, example_var, df = seed_example_variance(observed, reps)
    out = t_summary(mean, seed_var, example_var, df, alpha)
    return {"score": mean, "ci_low": out["ci_low"], "ci_high": out["ci_high"], "seeds": len(observed)}


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


def paired_bootstrap(
    score: Callable[[Sequence[int]], float],
    other: Callable[[Sequence[int]], float],
    n: int,
    samples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
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
    return {
        "diff": float(observed),
        "ci_low": float(lo),
        "ci_high": float(hi),
        "p_value": float(p),
        "significant": bool(lo > 0 or hi < 0),
    }


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
    by_pair = (
        agg.assign(dev_mean=dev)
        .groupby(["task", "model", "method"])
        .agg(
            dev=("dev_mean", lambda v: v.mean() if v.notna().all() else np.nan),
            score=("score_mean", "mean"),
            peak_memory_mb=("peak_memory_mb", "max"),
            cost_s=(cost, "max"),
        )
        .reset_index()
    )
    by_pair = by_pair[by_pair["dev"].notna()]
    rows = []
    for task, g in by_pair.groupby("task", sort=False):
        for mem in memory_mb:
            for sec in seconds:
                fit = g[(g["peak_memory_mb"] <= mem) & (g["cost_s"].fillna(0) <= sec)]
                top = fit[np.isclose(fit["dev"], fit["dev"].max())] if len(fit) else fit
                top = top.assign(c=top["cost_s"].fillna(0)).sort_values(["peak_memory_mb", "c"])
                rows.append(
                    {
                        "task": task,
                        "memory_budget_mb": mem,
                        "time_budget_s": sec,
                        "model": top["model"].iloc[0] if len(top) else None,
                        "method": top["method"].iloc[0] if len(top) else None,
                        "dev": float(top["dev"].iloc[0]) if len(top) else None,
                        "score": float(top["score"].iloc[0]) if len(top) else None,
                        "tied_with": [f"{m} / {k}" for m, k in zip(top["model"].iloc[1:], top["method"].iloc[1:])],
                    }
                )
    return pd.DataFrame(
        rows, columns=["task", "memory_budget_mb", "time_budget_s", "model", "method", "dev", "score", "tied_with"]
    )
