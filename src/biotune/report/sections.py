"""The report's parts in order (`sections`): the answer, the figures, the examples, the folded tables; each a
`Section` the HTML and Markdown renderers format alike."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .compute import ReportData
from .data import MEMORY_KINDS
from .table import TABLE_TEXT, findings, published_gaps, study_table
from .verdict import search_savings


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


def lead_text(d: ReportData) -> str:
    """LEAD_TEXT, and what a significant difference takes here: the comparisons Holm covers and the seeds."""
    sig = d.sig
    if sig is None or not len(sig):
        return LEAD_TEXT
    seeds = sorted({int(s) for s in sig.seeds.dropna()})
    span = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    return LEAD_TEXT + (
        f" Significance: {len(sig)} comparisons here (every pair of configurations per dataset, and each against "
        f"the constant), each a t over {span} paired seed differences with the example variance within seeds; "
        "Holm over all of them, so with few seeds only large, steady differences survive (each difference not told "
        "apart is given with its p before and after Holm)."
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
        + ", ".join(
            f"{ds} {int(n):,}" + (f" of {d.subsets[ds][1]:,} (a fixed subset)" if ds in d.subsets else "")
            for ds, n in d.df.groupby("dataset", sort=False).n_test.max().dropna().items()
        )
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
            lead_text(d),
            d.lead,
            sentences=[
                f"{ds}: {d.verdicts[ds]} {d.decisions[ds]['sentence']}" for ds in d.lead.dataset if ds in d.verdicts
            ],
        ),
        Section("What this ran on", sentences=_ran_on(d)),
        Section("The study's table", TABLE_TEXT, study_table(d), sentences=published_gaps(d)),
        *(
            [Section("The paper's findings as questions, answered by this table", sentences=answers)]
            if (answers := findings(d))
            else []
        ),
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
