"""The answer and the search in words: per dataset the recommended configuration, its score, cost and what it
is better or worse than (`answer`), and what the adaptive search saved (`search_savings`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from biotune.study.store import group_key

from .compare import CONSTANT, config_label, seen_from
from .data import MEMORY_KINDS


def search_savings(search: list[dict]) -> str:
    """What successive halving saved, in one sentence: the training its candidates did against an exhaustive
    grid's over the same starting candidates (each trained to the end: the mean training time of the candidates at
    the furthest rung reached, scaled to the whole budget where that rung is not the end, times the starting
    candidates), over the searches that have finished; '' without an adaptive search."""
    groups: dict = {}
    for c in search:
        if "reached" in c:  # an adaptive search's row (study/halving.py summary)
            groups.setdefault(group_key(c), []).append(c)
    spent = exhaustive = 0.0
    n_start = n_groups = 0
    for rows in groups.values():
        furthest = max(c["reached"] for c in rows)
        timed = [(c["train_seconds"] or 0.0) / furthest for c in rows if furthest and c["reached"] == furthest]
        full = sum(timed) / len(timed) if timed else 0.0
        if full <= 0 or not any(c.get("complete") for c in rows):
            continue  # not finished
        start = [c for c in rows if not c.get("added")]
        spent += sum(c["train_seconds"] or 0.0 for c in rows)
        exhaustive += len(start) * full
        n_start, n_groups = n_start + len(start), n_groups + 1
    if not n_groups:
        return ""
    return (
        f"Successive halving trained its candidates for {time_words(spent)} in all ({n_groups} finished "
        f"search{'es' * (n_groups > 1)}, the candidates range growth added included); training each of the "
        f"{n_start} starting candidates to the end, as an exhaustive grid does, takes about {time_words(exhaustive)} "
        f"(each search's furthest candidates' training time, scaled to the whole budget, times its starting "
        f"candidates): the search cost {100 * spent / exhaustive:.0f} % of that."
    )


def time_words(seconds: float) -> str:
    """A measured time as the report writes it (4.2 s, 95 s, 14.2 min, 2.4 h; `progress.duration` rounds a time
    left more coarsely)."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds >= 5400:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds:,.0f} s" if seconds < 120 else f"{seconds / 60:,.1f} min"


def _number(row, name: str) -> float:
    v = getattr(row, name, 0)
    return 0.0 if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


def count_words(n: float) -> str:
    """A count as the report writes it: 0, 950, 2.4 k, 22.6 M."""
    n = float(n)
    return "0" if n == 0 else f"{n / 1e6:,.1f} M" if n >= 1e6 else f"{n / 1e3:,.1f} k" if n >= 1e3 else f"{n:,.0f}"


def _search_choice(search: list[dict], dataset: str, model: str, method: str) -> str:
    """The values a configuration's search chose, with the ends of the range they sit at ('' without a search)."""
    pick = next(
        (c for c in search if c["chosen"] and group_key(c) == (dataset, model, method)),
        None,
    )
    if pick is None:
        return ""
    edge = pick.get("edge", [])
    if len(pick.get("values") or {}) == 1:  # one field searched: its name is in the label
        edge = [e.split(": ", 1)[-1] for e in edge]
    return pick["candidate"] + (f" ({'; '.join(edge)})" if edge else "")


def _versus(sig: pd.DataFrame, dataset: str, rec: str, constants: dict) -> tuple[list, list, list, str, str]:
    """What the recommended configuration is better than, worse than and not told apart from on test (Holm), and
    its difference from the best constant answer (for the table, and in words)."""
    above, below, ties, const, const_words = [], [], [], "–", ""
    for p in sig[sig.dataset == dataset].itertuples():
        if rec not in (p.a, p.b):
            continue
        other, diff, lo, hi = seen_from(p, rec)
        if other.startswith(CONSTANT + " "):
            value, label = constants[dataset]
            const = f"{diff:+.2f} [{lo:.2f}, {hi:.2f}]{' *' if p.significant else ''} vs always {label!r}"
            verdict = "significant" if p.significant else "not significant"
            const_words = (
                f" Against answering {label!r} every time ({value:.2f}): {diff:+.2f} [{lo:.2f}, {hi:.2f}], {verdict}."
            )
            continue
        if p.significant:
            (above if diff > 0 else below).append(other)
        else:  # with its numbers: a large difference that Holm does not let through reads as such
            ties.append(f"{other} ({diff:+.2f} [{lo:.2f}, {hi:.2f}], p {p.p_value:.2g}, {p.p_holm:.2g} after Holm)")
    return above, below, ties, const, const_words


def answer(
    agg: pd.DataFrame,
    decisions: dict,
    sig: pd.DataFrame,
    intervals: pd.DataFrame,
    search: list[dict],
    constants: dict | None = None,
    metric_of: dict | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The report's first screen: per dataset (by task type), the configuration recommended on dev
    (`answer.dev_decisions`: the cheapest that dev cannot tell apart from the dev-best), its test score with its
    95 % interval over seeds and examples and the metric's name, its cost (compute per run: training, its search
    and prediction; peak memory of the kind measured; trainable parameters) and its difference from the best
    constant answer, as a table; and the same in one sentence per dataset with what it is better or worse than on
    test after Holm over every comparison in the report, and the values its search chose."""
    constants, metric_of = constants or {}, metric_of or {}
    rows, verdicts = [], {}
    for dataset, dec in sorted(decisions.items(), key=lambda kv: kv[1]["task"]):
        rec = dec["recommended"]
        d = next(r for r in agg[agg.dataset == dataset].itertuples() if config_label(r.model, r.method) == rec)
        chosen = _search_choice(search, dataset, d.model, d.method)
        iv = intervals[(intervals.dataset == dataset) & (intervals.config == rec)]
        interval = f"[{iv.ci_low.iloc[0]:.2f}, {iv.ci_high.iloc[0]:.2f}]" if len(iv) else ""
        score = iv.score.iloc[0] if len(iv) else d.score_mean
        above, below, ties, const, const_words = _versus(sig, dataset, rec, constants)
        search_s, train_s, eval_s = (_number(d, k) for k in ("search_seconds", "train_seconds", "eval_seconds"))
        memory, trainable = _number(d, "peak_memory_mb"), _number(d, "trainable_params")
        kind = MEMORY_KINDS.get(getattr(d, "memory_kind", ""), "peak")
        metric = metric_of.get(dataset, "score")
        rows.append(
            {
                "task": dec["task"],
                "dataset": dataset,
                "metric": metric,
                "recommended (on dev)": rec,
                "search chose": chosen or "–",
                "test [95 % CI]": f"{score:.2f} {interval}".strip(),
                "compute per run": time_words(train_s + search_s + eval_s),
                "peak memory": f"{memory:,.0f} MB {kind}",
                "trainable": count_words(trainable),
                "vs best constant (test)": const,
            }
        )
        parts = [
            f"{rec}: {score:.2f} {metric} {interval} on test over {int(d.seeds)} seed{'s' * (d.seeds > 1)}".replace(
                "  ", " "
            )
            + (f", its search chose {chosen}" if chosen else "")
            + f"; {time_words(train_s + search_s + eval_s)} of compute per run (training {time_words(train_s)}, its "
            f"search {time_words(search_s)}, prediction {time_words(eval_s)}), {memory:,.0f} MB peak memory "
            f"({kind}), {count_words(trainable)} trainable parameters."
        ]
        if above:
            parts.append(f" Better on test than {', '.join(above)} (Holm).")
        if below:
            parts.append(f" Worse on test than {', '.join(below)} (Holm).")
        if ties:
            parts.append(f" Not told apart on test from {', '.join(ties)}.")
        verdicts[dataset] = "".join(parts) + const_words
    return pd.DataFrame(rows), verdicts
