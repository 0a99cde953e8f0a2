"""The report's answer: per dataset, which configuration to use, decided on dev and honest about it.

The recommendation is the *cheapest* configuration (model / method) that dev cannot tell apart from the best one
on dev: each configuration's dev score is compared with the best's by the report's test (seeds and dev examples,
`compare.compare_runs`, unadjusted: a tie is kept whenever dev does not exclude it), and among the best and those
it cannot be told from, the one with the least compute (training, its search and test prediction) is named. When
dev cannot decide, the answer says so in words, with the dev difference's interval and what would decide it
(about how many dev examples, or seeds). Its test score is then compared with every other configuration, across
models, and with the best constant answer (`compare.significance`, Holm over every comparison in the report).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import stats
from .compare import compare_runs, config_label, dataset_spec, paired_runs, runs_of, seen_from


def _cost(agg_row) -> float:
    v = getattr(agg_row, "cost_seconds", None)
    return float(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else 0.0


def needed(
    diff: float, seed_var: float, example_var: float, seeds: int, n: int, alpha: float = 0.05
) -> tuple[int | None, int | None]:
    """What would make a dev difference of this size significant, the rest unchanged: (dev examples, seeds);
    None where that alone would not (or there is no difference to find)."""
    from scipy import stats as st

    if diff == 0 or (seed_var == 0 and example_var == 0):
        return None, None
    crit = float(st.t.ppf(1 - alpha / 2, seeds - 1)) if seeds > 1 else float(st.norm.ppf(1 - alpha / 2))
    room = (diff / crit) ** 2 - seed_var
    examples = math.ceil(n * example_var / room) if example_var > 0 and room > 0 else None
    more_seeds = None
    if seeds > 1 and seed_var > 0:
        for k in range(seeds + 1, 201):
            if float(st.t.ppf(1 - alpha / 2, k - 1)) * math.sqrt(seed_var * seeds / k + example_var) < abs(diff):
                more_seeds = k
                break
    return examples, more_seeds


def dev_comparisons(
    dataset: str, g: pd.DataFrame, labels: list[str], best: str, samples: int, alpha: float, spec
) -> dict[str, dict]:
    """Each configuration's dev score against the best one's: from the stored dev predictions where every run has
    them (seeds and examples, as on test), else from the per-seed dev scores alone (seed variance, t with s − 1
    degrees of freedom; `basis` says which; one run a side: untestable)."""

    g = g[[config_label(m, k) in labels for m, k in zip(g.model, g.method)]]
    fixed = {config_label(r.model, r.method): bool(r.deterministic) for r in g.itertuples()}
    runs = runs_of(g, "dev")
    out: dict[str, dict] = {}
    if len(runs) == len(g) and runs:
        rows, _ = compare_runs(dataset, runs, fixed, spec, samples, alpha)
        for r in rows:
            if best not in (r["a"], r["b"]):
                continue
            other, diff, lo, hi = seen_from(r, best)
            out[other] = {
                "diff": diff,
                "ci_low": lo,
                "ci_high": hi,
                "p_value": r["p_value"],
                "seed_var": r["seed_var"],
                "example_var": r["example_var"],
                "seeds": r["seeds"],
                "n": r["n"],
                "basis": "dev examples and seeds",
            }
        return out
    dev = {(config_label(r.model, r.method), r.seed): r.dev_score for r in g.itertuples()}
    seeds = {c: sorted(s for (cc, s) in dev if cc == c) for c in labels}
    for other in labels:
        if other == best:
            continue
        pairs = paired_runs(seeds[best], seeds[other], fixed.get(best, False), fixed.get(other, False))
        d = [dev[(best, a)] - dev[(other, b)] for a, b in pairs]
        if len(d) < 2:
            out[other] = {
                "diff": float(np.mean(d)) if d else math.nan,
                "ci_low": -math.inf,
                "ci_high": math.inf,
                "p_value": 1.0,
                "seed_var": 0.0,
                "example_var": 0.0,
                "seeds": len(d),
                "n": 0,
                "basis": "untestable (one run a side, no dev predictions stored)",
            }
            continue
        mean, seed_var, _, df = stats.seed_example_variance(d, [np.zeros(2)] * len(d))
        t = stats.t_summary(mean, seed_var, 0.0, df, alpha)
        out[other] = {
            "diff": mean,
            "ci_low": t["ci_low"],
            "ci_high": t["ci_high"],
            "p_value": t["p_value"],
            "seed_var": seed_var,
            "example_var": 0.0,
            "seeds": len(d),
            "n": 0,
            "basis": "per-seed dev scores only (no dev predictions stored)",
        }
    return out


def dev_decisions(df: pd.DataFrame, agg: pd.DataFrame, samples: int = 2000, alpha: float = 0.05) -> dict[str, dict]:
    """Per dataset: the best configuration on dev, those dev cannot tell apart from it, the recommended one (the
    cheapest of them) and the sentence that says so."""

    out = {}
    for dataset, g in df.groupby("dataset", sort=False):
        a = agg[agg.dataset == dataset].copy()
        a["label"] = [config_label(m, k) for m, k in zip(a.model, a.method)]
        with_dev = g.groupby(["model", "method"])["dev_score"].apply(lambda v: v.notna().all())
        a = a[[bool(with_dev.get((m, k), False)) for m, k in zip(a.model, a.method)]]
        if a.empty:
            continue
        cost = {r.label: _cost(r) for r in a.itertuples()}
        dev = dict(zip(a.label, a.dev_mean))
        top = max(dev.values())
        best = min((c for c in dev if dev[c] == top), key=lambda c: cost[c])
        spec = dataset_spec(dataset, g.output_dir)
        comps = dev_comparisons(dataset, g.dropna(subset=["dev_score"]), list(dev), best, samples, alpha, spec)
        tied = [c for c, r in comps.items() if not r["p_value"] < alpha]
        recommended = min([best, *tied], key=lambda c: (cost[c], -dev[c]))
        out[dataset] = {
            "best": best,
            "recommended": recommended,
            "tied": tied,
            "comparisons": comps,
            "dev": dev,
            "cost": cost,
            "task": a.task.iloc[0],
            "sentence": _sentence(best, recommended, tied, comps, dev, cost, alpha),
        }
    return out


def _iv(r: dict) -> str:
    if not math.isfinite(r["ci_low"]):
        return f"{r['diff']:+.1f}, untestable"
    return f"{r['diff']:+.1f} [{r['ci_low']:.1f}, {r['ci_high']:.1f}]"


def _sentence(best: str, rec: str, tied: list[str], comps: dict, dev: dict, cost: dict, alpha: float) -> str:
    if not comps:
        return f"{best} is the only configuration with a dev score: nothing to decide on dev."
    if not tied:
        closest = min(comps, key=lambda c: comps[c]["diff"])
        return (
            f"Dev decides: {best} (dev {dev[best]:.1f}) is ahead of every other configuration on dev; the "
            f"closest, {closest}, by {_iv(comps[closest])} (95 % interval, seeds and dev examples)."
        )
    text = (
        f"Dev cannot decide: {best} (the best on dev, {dev[best]:.1f}) cannot be told apart from "
        + ", ".join(f"{c} (dev {dev[c]:.1f}; {best} − it: {_iv(comps[c])})" for c in tied)
        + f" at {alpha:.0%}; "
    )
    if rec == best:
        text += f"{best} is also the cheapest of them ({cost[best]:,.0f} s of compute) and is recommended."
    else:
        text += (
            f"the cheapest of them, {rec} ({cost[rec]:,.0f} s of compute against {cost[best]:,.0f} s), is recommended."
        )
    # what would decide between the best and the recommended one (or the closest tie)
    other = rec if rec != best else min(tied, key=lambda c: abs(comps[c]["diff"]))
    r = comps[other]
    if "untestable" in r["basis"]:
        return text + f" ({r['basis']}.)"
    examples, seeds = needed(r["diff"], r["seed_var"], r["example_var"], r["seeds"], r["n"], alpha)
    ways = []
    if examples is not None and r["n"]:
        ways.append(f"about {examples:,} dev examples (now {r['n']:,})")
    if seeds is not None:
        ways.append(f"about {seeds} seeds (now {r['seeds']})")
    if r["diff"] == 0:
        return text + f" {best} and {other} score the same on dev: more dev data would not rank them."
    if ways:
        return (
            text
            + f" Telling {best} and {other} apart (a dev difference of {r['diff']:.1f}) would take "
            + " or ".join(ways)
            + "."
        )
    return text + f" No more dev examples or seeds within reach would tell {best} and {other} apart."
