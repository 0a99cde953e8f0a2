"""A study's report computed once from its store (`compute_report` -> `ReportData`): the final cells, aggregates,
macro score, comparisons, dev decisions, the answer, the figures. The sections and renderers only format it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from biotune.data import get_spec
from biotune.errors import BiotuneError
from biotune.summary import is_subset
from biotune.tasks import task_for

from . import examples, figures, stats
from .answer import dev_decisions
from .compare import CONSTANT, constant_baselines, dataset_spec, seen_from, significance
from .data import load_results, run_details, search_curves
from .verdict import answer


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
    blurb_name: str  # "BLURB score" only over all 6 task types, each dataset on its whole test split
    subsets: dict[str, tuple[int, int]]  # dataset -> (examples scored, of how many): runs on a part of the split
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
    datasets: dict  # the study's datasets, finished or not: name -> spec (the table has a row for each)
    data_dir: str | None  # the study's data location (None: the default one)
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


def scored_subsets(df: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """dataset -> (examples scored, the split's size) for each dataset whose runs scored a fixed part of the
    evaluated split (eval.limit; the same part for every configuration): no BLURB-comparable score there. Runs
    that did not record the split's size count as whole."""
    out = {}
    if "n_total" not in df:
        return out
    for ds, g in df.groupby("dataset", sort=False):
        part = g[[is_subset({"n": n, "n_total": total}) for n, total in zip(g.n_test, g.n_total)]]
        if len(part):
            out[ds] = (int(part.n_test.max()), int(part.n_total.max()))
    return out


def _study_datasets(refs: list[str] | None, df: pd.DataFrame) -> dict:
    """name -> spec of the study's datasets (as its cells name them: a built-in's name, a dataset file's path), in its
    order; without them, those with results."""
    found = {ds: dataset_spec(ds, g.output_dir) for ds, g in df.groupby("dataset", sort=False)}
    out = {}
    for ref in refs or []:
        if ref in found:  # a name with results: its spec as its runs' configs name it
            out[ref] = found[ref]
            continue
        try:
            spec = get_spec(ref)
        except BiotuneError:  # a dataset file's name without runs yet: nothing to show for it
            continue
        out[spec.name] = found.get(spec.name, spec)
    return {**out, **{ds: s for ds, s in found.items() if ds not in out}}


def compute_report(
    store_url: str,
    study: str,
    memory_mb=(2048, 8192, float("inf")),
    seconds=(300, 3600, float("inf")),
    samples: int = 10000,
    identities: dict | None = None,
    search: list[dict] | None = None,
    datasets: list[str] | None = None,
    data_dir: str | None = None,
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
    specs = _study_datasets(datasets, df)
    metric_of = {ds: task_for(specs[ds]).metric for ds in dict.fromkeys(df.dataset)}
    n_types = int(blurb.task_types.max()) if len(blurb) else 0
    subsets = scored_subsets(df)
    blurb_name = "BLURB score" if n_types == 6 else f"macro score over {n_types} of BLURB's 6 task types"
    if subsets and n_types:  # a test subset's score is not the split's: no BLURB score, whatever the types
        blurb_name = "macro score over BLURB's 6 task types" if n_types == 6 else blurb_name
        blurb_name += f" (test subsets on {len(subsets)} datasets: not BLURB-comparable)"
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
        subsets=subsets,
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
        datasets=specs,
        data_dir=data_dir,
        stamp=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
