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

from biotune.data import get_spec
from biotune.errors import BiotuneError
from biotune.io import atomic_write_text, read_jsonl
from biotune.methods import METHODS
from biotune.study.store import Store
from biotune.tasks import task_for

from . import stats


def load_results(store_url: str, study: str, identities: dict | None = None) -> pd.DataFrame:
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
    out = []
    for r in rows:
        res = json.loads(r["resources"] or "{}")
        peak = max(res.get("train_peak_memory_bytes") or 0, res.get("eval_peak_memory_bytes") or 0)
        out.append({
            "dataset": r["dataset"], "task": r["task"], "model": r["model"], "method": r["method"],
            "seed": r["seed"], "score": r["score"], "trainable_params": res.get("trainable_params", 0),
            "peak_memory_mb": peak / 2**20, "train_seconds": res.get("train_seconds", 0.0),
            "trains": METHODS.get(_method_name(json.loads(r["config"]))).trains,
            "output_dir": r["output_dir"],
        })
    return pd.DataFrame(out)


def _method_name(config: dict) -> str:
    return (config.get("experiment") or config)["method"]["name"]  # an identity, or an earlier store's config


def significance(df: pd.DataFrame, samples: int = 1000) -> pd.DataFrame:
    """Paired bootstrap of every method pair on the same model, dataset and seed (the lowest seed both ran)."""
    rows = []
    for (dataset, model), g in df.groupby(["dataset", "model"], sort=False):
        task = task_for(get_spec(dataset))
        for a, b in itertools.combinations(list(dict.fromkeys(g["method"])), 2):
            seeds = sorted(set(g[g.method == a].seed) & set(g[g.method == b].seed))
            if not seeds:
                continue
            pa = _predictions(g[(g.method == a) & (g.seed == seeds[0])].output_dir.iloc[0])
            pb = _predictions(g[(g.method == b) & (g.seed == seeds[0])].output_dir.iloc[0])
            ids = [i for i in pa if i in pb]
            if len(ids) < 2:
                continue
            golds = [pa[i]["gold"] for i in ids]

            def scorer(preds):
                return lambda idx: task.score_gold([golds[k] for k in idx], [preds[k] for k in idx],
                                                   [f"{ids[k]}#{j}" for j, k in enumerate(idx)])["score"]

            # resampled copies of one document count as separate documents (ids made unique per draw)
            res = stats.paired_bootstrap(scorer([pa[i]["prediction"] for i in ids]),
                                         scorer([pb[i]["prediction"] for i in ids]), len(ids), samples)
            rows.append({"dataset": dataset, "model": model, "a": a, "b": b, "seed": seeds[0], "n": len(ids), **res})
    return pd.DataFrame(rows)


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


def _budget(v: float, unit: str) -> str:
    return "any" if v == float("inf") else f"≤ {v:,.0f} {unit}"


def _recommendation_grid(rec: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (task, mem), g in rec.groupby(["task", "memory_budget_mb"], sort=False):
        row = {"task": task, "memory": _budget(mem, "MB")}
        for _, r in g.iterrows():
            tie = f"; tie with {', '.join(r.tied_with)}" if r.method is not None and r.tied_with else ""
            row[f"time {_budget(r.time_budget_s, 's')}"] = (
                f"{r.model} / {r.method} ({r.score:.1f}{tie})" if r.method is not None else "nothing fits")
        rows.append(row)
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
                 seconds=(300, 3600, float("inf")), samples: int = 1000, identities: dict | None = None) -> dict:
    df = load_results(store_url, study, identities)
    agg = stats.aggregate(df)
    blurb = stats.blurb_scores(df)
    var = stats.seed_variance(agg)
    sig = significance(df, samples)
    rec = stats.recommendations(agg, memory_mb, seconds)
    plots = pareto_plots(agg, blurb)

    f2 = lambda v: f"{v:.2f}"  # noqa: E731
    per_ds = agg.assign(score=[f"{m:.2f} ± {s:.2f}" for m, s in zip(agg.score_mean, agg.score_std)])
    sections = [
        ("BLURB score per model and method (mean ± std over seeds)",
         _table(blurb.assign(blurb=[f"{m:.2f} ± {s:.2f}" for m, s in zip(blurb.blurb_mean, blurb.blurb_std)])
                [["model", "method", "blurb", "seeds", "task_types"]])),
        ("Per dataset (mean ± std over seeds)",
         _table(per_ds[["task", "dataset", "model", "method", "score", "seeds", "trainable_params",
                        "peak_memory_mb", "train_seconds"]],
                {"trainable_params": lambda v: f"{int(v):,}", "peak_memory_mb": lambda v: f"{v:,.0f}",
                 "train_seconds": lambda v: f"{v:.0f}"})),
        ("Seed variance: fine-tuning vs in-context learning (mean std of the score over seeds)",
         _table(var, {"mean_seed_std": f2})),
        ("Method vs method: paired bootstrap (95% interval of score(a) − score(b); * = excludes 0)",
         _table(sig.assign(mark=np.where(sig.significant, "*", "")).drop(columns="significant") if len(sig) else sig,
                {"diff": f2, "ci_low": f2, "ci_high": f2, "p_value": lambda v: f"{v:.3f}"})),
        ("Recommendation: best model/method per task type (rows: peak-memory budget; columns: training-time "
         "budget; mean score over the task type's datasets; on a tie the cheaper pair is named, the others after "
         "it)", _table(_recommendation_grid(rec))),
    ]
    out_dir = Path(out_dir)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(f"<h2>{html.escape(t)}</h2>{h}" for t, (h, _) in sections)
    figs = "".join(f"<figure>{svg}<figcaption>score vs {html.escape(k.replace('_', ' '))}</figcaption></figure>"
                   for k, svg in plots.items())
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>biotune report: {html.escape(study)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:1em 0;font-size:14px}}th,td{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
th{{background:#f3f3f3}}figure{{display:inline-block;margin:0.5em}}svg{{max-width:100%;height:auto}}</style></head>
<body><h1>biotune report: {html.escape(study)}</h1>
<p>{len(df)} finished cells · {df.dataset.nunique()} datasets · {df.model.nunique()} models · {df.method.nunique()} methods · seeds {sorted(df.seed.unique().tolist())} · store <code>{html.escape(store_url)}</code> · {stamp}</p>
{body}<h2>Cost and score (Pareto plots)</h2>{figs}</body></html>"""
    md = f"# biotune report: {study}\n\n{len(df)} finished cells; store `{store_url}`; {stamp}\n\n" + "".join(
        f"## {t}\n\n{m}\n" for t, (_, m) in sections) + "\nPlots: see report.html.\n"
    atomic_write_text(out_dir / "report.html", page)
    atomic_write_text(out_dir / "report.md", md)
    return {"html": str(out_dir / "report.html"), "markdown": str(out_dir / "report.md"), "cells": len(df),
            "blurb": blurb, "aggregate": agg, "significance": sig, "recommendations": rec}
