"""Assemble a study's report from its results store: `build_report(store_url, study, out_dir)`."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from biotune.io import atomic_write_text
from biotune.study.store import group_key
from biotune.tasks import task_for

from . import examples, figures, stats
from .answer import dev_decisions
from .compare import CONSTANT, config_label, constant_baselines, dataset_spec, seen_from, significance
from .data import MEMORY_KINDS, load_results, run_details, search_curves


def search_savings(search: list[dict]) -> str:
    """What successive halving saved, in one sentence: the training its candidates did against an exhaustive
    grid's over the same starting candidates (each trained to the end: the time of the candidate that finished,
    times the starting candidates), over the searches that have finished; '' without an adaptive search."""
    groups: dict = {}
    for c in search:
        if "reached" in c:  # an adaptive search's row (study/halving.py summary)
            groups.setdefault(group_key(c), []).append(c)
    spent = exhaustive = 0.0
    n_start = n_groups = 0
    for rows in groups.values():
        full = max((c["train_seconds"] or 0.0 for c in rows if c["reached"] >= 1.0), default=0.0)
        if full <= 0:
            continue  # not finished: nothing trained to the end yet
        start = [c for c in rows if not c.get("added")]
        spent += sum(c["train_seconds"] or 0.0 for c in rows)
        exhaustive += len(start) * full
        n_start, n_groups = n_start + len(start), n_groups + 1
    if not n_groups:
        return ""
    return (
        f"Successive halving trained its candidates for {_duration(spent)} in all ({n_groups} finished "
        f"search{'es' * (n_groups > 1)}, the candidates range growth added included); training each of the "
        f"{n_start} starting candidates to the end, as an exhaustive grid does, takes about {_duration(exhaustive)} "
        f"(each search's finished candidate's training time, times its starting candidates): the search cost "
        f"{100 * spent / exhaustive:.0f} % of that."
    )


def _budget(v: float, unit: str) -> str:
    return "any" if v == float("inf") else f"≤ {v:,.0f} {unit}"


def _recommendation_grid(rec: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (task, mem), g in rec.groupby(["task", "memory_budget_mb"], sort=False):
        row = {"task": task, "memory": _budget(mem, "MB")}
        for _, r in g.iterrows():
            fits = isinstance(r.method, str)
            tie = f"; tie with {', '.join(r.tied_with)}" if fits and r.tied_with else ""
            row[f"time {_budget(r.time_budget_s, 's')}"] = (
                f"{r.model} / {r.method} (dev {r.dev:.1f}, test {r.score:.1f}{tie})" if fits else "nothing fits"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds >= 5400:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds:,.0f} s" if seconds < 120 else f"{seconds / 60:,.1f} min"


def _number(row, name: str) -> float:
    v = getattr(row, name, 0)
    return 0.0 if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


def _count(n: float) -> str:
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
        (above if p.significant and diff > 0 else below if p.significant else ties).append(other)
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
                "compute per run": _duration(train_s + search_s + eval_s),
                "peak memory": f"{memory:,.0f} MB {kind}",
                "trainable": _count(trainable),
                "vs best constant (test)": const,
            }
        )
        parts = [
            f"{rec}: {score:.2f} {metric} {interval} on test over {int(d.seeds)} seed{'s' * (d.seeds > 1)}".replace(
                "  ", " "
            )
            + (f", its search chose {chosen}" if chosen else "")
            + f"; {_duration(train_s + search_s + eval_s)} of compute per run (training {_duration(train_s)}, its "
            f"search {_duration(search_s)}, prediction {_duration(eval_s)}), {memory:,.0f} MB peak memory "
            f"({kind}), {_count(trainable)} trainable parameters."
        ]
        if above:
            parts.append(f" Better on test than {', '.join(above)} (Holm).")
        if below:
            parts.append(f" Worse on test than {', '.join(below)} (Holm).")
        if ties:
            parts.append(f" Not told apart on test from {', '.join(ties)}.")
        verdicts[dataset] = "".join(parts) + const_words
    return pd.DataFrame(rows), verdicts


def _table(df: pd.DataFrame, fmt: dict | None = None) -> tuple[str, str]:
    """(HTML, Markdown) of a DataFrame."""
    fmt = fmt or {}
    cells = [
        [
            fmt.get(c, str)(v) if v is not None and not (isinstance(v, float) and np.isnan(v)) else "–"
            for c, v in row.items()
        ]
        for _, row in df.iterrows()
    ]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if _numeric(v) else ''}>{html.escape(v)}</td>" for v in row) + "</tr>"
        for row in cells
    )
    md = "| " + " | ".join(map(str, df.columns)) + " |\n|" + "---|" * len(df.columns) + "\n"
    md += "".join("| " + " | ".join(v.replace("|", "\\|").replace("\n", " ") for v in row) + " |\n" for row in cells)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>', md


def _numeric(text: str) -> bool:
    """A number, an interval or a size: kept on one line."""
    return bool(text) and (text[0].isdigit() or text[0] in "+-−[") and len(text) < 48


@dataclass
class ReportData:
    """Everything a study's report says, computed once from its store (`compute_report`); the sections and the
    HTML and Markdown renderers only format it."""

    study: str
    store_url: str
    samples: int
    search: list[dict]
    df: pd.DataFrame  # one row per final cell (load_results)
    agg: pd.DataFrame  # per configuration and dataset (stats.aggregate)
    blurb: pd.DataFrame
    blurb_name: str  # "BLURB score" only over all 6 task types
    var: pd.DataFrame
    constants: dict
    sig: pd.DataFrame
    intervals: pd.DataFrame
    sig_seconds: float
    rec: pd.DataFrame
    decisions: dict
    lead: pd.DataFrame  # the answer table
    verdicts: dict[str, str]  # the answer per dataset, in words
    metric_of: dict[str, str]  # dataset -> its metric's name
    plots: dict[str, str]  # the macro score against each cost (SVG)
    maps: dict[str, str]  # per model, the heat map (SVG)
    costs: dict[str, str]  # per dataset, score against total compute (SVG)
    curves: dict[str, str]  # per dataset, training loss and dev score against the step (SVG)
    disagree: dict[str, dict]  # per dataset, where the recommendation and the best alternative differ
    unparsed: pd.DataFrame
    ran_on: list[str]
    stamp: str

    def counted(self) -> str:
        """What the report rests on, in one line: the cells reported, the search runs (never results), training
        redone after interruptions (never in a cost)."""
        searched = sum(1 for c in self.search if c["dev_score"] is not None)
        out = f"{len(self.df)} finished cells reported" + (
            f" (and {searched} search runs, none of them a result)" if searched else ""
        )
        lost_by_run = [*self.df["lost_seconds"], *(c.get("lost_seconds") or 0.0 for c in self.search)]
        lost = float(sum(lost_by_run))
        if lost > 0:
            hit = sum(x > 0 for x in lost_by_run)
            out += (
                f"; {lost:,.0f} s of training redone after interruptions ({hit} cell{'s' * (hit > 1)}), "
                "not counted in any cost"
            )
        return out


def not_above_constant(sig: pd.DataFrame) -> set:
    """(dataset, model, method) of each configuration that is not significantly better than its dataset's best
    constant answer on test (Holm over the report's comparisons)."""
    out = set()
    for p in sig.itertuples():
        for side, other in ((p.a, p.b), (p.b, p.a)):
            if other.startswith(CONSTANT + " ") and not side.startswith(CONSTANT + " "):
                _, diff, _, _ = seen_from(p, side)
                if not (p.significant and diff > 0):
                    model, method = side.split(" / ", 1)
                    out.add((p.dataset, model, method))
    return out


def compute_report(
    store_url: str,
    study: str,
    memory_mb=(2048, 8192, float("inf")),
    seconds=(300, 3600, float("inf")),
    samples: int = 10000,
    identities: dict | None = None,
    search: list[dict] | None = None,
) -> ReportData:
    """The numbers of a study's report: its final cells, aggregates, macro score, seed spread, every comparison
    (with the constant answer), the dev decisions and the answer, the budget table, the examples behind it and
    the figures."""

    search = search or []
    df = load_results(store_url, study, identities, search)
    agg = stats.aggregate(df)
    blurb = stats.blurb_scores(df)
    started = time.perf_counter()
    constants = constant_baselines(df)
    sig, intervals = significance(df, samples, constants=constants)
    sig_seconds = time.perf_counter() - started
    decisions = dev_decisions(df, agg, samples=min(samples, 2000))
    metric_of = {ds: task_for(dataset_spec(ds, g.output_dir)).metric for ds, g in df.groupby("dataset", sort=False)}
    n_types = int(blurb.task_types.max()) if len(blurb) else 0
    blurb_name = "BLURB score" if n_types == 6 else f"macro score over {n_types} of BLURB's 6 task types"
    lead, verdicts = answer(agg, decisions, sig, intervals, search, constants, metric_of)
    curves, ran_on = run_details(df)
    return ReportData(
        study=study,
        store_url=store_url,
        samples=samples,
        search=search,
        df=df,
        agg=agg,
        blurb=blurb,
        blurb_name=blurb_name,
        var=stats.seed_variance(agg),
        constants=constants,
        sig=sig,
        intervals=intervals,
        sig_seconds=sig_seconds,
        rec=stats.recommendations(agg, memory_mb, seconds),
        decisions=decisions,
        lead=lead,
        verdicts=verdicts,
        metric_of=metric_of,
        plots=figures.score_against_cost(agg, blurb, stats.blurb_per_seed(df), blurb_name),
        maps=figures.heat_maps(agg, metric_of, not_above_constant(sig)),
        costs=figures.cost_per_dataset(agg, intervals, constants, metric_of),
        curves=figures.learning_curves(curves, metric_of, search_curves(store_url, study, search)),
        disagree=examples.disagreements(df, agg, decisions),
        unparsed=examples.unparsed(df),
        ran_on=ran_on,
        stamp=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


@dataclass
class Section:
    """One part of the report: a title, a paragraph, a table (with its column formats), figures (SVG by caption)
    and sentences; `folded` ones follow the others, folded away in the HTML."""

    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    formats: dict = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    sentences: list[str] = field(default_factory=list)
    folded: bool = False


LEAD_TEXT = (
    "Per dataset, the configuration (model / method) recommended on dev, never on test: the cheapest one that dev "
    "cannot tell apart from the best on dev. Test: mean over seeds, 95 % interval over seeds and test examples. "
    "Compute per run: training (its dev evaluations included) + its share of the search + prediction. Against the "
    "best constant answer (answering one label for every test example; relations, QA): * where significant after "
    "Holm over every comparison in this report; a model near that constant has learned the majority answer, not "
    "the task."
)
PER_DATASET_COLUMNS = [
    "task",
    "dataset",
    "model",
    "method",
    "budget",
    "dev_mean",
    "test",
    "seeds",
    "unparsed",
    "trainable_params",
    "peak_memory_mb",
    "train_seconds",
    "search_seconds",
    "eval_seconds",
    "cost_seconds",
    "lost_seconds",
]
SEARCH_COLUMNS = [
    "dataset",
    "model",
    "method",
    "candidate",
    "rung_scores",
    "dev_score",
    "train_seconds",
    "lost_seconds",
    "chosen",
    "edge",
]


def _f2(v) -> str:
    return f"{v:.2f}"


def _seconds(v) -> str:
    return f"{v:.0f}"


def _ran_on(d: ReportData) -> list[str]:
    budgets = sorted({b for b in d.agg.get("budget", pd.Series(dtype=str)).dropna() if b and b != "–"})
    kinds = sorted({MEMORY_KINDS.get(k, k) for k in d.agg.memory_kind if k})
    return [
        *(f"Ran on {line}." for line in d.ran_on),
        f"Training budgets: {'; '.join(budgets) or 'none (in-context methods only)'}.",
        f"Seeds {sorted(d.df.seed.unique().tolist())}; test examples per run: "
        + ", ".join(f"{ds} {int(n):,}" for ds, n in d.df.groupby("dataset", sort=False).n_test.max().dropna().items())
        + ".",
        f"Peak memory is {', '.join(kinds) or 'not measured'}: CPU RSS is the whole process's resident memory "
        "(weights, activations, the Python heap), so it orders methods less sharply than a GPU's allocated peak.",
    ]


def _disagreement_sections(d: ReportData) -> list[Section]:
    out = []
    for dataset, x in d.disagree.items():
        sa, sb = x["seeds"]
        seeds = f"seed {sa}" if sa == sb else f"seeds {sa} and {sb}"
        out.append(
            Section(
                f"Where {x['recommended']} and {x['alternative']} answer differently on {dataset} (test, {seeds}): "
                f"{x['differ']:,} of {x['n']:,} examples",
                text=(
                    f"Of those, {x['recommended']} is right on {x['right'][0]:,} and {x['alternative']} (the best "
                    f"other configuration on dev) on {x['right'][1]:,}; ✔ marks the right answer. "
                    + (f"The first {len(x['rows'])}:" if x["differ"] > len(x["rows"]) else "")
                ),
                table=x["rows"] if len(x["rows"]) else None,
                folded=True,
            )
        )
    return out


def sections(d: ReportData) -> list[Section]:
    """The report's sections, in order: the answer first, then the figures, then the examples and the full tables
    (folded); a new section is one entry in one of these lists."""
    return [*_answer_sections(d), *_figure_sections(d), *_example_sections(d), *_table_sections(d)]


def _answer_sections(d: ReportData) -> list[Section]:
    """The first screen: the answer per dataset, in a table and in words, and what the study ran on."""
    return [
        Section(
            "The answer",
            LEAD_TEXT,
            d.lead,
            sentences=[
                f"{ds}: {d.verdicts[ds]} On dev: {d.decisions[ds]['sentence']}"
                for ds in d.lead.dataset
                if ds in d.verdicts
            ],
        ),
        Section("What this ran on", sentences=_ran_on(d)),
    ]


def _figure_sections(d: ReportData) -> list[Section]:
    """The heat maps, score against compute, learning curves, the macro score against each cost, the budgets."""
    out = [
        Section(
            "Score per dataset and method (test)",
            "Each cell: the mean test score over seeds ± their std, on one colour scale; ▽: not significantly better "
            "than the dataset's best constant answer.",
            figures=dict(d.maps),
        ),
        Section(
            "Score against compute, per dataset",
            "Each configuration's test score (bars: 95 % interval over seeds and test examples) against the compute "
            "one run of it took (training + its search + prediction); the dashed line is the Pareto front, the "
            "dotted one the best constant answer. Hover a point for its numbers.",
            figures=dict(d.costs),
        ),
    ]
    if d.curves:
        out.append(
            Section(
                "Learning curves",
                "Training loss and dev score against the optimizer step for each trained configuration that was "
                "reported: the mean over its seeds (line) and their range (band); beside them, faint and dotted, "
                "each search candidate's dev score as far as it trained (on the search seed; a candidate halving "
                "stopped ends at its rung; its values on hover).",
                figures=dict(d.curves),
            )
        )
    out += [
        Section(
            f"{d.blurb_name[0].upper() + d.blurb_name[1:]} against each cost",
            "Per model / method: the mean over seeds (bars: ± std over seeds; dots: each seed) against its "
            "trainable parameters, its peak memory and its compute summed over the datasets; dashed: the Pareto "
            "front. Colour: method (the same in every figure and report); marker: model.",
            figures={"score vs " + k.replace("_", " "): svg for k, svg in d.plots.items()},
        ),
        Section(
            "Best model/method per task type under budgets, chosen on dev (rows: peak-memory budget; columns: "
            "time budget for the configuration, its search included; mean over the task type's datasets; on a "
            "tie the cheaper pair is named, the others after it)",
            table=_recommendation_grid(d.rec),
        ),
    ]
    return out


def _example_sections(d: ReportData) -> list[Section]:
    """The test examples behind the numbers, folded: where the recommendation and the best alternative disagree,
    and unparsed answers."""
    out = _disagreement_sections(d)
    if len(d.unparsed):
        out.append(
            Section(
                "Unparsed answers (scored as wrong predictions): a few of each configuration's, from one seed",
                table=d.unparsed,
                folded=True,
            )
        )
    return out


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    """A column, or NaN throughout where the runs predate it."""
    return df[name] if name in df else pd.Series(float("nan"), index=df.index)


def _unparsed_cell(unparsed, cut, n) -> str:
    """'257 of 940', with '; 216 cut at the cap' where answers ran to the token cap."""
    if pd.isna(unparsed):
        return "–"
    return f"{int(unparsed)} of {int(n)}" + (f"; {int(cut)} cut at the cap" if not pd.isna(cut) and cut else "")


def _table_sections(d: ReportData) -> list[Section]:
    """The full tables, folded: macro score, per dataset, the search, seed spread, every comparison."""
    per_ds = d.agg.assign(
        test=[f"{m:.2f} ± {s:.2f}" for m, s in zip(d.agg.score_mean, d.agg.score_std)],
        unparsed=[
            _unparsed_cell(u, c, n) for u, c, n in zip(d.agg.n_unparsed, _col(d.agg, "n_truncated"), d.agg.n_test)
        ],
    )
    n_sig = int(d.sig["significant"].sum()) if len(d.sig) else 0
    out = [
        Section(
            f"{d.blurb_name[0].upper() + d.blurb_name[1:]} per model and method (test, mean ± std over seeds; the "
            "mean over the task types present of each task type's mean dataset score)",
            table=d.blurb.assign(blurb=[f"{m:.2f} ± {s:.2f}" for m, s in zip(d.blurb.blurb_mean, d.blurb.blurb_std)])[
                ["model", "method", "blurb", "seeds", "task_types"]
            ],
            folded=True,
        ),
        Section(
            "Per dataset (dev mean; test mean ± std over seeds; unparsed answers over all seeds, and those cut at the "
            "token cap, scored on their complete items; cost = training "
            "(its dev evaluations included) + its search + prediction (test, and dev for in-context methods), "
            "seconds; lost: training redone after a kill, over all seeds, not part of the cost)",
            table=per_ds[PER_DATASET_COLUMNS],
            formats={
                "dev_mean": _f2,
                "trainable_params": lambda v: f"{int(v):,}",
                "peak_memory_mb": lambda v: f"{v:,.0f}",
                **{c: _seconds for c in PER_DATASET_COLUMNS if c.endswith("_seconds")},
            },
            folded=True,
        ),
    ]
    if d.search:
        out.append(
            Section(
                "Search on dev: every candidate (on the search seed: these runs are never results), its dev score, "
                "training time (the compute of its trajectory), training redone after interruptions (lost: not "
                "counted in any cost) and the one chosen (a chosen value at the end of the range tried is marked: a "
                "value beyond it may be better still)",
                text=search_savings(d.search),
                table=pd.DataFrame(d.search, columns=SEARCH_COLUMNS).rename(
                    columns={"edge": "chosen at the range's end", "rung_scores": "dev at each rung (budget: F)"}
                ),
                formats={
                    "dev_score": _f2,
                    "train_seconds": _seconds,
                    "lost_seconds": lambda v: _seconds(v) if v else "–",
                    "chosen": lambda v: "✔" if v else "",
                    "chosen at the range's end": lambda v: "; ".join(v),
                    "dev at each rung (budget: F)": lambda v: (
                        " → ".join(f"{f:g}: {x:.1f}" for f, x in v) if isinstance(v, list) else "–"
                    ),
                },
                folded=True,
            )
        )
    out += [
        Section(
            "Seed variance per model and method (std of the test score over seeds, mean over datasets)",
            table=d.var,
            formats={"mean_seed_std": _f2},
            folded=True,
        ),
        Section(
            f"Every pair of configurations on a dataset, across models, and each against the best constant answer: "
            f"{len(d.sig)} comparisons, {n_sig} significant after Holm-Bonferroni over all of them (the mean "
            "per-seed difference, its variance split into a seed part and a test-example part — the examples "
            f"resampled {d.samples:,} times, by document where the ids name documents — and a t reference with "
            f"seeds − 1 degrees of freedom, calibrated by simulation; computed in {d.sig_seconds:.1f} s; interval: "
            "95 % of score(a) − score(b); * = significant after the correction)",
            table=d.sig.assign(mark=np.where(d.sig.significant, "*", "")).drop(
                columns=["significant", "samples", "seed_var", "example_var"]
            ),
            formats={
                "diff": _f2,
                "ci_low": _f2,
                "ci_high": _f2,
                "p_value": lambda v: f"{v:.4f}",
                "df": lambda v: f"{v:g}",
                "p_holm": lambda v: f"{v:.4f}",
            },
            folded=True,
        ),
    ]
    return out


STYLE = """body{font-family:system-ui,sans-serif;max-width:1220px;margin:1.2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em;margin:0.3em 0}h2{font-size:1.25em;margin:1.1em 0 0.4em}p,li{line-height:1.4}
table{border-collapse:collapse;margin:0.6em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#f3f3f3}td.n{white-space:nowrap}
figure{display:inline-block;margin:0.4em;vertical-align:top;max-width:100%}svg{max-width:100%;height:auto}
details{margin:0.5em 0}summary{cursor:pointer;font-weight:600}.scroll{overflow-x:auto}
ul.answer li{margin:0.35em 0}"""


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _lead(sentence: str) -> str:
    """A sentence whose first words up to ': ' name what it is about, those words in bold."""
    head, sep, rest = sentence.partition(": ")
    if sep and len(head) < 60:
        return f"<b>{html.escape(head)}</b>: {html.escape(rest)}"
    return html.escape(sentence)


def render_html(d: ReportData, parts: list[Section]) -> str:
    """A self-contained page (inline SVG, no script, nothing fetched)."""

    def body(sec: Section) -> str:
        out = f"<p>{html.escape(sec.text)}</p>" if sec.text else ""
        out += "".join(
            f"<figure>{svg}<figcaption>{html.escape(cap)}</figcaption></figure>" for cap, svg in sec.figures.items()
        )
        if sec.table is not None:
            out += _table(sec.table, sec.formats)[0]
        if sec.sentences:
            out += '<ul class="answer">' + "".join(f"<li>{_lead(t)}</li>" for t in sec.sentences) + "</ul>"
        return out

    shown = "".join(f"<h2>{html.escape(s.title)}</h2>{body(s)}" for s in parts if not s.folded)
    folded = "".join(
        f"<details><summary>{html.escape(s.title)}</summary>{body(s)}</details>" for s in parts if s.folded
    )
    df = d.df
    facts = (
        f"{html.escape(d.counted())} · {_n(df.dataset.nunique(), 'dataset')} · {_n(df.model.nunique(), 'model')} · "
        f"{_n(df.method.nunique(), 'method')} · seeds {sorted(df.seed.unique().tolist())} · store "
        f"<code>{html.escape(d.store_url)}</code> · {d.stamp}"
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>biotune report: '
        f"{html.escape(d.study)}</title>\n<style>{STYLE}</style></head>\n<body><h1>biotune report: "
        f"{html.escape(d.study)}</h1>\n<p>{facts}</p>\n{shown}{folded}</body></html>"
    )


def render_markdown(d: ReportData, parts: list[Section]) -> str:
    """The same sections as Markdown (figures: named, in report.html)."""

    def body(sec: Section) -> str:
        out = f"{sec.text}\n\n" if sec.text else ""
        if sec.figures:
            out += "Figures: see report.html.\n\n"
        if sec.table is not None:
            out += _table(sec.table, sec.formats)[1] + "\n"
        out += "".join(f"- {t}\n" for t in sec.sentences)
        return out

    shown = "".join(f"## {s.title}\n\n{body(s)}\n" for s in parts if not s.folded)
    folded = "".join(f"<details><summary>{s.title}</summary>\n\n{body(s)}</details>\n\n" for s in parts if s.folded)
    return f"# biotune report: {d.study}\n\n{d.counted()}; store `{d.store_url}`; {d.stamp}\n\n{shown}{folded}"


def build_report(
    store_url: str,
    study: str,
    out_dir: str | Path,
    memory_mb=(2048, 8192, float("inf")),
    seconds=(300, 3600, float("inf")),
    samples: int = 10000,
    identities: dict | None = None,
    search: list[dict] | None = None,
) -> dict:
    """The report of a study's final cells (`identities`: grid key -> identity hash; `search`: the candidates
    of its searches, study/search.py `summary`), written as report.html and report.md. It leads with the answer
    (per dataset the configuration chosen on dev, its test score with interval, what it is better or worse
    than), then the heat maps and Pareto plots and the budget table; the complete tables follow, folded."""
    d = compute_report(store_url, study, memory_mb, seconds, samples, identities, search)
    parts = sections(d)
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "report.html", render_html(d, parts))
    atomic_write_text(out_dir / "report.md", render_markdown(d, parts))
    return {
        "html": str(out_dir / "report.html"),
        "markdown": str(out_dir / "report.md"),
        "cells": len(d.df),
        "blurb": d.blurb,
        "aggregate": d.agg,
        "significance": d.sig,
        "intervals": d.intervals,
        "recommendations": d.rec,
        "answer": d.lead,
        "decisions": d.decisions,
        "disagreements": d.disagree,
        "significance_seconds": d.sig_seconds,
    }
