"""Assemble a study's report from its results store: `build_report(store_url, study, out_dir)`."""

from __future__ import annotations

import html
import io
import itertools
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from biotune.data import get_spec
from biotune.errors import BiotuneError
from biotune.io import atomic_write_text, read_jsonl
from biotune.methods import METHODS
from biotune.study.store import Store
from biotune.tasks import task_for

from . import stats


def load_results(store_url: str, study: str, identities: dict | None = None,
                 search: list[dict] | None = None) -> pd.DataFrame:
    """The finished cells of a study. `identities` (grid key -> identity hash, from the study file as it is now):
    only rows of those identities, so nothing stale is reported; None: the newest finished row of each cell."""
    rows = Store(store_url).rows(study, "done")
    if identities is not None:
        rows = [r for r in rows if identities.get((r["dataset"], r["model"], r["method"], r["seed"]))
                == r["config_hash"]]
    else:
        newest = {}
        for r in rows:
            newest[(r["dataset"], r["model"], r["method"], r["seed"])] = r
        rows = list(newest.values())
    if not rows:
        raise BiotuneError(f"no finished cells of study {study!r} (as the study file defines them now) in {store_url}")
    # a searched configuration also cost its search: the other candidates' training time
    search_cost: dict = {}
    for c in search or []:
        if not c["chosen"]:
            k = (c["dataset"], c["model"], c["method"])
            search_cost[k] = search_cost.get(k, 0.0) + (c["train_seconds"] or 0.0)
    out = []
    for r in rows:
        res = json.loads(r["resources"] or "{}")
        method = METHODS.get(_method_name(json.loads(r["config"])))
        peak = max(res.get("train_peak_memory_bytes") or 0, res.get("eval_peak_memory_bytes") or 0)
        out.append({
            "dataset": r["dataset"], "task": r["task"], "model": r["model"], "method": r["method"],
            "seed": r["seed"], "score": r["score"], "dev_score": r.get("dev_score"),
            "search_seconds": search_cost.get((r["dataset"], r["model"], r["method"]), 0.0),
            "trainable_params": res.get("trainable_params", 0),
            "peak_memory_mb": peak / 2**20, "train_seconds": res.get("train_seconds", 0.0),
            "trains": method.trains, "deterministic": method.deterministic,
            "output_dir": r["output_dir"],
        })
    return pd.DataFrame(out)


def _method_name(config: dict) -> str:
    return (config.get("experiment") or config)["method"]["name"]  # an identity, or an earlier store's config


def significance(df: pd.DataFrame, samples: int = 10000, alpha: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every method pair on the same model and dataset, over every seed both ran (a deterministic method's one
    run pairs with each seed of the other) and every test example both predicted: a bootstrap that resamples
    seeds and examples (stats.seed_example_test, from per-example sufficient statistics; the same example
    resamples for every run on a dataset), then Holm-Bonferroni over all the pairs tested: `significant` only
    after that correction. Also each (dataset, model, method)'s test score with its interval (same resamples)."""
    rows, intervals = [], []
    for (dataset, model), g in df.groupby(["dataset", "model"], sort=False):
        task = task_for(_spec(dataset, g.output_dir))
        runs = {(r.method, r.seed): _predictions(r.output_dir) for r in g.itertuples()}
        runs = {k: v for k, v in runs.items() if v}
        if not runs:
            continue
        ids = [i for i in next(iter(runs.values())) if all(i in p for p in runs.values())]
        if len(ids) < 2:
            continue
        first = next(iter(runs.values()))
        golds = [first[i]["gold"] for i in ids]
        stats_by_run = {k: task.stats(golds, [p[i]["prediction"] for i in ids], ids) for k, p in runs.items()}
        observed, reps = stats.replicate_scores(stats_by_run, task.score_stats, samples)
        seeds = {m: sorted(s for (mm, s) in runs if mm == m) for m in dict.fromkeys(g.method)}
        seeds = {m: v for m, v in seeds.items() if v}
        for m, ss in seeds.items():
            iv = stats.seed_example_interval([observed[(m, s)] for s in ss], [reps[(m, s)] for s in ss])
            intervals.append({"dataset": dataset, "model": model, "method": m, "n": len(ids), **iv})
        fixed = {m: bool(d) for m, d in zip(g.method, g.deterministic)}
        for a, b in itertools.combinations(list(seeds), 2):
            if fixed[a] and len(seeds[a]) == 1:
                pairs = [(seeds[a][0], s) for s in seeds[b]]
            elif fixed[b] and len(seeds[b]) == 1:
                pairs = [(s, seeds[b][0]) for s in seeds[a]]
            else:
                pairs = [(s, s) for s in seeds[a] if s in seeds[b]]
            if not pairs:
                continue
            res = stats.seed_example_test([observed[(a, sa)] for sa, _ in pairs], [reps[(a, sa)] for sa, _ in pairs],
                                          [observed[(b, sb)] for _, sb in pairs], [reps[(b, sb)] for _, sb in pairs])
            rows.append({"dataset": dataset, "model": model, "a": a, "b": b, "n": len(ids), **res})
    out = pd.DataFrame(rows, columns=["dataset", "model", "a", "b", "n", "diff", "ci_low", "ci_high", "p_value",
                                      "seeds", "samples"])
    out["p_holm"] = stats.holm(out["p_value"]) if len(out) else []
    out["significant"] = out["p_holm"] < alpha
    return out, pd.DataFrame(intervals, columns=["dataset", "model", "method", "n", "score", "ci_low", "ci_high",
                                                 "seeds"])


def constant_baselines(df: pd.DataFrame) -> dict[str, tuple[float, str]]:
    """Per dataset with one label per example (relations, QA): the best test score of answering one label for
    every example, on the examples every run of it predicted — what a model that learned only the majority
    answer scores (GAD's F1 of the positive class: about 69 for always 'yes'). Other task types: none listed
    (a constant there scores 0: no mentions, a constant similarity, one label set)."""
    out = {}
    for dataset, g in df.groupby("dataset", sort=False):
        runs = [p for p in (_predictions(o) for o in g.output_dir) if p]
        if not runs:
            continue
        ids = [i for i in runs[0] if all(i in p for p in runs)]
        golds = [runs[0][i]["gold"] for i in ids]
        if not ids or not all(isinstance(x, str) for x in golds):
            continue
        task = task_for(_spec(dataset, g.output_dir))
        out[dataset] = max((float(task.score_stats(task.stats(golds, [c] * len(ids), ids).sum(axis=0))), c)
                           for c in sorted(set(golds)))
    return out


def _spec(dataset: str, output_dirs):
    """A dataset's spec: a built-in by name, a dataset file as its runs' configs name it."""
    from biotune.data import DATASETS

    if dataset in DATASETS:
        return get_spec(dataset)
    for out in output_dirs:
        config = Path(out) / "config.yaml"
        if config.is_file():
            return get_spec(yaml.safe_load(config.read_text())["dataset"])
    return get_spec(dataset)  # raises, naming the dataset


def _predictions(output_dir: str) -> dict:
    path = Path(output_dir) / "predictions.jsonl"
    return {r["id"]: r for r in read_jsonl(path)} if path.is_file() else {}


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    return buf.getvalue()[buf.getvalue().index("<svg"):]


def pareto_plots(agg: pd.DataFrame, blurb: pd.DataFrame) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cost = agg.groupby(["model", "method"]).agg(trainable_params=("trainable_params", "mean"),
                                               peak_memory_mb=("peak_memory_mb", "mean"),
                                               train_seconds=("train_seconds", "mean")).reset_index()
    pts = blurb.merge(cost, on=["model", "method"])
    plots = {}
    for col, label, log in (("trainable_params", "trainable parameters", True),
                            ("peak_memory_mb", "peak memory (MB)", False),
                            ("train_seconds", "training time (s)", False)):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        xs = pts[col].clip(lower=1 if log else 0).to_numpy()
        ys = pts["blurb_mean"].to_numpy()
        for (_, r), x, y in zip(pts.iterrows(), xs, ys):
            ax.errorbar(x, y, yerr=r["blurb_std"], fmt="o", capsize=3)
        front = stats.pareto_front(list(zip(xs, ys)))
        ax.plot(xs[front], ys[front], "--", color="grey", label="Pareto front")
        if log:
            ax.set_xscale("symlog", linthresh=1)
        ax.autoscale_view()
        placed: list[tuple[float, float]] = []  # labels of points that (nearly) coincide are stacked, not overlaid
        for (_, r), x, y in zip(pts.iterrows(), xs, ys):
            px, py = ax.transData.transform((x, y))
            stack = sum(1 for qx, qy in placed if abs(qx - px) < 40 and abs(qy - py) < 10)
            placed.append((px, py))
            ax.annotate(f"{r['model']}/{r['method']}", (x, y), fontsize=7, xytext=(4, 4 + 9 * stack),
                        textcoords="offset points")
        ax.set_xlabel(label)
        ax.set_ylabel("BLURB score (datasets in the study)")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)
        plots[col] = _svg(fig)
        plt.close(fig)
    return plots


def heat_maps(agg: pd.DataFrame) -> dict[str, str]:
    """Per model: datasets x methods, the mean test score in each cell (SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = {}
    for model, g in agg.groupby("model", sort=False):
        table = g.pivot_table(index="dataset", columns="method", values="score_mean", sort=False)
        fig, ax = plt.subplots(figsize=(1.4 + 1.1 * table.shape[1], 0.9 + 0.45 * table.shape[0]))
        ax.imshow(table.to_numpy(dtype=float), cmap="viridis", aspect="auto", vmin=0, vmax=100)
        ax.set_xticks(range(table.shape[1]), table.columns, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(table.shape[0]), table.index, fontsize=8)
        for i in range(table.shape[0]):
            for j in range(table.shape[1]):
                v = table.iat[i, j]
                if not np.isnan(v):
                    ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8,
                            color="white" if v < 60 else "black")
        ax.set_title(f"{model}: test score (mean over seeds)", fontsize=9)
        maps[model] = _svg(fig)
        plt.close(fig)
    return maps


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
                f"{r.model} / {r.method} (dev {r.dev:.1f}, test {r.score:.1f}{tie})" if fits else "nothing fits")
        rows.append(row)
    return pd.DataFrame(rows)


def answer(agg: pd.DataFrame, rec: pd.DataFrame, sig: pd.DataFrame, intervals: pd.DataFrame,
           search: list[dict], constants: dict | None = None) -> pd.DataFrame:
    """The report's first table: per task type and dataset, the (model, method) chosen on dev (no budget), its
    chosen search values, dev score, test score with its 95% interval over seeds and examples, the methods
    on the same model it beats / cannot be told apart from after the multiplicity correction, and the best
    constant answer's test score (`constant_baselines`) where a dataset has one."""
    constants = constants or {}
    top = rec[(rec.memory_budget_mb == float("inf")) & (rec.time_budget_s == float("inf"))]
    rows = []
    for r in top.itertuples():
        if not isinstance(r.method, str):
            continue
        for d in agg[(agg.task == r.task) & (agg.model == r.model) & (agg.method == r.method)].itertuples():
            pick = next((c for c in search if c["chosen"] and (c["dataset"], c["model"], c["method"])
                         == (d.dataset, r.model, r.method)), None)
            edge = pick.get("edge", []) if pick else []
            if pick and len(pick.get("values") or {}) == 1:  # one field searched: its name is in the label
                edge = [e.split(": ", 1)[-1] for e in edge]
            chosen = "" if pick is None else pick["candidate"] + (f" ({'; '.join(edge)})" if edge else "")
            iv = intervals[(intervals.dataset == d.dataset) & (intervals.model == r.model) & (intervals.method == r.method)]
            test = (f"{iv.score.iloc[0]:.2f} [{iv.ci_low.iloc[0]:.2f}, {iv.ci_high.iloc[0]:.2f}]" if len(iv)
                    else f"{d.score_mean:.2f}")
            beats, ties = [], []
            for p in sig[(sig.dataset == d.dataset) & (sig.model == r.model)].itertuples():
                if r.method not in (p.a, p.b):
                    continue
                other, diff = (p.b, p.diff) if p.a == r.method else (p.a, -p.diff)
                (beats if p.significant and diff > 0 else ties).append(other)
            rows.append({"task": r.task, "dataset": d.dataset, "recommended (on dev)": f"{r.model} / {r.method}",
                         "search chose": chosen or "–", "dev": f"{d.dev_mean:.2f}", "test [95% CI]": test,
                         "seeds": int(d.seeds), "better than (Holm)": ", ".join(beats) or "–",
                         "not told apart from": ", ".join(ties) or "–",
                         "best constant answer (test)": (f"{constants[d.dataset][0]:.2f} (always "
                                                         f"{constants[d.dataset][1]!r})" if d.dataset in constants
                                                         else "–")})
    return pd.DataFrame(rows)


def _table(df: pd.DataFrame, fmt: dict | None = None) -> tuple[str, str]:
    """(HTML, Markdown) of a DataFrame."""
    fmt = fmt or {}
    cells = [[fmt.get(c, str)(v) if v is not None and not (isinstance(v, float) and np.isnan(v)) else "–"
              for c, v in row.items()] for _, row in df.iterrows()]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in cells)
    md = "| " + " | ".join(map(str, df.columns)) + " |\n|" + "---|" * len(df.columns) + "\n"
    md += "".join("| " + " | ".join(row) + " |\n" for row in cells)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>", md


def build_report(store_url: str, study: str, out_dir: str | Path, memory_mb=(2048, 8192, float("inf")),
                 seconds=(300, 3600, float("inf")), samples: int = 10000, identities: dict | None = None,
                 search: list[dict] | None = None) -> dict:
    """The report of a study's final cells (`identities`: grid key -> identity hash; `search`: the candidates
    of its searches, study/search.py `summary`). It leads with the answer (per task type the method chosen on
    dev, its test score with interval, what it is significantly better than), then the heat maps and Pareto
    plots; the complete tables follow, folded."""
    import time

    search = search or []
    df = load_results(store_url, study, identities, search)
    agg = stats.aggregate(df)
    blurb = stats.blurb_scores(df)
    var = stats.seed_variance(agg)
    started = time.perf_counter()
    sig, intervals = significance(df, samples)
    sig_seconds = time.perf_counter() - started
    rec = stats.recommendations(agg, memory_mb, seconds)
    lead = answer(agg, rec, sig, intervals, search, constant_baselines(df))
    plots = pareto_plots(agg, blurb)
    maps = heat_maps(agg)

    f2 = lambda v: f"{v:.2f}"  # noqa: E731
    per_ds = agg.assign(test=[f"{m:.2f} ± {s:.2f}" for m, s in zip(agg.score_mean, agg.score_std)])
    n_sig = int(sig["significant"].sum()) if len(sig) else 0
    folded = [
        ("BLURB score per model and method (test, mean ± std over seeds)",
         _table(blurb.assign(blurb=[f"{m:.2f} ± {s:.2f}" for m, s in zip(blurb.blurb_mean, blurb.blurb_std)])
                [["model", "method", "blurb", "seeds", "task_types"]])),
        ("Per dataset (dev mean; test mean ± std over seeds; cost = training time + its search)",
         _table(per_ds[["task", "dataset", "model", "method", "dev_mean", "test", "seeds", "trainable_params",
                        "peak_memory_mb", "train_seconds", "search_seconds", "cost_seconds"]],
                {"dev_mean": f2, "trainable_params": lambda v: f"{int(v):,}", "peak_memory_mb": lambda v: f"{v:,.0f}",
                 "train_seconds": lambda v: f"{v:.0f}", "search_seconds": lambda v: f"{v:.0f}",
                 "cost_seconds": lambda v: f"{v:.0f}"})),
        *([] if not search else [(
         "Search on dev: every candidate (first seed), its dev score, training time and the one chosen (a "
         "chosen value at the end of the range tried is marked: a value beyond it may be better still)",
         _table(pd.DataFrame(search, columns=["dataset", "model", "method", "candidate", "dev_score", "train_seconds",
                                              "chosen", "edge"]).rename(columns={"edge": "chosen at the range's end"}),
                {"dev_score": f2, "train_seconds": lambda v: f"{v:.0f}", "chosen": lambda v: "✔" if v else "",
                 "chosen at the range's end": lambda v: "; ".join(v)}))]),
        ("Seed variance: fine-tuning vs in-context learning (mean std of the test score over seeds)",
         _table(var, {"mean_seed_std": f2})),
        (f"Method vs method on the same model and dataset: {len(sig)} comparisons, {n_sig} significant after "
         f"Holm-Bonferroni over all of them (bootstrap over seeds and test examples, {samples:,} resamples, "
         f"computed in {sig_seconds:.1f} s; interval: 95 % of score(a) − score(b); * = significant after the "
         "correction)",
         _table(sig.assign(mark=np.where(sig.significant, "*", "")).drop(columns=["significant", "samples"]),
                {"diff": f2, "ci_low": f2, "ci_high": f2, "p_value": lambda v: f"{v:.4f}",
                 "p_holm": lambda v: f"{v:.4f}"})),
    ]
    budgets = ("Best model/method per task type under budgets, chosen on dev (rows: peak-memory budget; columns: "
               "time budget for the configuration, its search included; mean over the task type's datasets; on a "
               "tie the cheaper pair is named, the others after it)", _table(_recommendation_grid(rec)))
    lead_title = "The answer"
    lead_text = ("Per task type, the model/method with the best dev score (chosen on dev, never on test), its test "
                 "score (mean over seeds, 95 % interval over seeds and test examples) and the methods on the same "
                 "model it is significantly better than after Holm-Bonferroni over every comparison in this report; "
                 "beside it, the best score of answering one label for every test example (relations, QA): a model "
                 "near it has learned the majority answer, not the task.")
    lead_html, lead_md = _table(lead)
    out_dir = Path(out_dir)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    fig_html = lambda svgs, cap: "".join(  # noqa: E731
        f"<figure>{svg}<figcaption>{html.escape(cap(k))}</figcaption></figure>" for k, svg in svgs.items())
    body = (f"<h2>{html.escape(lead_title)}</h2><p>{html.escape(lead_text)}</p>{lead_html}"
            f"<h2>Score per dataset and method (test)</h2>{fig_html(maps, lambda k: k)}"
            f"<h2>Cost and score (Pareto plots)</h2>"
            f"{fig_html(plots, lambda k: 'score vs ' + k.replace('_', ' '))}"
            f"<h2>{html.escape(budgets[0])}</h2>{budgets[1][0]}"
            + "".join(f"<details><summary>{html.escape(t)}</summary>{h}</details>" for t, (h, _) in folded))
    # the cells reported are the chosen configurations' (every seed); the other search candidates are in the
    # search table only, and not-yet-run ones are neither
    unchosen = sum(1 for c in search if not c["chosen"] and c["dev_score"] is not None)
    counted = f"{len(df)} finished cells reported" + (f" (and {unchosen} search candidates not chosen)" if unchosen
                                                       else "")
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>biotune report: {html.escape(study)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:1em 0;font-size:14px}}th,td{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
th{{background:#f3f3f3}}figure{{display:inline-block;margin:0.5em}}svg{{max-width:100%;height:auto}}
details{{margin:0.6em 0}}summary{{cursor:pointer;font-weight:600}}</style></head>
<body><h1>biotune report: {html.escape(study)}</h1>
<p>{html.escape(counted)} · {df.dataset.nunique()} datasets · {df.model.nunique()} models · {df.method.nunique()} methods · seeds {sorted(df.seed.unique().tolist())} · store <code>{html.escape(store_url)}</code> · {stamp}</p>
{body}</body></html>"""
    md = (f"# biotune report: {study}\n\n{counted}; store `{store_url}`; {stamp}\n\n"
          f"## {lead_title}\n\n{lead_text}\n\n{lead_md}\nHeat maps and Pareto plots: see report.html.\n\n"
          f"## {budgets[0]}\n\n{budgets[1][1]}\n"
          + "".join(f"<details><summary>{t}</summary>\n\n{m}\n</details>\n\n" for t, (_, m) in folded))
    atomic_write_text(out_dir / "report.html", page)
    atomic_write_text(out_dir / "report.md", md)
    return {"html": str(out_dir / "report.html"), "markdown": str(out_dir / "report.md"), "cells": len(df),
            "blurb": blurb, "aggregate": agg, "significance": sig, "intervals": intervals,
            "recommendations": rec, "answer": lead, "significance_seconds": sig_seconds}
