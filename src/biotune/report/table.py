"""The study's table: datasets as rows by task type, one column per configuration (model / method), each cell the
test score's mean ± std over seeds marked against the row's best and the constant answer (Holm over every
comparison in the report), the best constant answer and published scores beside, the macro score and the compute
per configuration below (`study_table`); the gap to each published score, with the datasets far below their
neighbours named (`published_gaps`); and the questions the paper's findings pose, each answered from the table
where the study holds what it needs (`findings`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from biotune.data import DATASETS
from biotune.errors import BiotuneError

from .compare import config_label, seen_from
from .compute import ReportData, not_above_constant
from .stats import macro_over_tasks
from .verdict import count_words, time_words

BEST, TIED, AT_CONSTANT = "▲", "≈", "▽"
FAR_BELOW = 10.0  # points below a configuration's median gap to a published score: a dataset to look into
TABLE_TEXT = (
    f"Test score ×100, mean ± std over seeds. {BEST}: the row's best on test; {TIED}: not told apart from it (Holm "
    f"over every comparison in this report); unmarked: significantly below it; {AT_CONSTANT}: not significantly "
    "above the best constant answer. Published: the score a paper reports on the same test split, for reference, "
    "not run here (its macro score over this table's datasets). The row's best is marked to read the table, not to "
    "choose: the answer above is chosen on dev."
)


def _pair(sig: pd.DataFrame, dataset: str, a: str, b: str):
    """The comparison of a and b on a dataset, from a's side: (a − b, significant after Holm), or None."""
    for p in sig[(sig.dataset == dataset) & sig.a.isin([a, b]) & sig.b.isin([a, b])].itertuples():
        _, diff, _, _ = seen_from(p, a)
        return diff, bool(p.significant)
    return None


def _configs(agg: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(config_label(m, me) for m, me in zip(agg.model, agg.method)))


def _specs(d: ReportData) -> dict:
    """The specs of the datasets with results (of the study's, `ReportData.datasets`)."""
    return {ds: d.datasets[ds] for ds in dict.fromkeys(d.df.dataset)}


def _references(specs: dict) -> list[str]:
    return list(dict.fromkeys(name for s in specs.values() for name in s.published))


def _missing_blurb_rows(specs: dict, data_dir: str | None) -> list[dict]:
    """Where the study is a BLURB study (BLURB datasets only, more than half of them): a row for each one it leaves
    out, saying why (a smaller study's macro score names the task types it covers, and that is enough); a missing
    training split is looked for at the study's data location (`data_dir`; None: the default)."""
    blurb = [name for name, spec in DATASETS.items() if spec.blurb]
    if not all(s.blurb and s.builtin for s in specs.values()) or 2 * len(specs) <= len(blurb):
        return []
    rows = []
    for name, spec in DATASETS.items():
        if not spec.blurb or name in specs:
            continue
        why = "not in this study"
        try:
            if "train" in spec.files and not Path(spec.path("train", data_dir)).exists():
                why = "not in this study: no training split at the data location"
        except BiotuneError:  # no data location here: say only that it was left out
            pass
        rows.append({"task": spec.task, "dataset": spec.name, "metric": why, "published": spec.published})
    return rows


def _task_position(order: list[str]):
    """A row's place by its task type: the study's order of task types; a type the study does not have (a BLURB
    dataset it leaves out) right after the study's type that BLURB lists before it."""
    blurb = list(dict.fromkeys(s.task for _, s in DATASETS.items() if s.blurb))

    def key(row: dict) -> tuple[int, int]:
        task = row["task"]
        if task in order:
            return order.index(task), 0
        before = [t for t in blurb[: blurb.index(task)] if t in order] if task in blurb else order
        return (order.index(before[-1]) if before else -1), 1

    return key


def _subset_words(subset: tuple[int, int] | None) -> str:
    """A dataset scored on a fixed part of its test split, said in its metric's cell."""
    if subset is None:
        return ""
    return f"; test: a fixed {subset[0]:,} of {subset[1]:,} examples, not comparable with a published score"


def _published_cells(published: dict, refs: list[str]) -> dict:
    return {f"{ref} (published)": f"{published[ref]:.2f}" if ref in published else "–" for ref in refs}


def study_table(d: ReportData) -> pd.DataFrame:
    """Datasets as rows (grouped by task type, in the study's order; where the study is BLURB's, the BLURB datasets
    it leaves out too, saying why), the best constant answer, a column per configuration, the published scores;
    below, the macro score (of the published scores: over the same datasets) and each configuration's compute."""
    agg, sig = d.agg, d.sig
    configs = _configs(agg)
    specs = _specs(d)
    unfinished = {name: spec for name, spec in d.datasets.items() if name not in specs}
    refs = _references({**specs, **unfinished})
    below = not_above_constant(sig)
    rows = {}
    for dataset, g in agg.groupby("dataset", sort=False):
        labels = [config_label(m, me) for m, me in zip(g.model, g.method)]
        means = dict(zip(labels, g.score_mean))
        best = max(means, key=means.get)
        const = d.constants.get(dataset)
        row = {
            "task": g.task.iloc[0],
            "dataset": dataset,
            "metric": d.metric_of.get(dataset, "") + _subset_words(d.subsets.get(dataset)),
            "best constant": f"{const[0]:.2f} (always {const[1]!r})" if const else "–",
        }
        for r, label in zip(g.itertuples(), labels):
            mark = BEST if label == best else ""
            if label != best:
                p = _pair(sig, dataset, label, best)
                mark = TIED if p is None or not (p[1] and p[0] < 0) else ""
            if (dataset, r.model, r.method) in below:
                mark += AT_CONSTANT
            row[label] = f"{r.score_mean:.2f} ± {r.score_std:.2f}" + (f" {mark}" if mark else "")
        rows[dataset] = {**row, **_published_cells(specs[dataset].published, refs)}
    for name, spec in unfinished.items():
        rows[name] = {"task": spec.task, "dataset": name, "metric": "not finished yet"}
        rows[name].update(_published_cells(spec.published, refs))
    listed = [rows[name] for name in dict.fromkeys([*d.datasets, *rows])]  # the study's order
    left_out = [
        {**r, **_published_cells(r.pop("published"), refs)}
        for r in _missing_blurb_rows({**specs, **unfinished}, d.data_dir)
    ]
    by_task = sorted(listed + left_out, key=_task_position(list(dict.fromkeys(r["task"] for r in listed))))
    by_task += _summary_rows(d, configs, specs, refs)
    columns = ["task", "dataset", "metric", "best constant", *configs, *(f"{r} (published)" for r in refs)]
    return pd.DataFrame(by_task, columns=columns).fillna("–")


def _summary_rows(d: ReportData, configs: list[str], specs: dict, refs: list[str]) -> list[dict]:
    """The macro score per configuration (and of each published column over the same datasets), its compute for
    one run of every dataset (training, its search and prediction), its trainable parameters."""
    n_types = int(d.blurb.task_types.max()) if len(d.blurb) else 0
    macro = {"task": "", "dataset": d.blurb_name, "metric": "macro over task types", "best constant": "–"}
    for r in d.blurb.itertuples():
        short = f" ({r.task_types} types)" if r.task_types < n_types else ""
        macro[config_label(r.model, r.method)] = f"{r.blurb_mean:.2f} ± {r.blurb_std:.2f}{short}"
    for ref in refs:
        have = pd.Series({ds: s.published[ref] for ds, s in specs.items() if ref in s.published}, dtype=float)
        if len(have) and len(have) == len(specs):
            tasks = pd.Series({ds: specs[ds].task for ds in have.index})
            macro[f"{ref} (published)"] = f"{macro_over_tasks(have, tasks):.2f}"
    cost = {"task": "", "dataset": "compute", "metric": "one run of each dataset, its search included"}
    params = {"task": "", "dataset": "trainable parameters", "metric": "median over datasets"}
    for (model, method), g in d.agg.groupby(["model", "method"], sort=False):
        label = config_label(model, method)
        cost[label] = time_words(float(g.cost_seconds.sum()))
        params[label] = count_words(float(g.trainable_params.median()))
    return [macro, cost, params]


def published_gaps(d: ReportData) -> list[str]:
    """Per configuration and published score: its gap on the median dataset, the range, and the datasets more
    than FAR_BELOW points below that median gap (far below their neighbours: a defect until shown otherwise)."""
    specs = _specs(d)
    out = []
    for ref in _references(specs):
        for (model, method), g in d.agg.groupby(["model", "method"], sort=False):
            gaps = {
                r.dataset: r.score_mean - specs[r.dataset].published[ref]
                for r in g.itertuples()
                if ref in specs[r.dataset].published and r.dataset not in d.subsets
            }
            if not gaps:
                continue
            med = float(np.median(list(gaps.values())))
            lo, hi = min(gaps, key=gaps.get), max(gaps, key=gaps.get)
            # far below the others: a defect until shown otherwise (with few datasets there are no "others")
            far = [f"{ds} ({v:+.2f})" for ds, v in gaps.items() if v < med - FAR_BELOW and len(gaps) >= 4]
            who = f"{config_label(model, method)} against {ref} (published)"
            if len(gaps) == 1:
                out.append(f"{who}: {gaps[lo]:+.2f} on {lo}.")
                continue
            out.append(
                f"{who}: {med:+.2f} on the median of {len(gaps)} datasets, from {gaps[lo]:+.2f} ({lo}) to "
                f"{gaps[hi]:+.2f} ({hi})"
                + (
                    f"; more than {FAR_BELOW:g} points below that median: {', '.join(far)}."
                    if far
                    else f"; no dataset more than {FAR_BELOW:g} points below that median."
                    if len(gaps) >= 4
                    else "."
                )
            )
    held = [ds for ds in d.subsets if any(specs[ds].published)]
    if held:
        out.append(f"No gap for {', '.join(held)}: scored on a fixed subset of the test split, not the whole split.")
    return out


# --- the paper's findings as questions --------------------------------------------------------------------------


def _kinds(df: pd.DataFrame) -> dict[str, str]:
    """Each configuration's kind: 'encoder' (an encoder fine-tuned), 'full' (an LLM's every weight trained), 'peft'
    (an LLM's adapter or prompt trained), 'in-context' (nothing trained)."""
    out = {}
    for r in df.drop_duplicates(["model", "method"]).itertuples():
        label = config_label(r.model, r.method)
        if not r.trains:
            out[label] = "in-context"
        elif r.family == "encoder":
            out[label] = "encoder"
        else:
            out[label] = "full" if r.trains_base else "peft"
    return out


def _head_to_head(d: ReportData, kinds: dict, a: set, b: set, same_model: bool) -> dict | None:
    """Per dataset (and model, where `same_model`): the best configuration of kinds `a` on test against the best of
    kinds `b`, compared as the report compares them (Holm). Counts, the median difference and compute ratio."""
    agg = d.agg.assign(label=[config_label(m, me) for m, me in zip(d.agg.model, d.agg.method)])
    agg["kind"] = agg.label.map(kinds)
    keys = ["dataset", "model"] if same_model else ["dataset"]
    wins = losses = ties = 0
    diffs, ratios, where = [], [], []
    for key, g in agg.groupby(keys, sort=False):
        ga, gb = g[g.kind.isin(a)], g[g.kind.isin(b)]
        if ga.empty or gb.empty:
            continue
        ra, rb = ga.loc[ga.score_mean.idxmax()], gb.loc[gb.score_mean.idxmax()]
        dataset = key[0] if isinstance(key, tuple) else key
        p = _pair(d.sig, dataset, ra.label, rb.label)
        if p is None:
            continue
        diff, significant = p
        wins += significant and diff > 0
        losses += significant and diff < 0
        ties += not significant
        diffs.append(diff)
        if rb.cost_seconds > 0:
            ratios.append(ra.cost_seconds / rb.cost_seconds)
        where.append(dataset)
    if not diffs:
        return None
    return {
        "n": len(diffs),
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "median_diff": float(np.median(diffs)),
        "cost_ratio": float(np.median(ratios)) if ratios else float("nan"),
        "datasets": list(dict.fromkeys(where)),
    }


def _count_words(h: dict, a: str, b: str) -> str:
    ratio = f"; its compute per run {h['cost_ratio']:.2g}x {b}'s (median)" if np.isfinite(h["cost_ratio"]) else ""
    return (
        f"{a} significantly better on {h['wins']}, worse on {h['losses']}, not told apart on {h['ties']} of "
        f"{h['n']} comparisons ({', '.join(h['datasets'])}); median difference {h['median_diff']:+.2f}{ratio}."
    )


def _stability(d: ReportData, kinds: dict) -> str | None:
    """Seed std of the fine-tuned LLM configurations against the in-context ones that vary with the seed, per
    dataset where both ran more than one seed; with the interval a std over so few seeds has."""
    agg = d.agg.assign(kind=[kinds[config_label(m, me)] for m, me in zip(d.agg.model, d.agg.method)])
    agg = agg[agg.seeds > 1]
    tuned, icl, fewer = [], [], 0
    for _, g in agg.groupby("dataset", sort=False):
        t, i = g[g.kind.isin({"full", "peft"})], g[g.kind == "in-context"]
        if t.empty or i.empty:
            continue
        tuned.append(float(t.score_std.mean()))
        icl.append(float(i.score_std.mean()))
        fewer += tuned[-1] < icl[-1]
    if not tuned:
        return None
    k = int(agg.seeds.min())
    lo, hi = (np.sqrt((k - 1) / sps.chi2.ppf(q, k - 1)) for q in (0.975, 0.025))
    return (
        f"Is fine-tuning more stable than in-context learning? Std of the test score over seeds, fine-tuned LLM "
        f"configurations {np.mean(tuned):.2f} against in-context {np.mean(icl):.2f} (mean over {len(tuned)} "
        f"datasets); fine-tuning varies less on {fewer} of them. With {k} seeds a std is known only to within "
        f"x{lo:.2f} to x{hi:.2f} (95 %), so only a large, repeated gap says more than that."
    )


def findings(d: ReportData) -> list[str]:
    """The paper's four findings as questions, each answered from the table where the study holds both sides of
    it (LLM adapters and full fine-tuning, a fine-tuned LLM and an encoder, fine-tuning and in-context learning)."""
    kinds = _kinds(d.df)
    out = []
    peft_best = _head_to_head(d, kinds, {"peft"}, {"full", "encoder", "in-context"}, same_model=False)
    if peft_best:
        out.append(
            "Are the parameter-efficient methods (adapters, prompts) the best and the cheapest? The best of them "
            "against the best other configuration per dataset: "
            + _count_words(peft_best, "PEFT", "the other configuration")
        )
    full = _head_to_head(d, kinds, {"full"}, {"peft"}, same_model=True)
    if full:
        out.append(
            "Does full fine-tuning have an edge over parameter-efficient methods (same LLM)? "
            + _count_words(full, "full fine-tuning", "the best PEFT method")
        )
    llm = _head_to_head(d, kinds, {"full", "peft"}, {"encoder"}, same_model=False)
    if llm:
        out.append(
            "Does the fine-tuned LLM beat the fine-tuned encoder? The best fine-tuned LLM configuration against the "
            "best encoder per dataset: " + _count_words(llm, "the LLM", "the encoder")
        )
    stable = _stability(d, kinds)
    if stable:
        out.append(stable)
    return out
