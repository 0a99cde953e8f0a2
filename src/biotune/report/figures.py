"""The report's figures, drawn so they read without asking: one colour per method, fixed across every figure and
every report (the method registry's order), one marker per model, a legend on every figure and no label inside
the axes (a point's full name is its SVG <title>: shown on hover, offline, no script), what error bars and bands
are said in the caption, colour bars with the metric on heat maps, and zero drawn as 0 on a log axis.

Each function returns SVG text (matplotlib, text kept as text: `svg.fonttype: none`)."""

from __future__ import annotations

import html
import io
import re

import matplotlib
import numpy as np
import pandas as pd

from biotune.methods import METHODS

from . import stats

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.lines import Line2D  # noqa: E402

STYLE = {"svg.fonttype": "none", "svg.hashsalt": "biotune", "font.size": 9}
MARKERS = "osD^vP*Xph"
CONSTANT_COLOUR = "#555555"


# distinct colours in the method registry's order (adalora, fft, ia3, zero_shot, few_shot, lora, dora, qlora, ...):
# a method keeps its colour in every figure and every report; a user's own methods take the ones after
PALETTE = (
    "#bcbd22", "#1f77b4", "#17becf", "#9467bd", "#d62728", "#ff7f0e", "#8c564b", "#2ca02c", "#e377c2", "#393b79",
    "#637939", "#8c6d31", "#843c39", "#7b4173", "#e7ba52", "#9c9ede", "#ad494a", "#5254a3", "#8ca252", "#bd9e39",
)  # fmt: skip


def method_colour(method: str) -> str:
    """A method's colour: its place in the method registry (the same in every report)."""
    names = METHODS.names()
    i = names.index(method) if method in names else len(names) + sum(map(ord, method))
    return PALETTE[i % len(PALETTE)]


def model_markers(models) -> dict[str, str]:
    """One marker per model, in the order the study names them."""
    return {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(dict.fromkeys(models))}


def _svg(fig, titles: dict[str, str] | None = None) -> str:
    """The figure as SVG; `titles`: gid -> hover text, put as <title> into the group matplotlib writes for it."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    for gid, title in (titles or {}).items():
        tag = f"<title>{html.escape(title)}</title>"
        svg = re.sub(rf'(<g id="{re.escape(gid)}"[^>]*>)', lambda m, tag=tag: m.group(1) + tag, svg)
    return svg


def _legend(ax, methods, markers: dict[str, str], extra=()) -> None:
    """Colour = method, marker = model (and any extra handles), outside the axes on the right."""
    handles = [Line2D([], [], color=method_colour(m), marker="s", ls="", label=m) for m in dict.fromkeys(methods)]
    if len(markers) > 1 or extra:
        handles += [Line2D([], [], color="#333", marker=k, ls="", mfc="none", label=m) for m, k in markers.items()]
    handles += list(extra)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def score_against_cost(agg: pd.DataFrame, blurb: pd.DataFrame, per_seed: pd.DataFrame, score_name: str) -> dict:
    """The macro score of each model / method against each of its costs (trainable parameters, peak memory, total
    compute): mean over seeds with ± std bars, each seed's value as a small dot, the Pareto front dashed."""
    cost = (
        agg.groupby(["model", "method"], sort=False)
        .agg(
            trainable_params=("trainable_params", "mean"),
            peak_memory_mb=("peak_memory_mb", "max"),
            cost_seconds=("cost_seconds", "sum"),
        )
        .reset_index()
    )
    pts = blurb.merge(cost, on=["model", "method"])
    markers = model_markers(agg.model)
    plots = {}
    for col, label, log in (
        ("trainable_params", "trainable parameters (0: none trained)", True),
        ("peak_memory_mb", "peak memory (MB)", False),
        ("cost_seconds", "compute (s): training + its search + prediction, summed over datasets", False),
    ):
        with plt.rc_context(STYLE):
            fig, ax = plt.subplots(figsize=(6.2, 3.8))
            titles = {}
            for i, r in enumerate(pts.itertuples()):
                gid = f"pt-{col}-{i}"
                colour = method_colour(r.method)
                ax.errorbar(
                    r._asdict()[col],
                    r.blurb_mean,
                    yerr=r.blurb_std,
                    fmt=markers[r.model],
                    color=colour,
                    capsize=3,
                    ms=7,
                    gid=gid,
                )
                seeds = per_seed[(per_seed.model == r.model) & (per_seed.method == r.method)]
                ax.plot([r._asdict()[col]] * len(seeds), seeds.blurb, ".", color=colour, alpha=0.45, ms=4)
                titles[gid] = (
                    f"{r.model} / {r.method}: {r.blurb_mean:.2f} ± {r.blurb_std:.2f} over {r.seeds} seeds; "
                    f"{label.split(' (')[0]} {r._asdict()[col]:,.0f}"
                )
            xs, ys = pts[col].to_numpy(dtype=float), pts.blurb_mean.to_numpy(dtype=float)
            front = stats.pareto_front(list(zip(xs, ys)))
            ax.plot(xs[front], ys[front], "--", color="grey", lw=1)
            if log:
                ax.set_xscale("symlog", linthresh=1)
                ax.set_xlim(left=-0.3)
            ax.set_xlabel(label)
            ax.set_ylabel(score_name)
            ax.grid(alpha=0.3)
            _legend(
                ax,
                pts.method,
                markers,
                extra=[
                    Line2D([], [], color="grey", ls="--", label="Pareto front"),
                    Line2D([], [], color="#333", ls="", marker=".", alpha=0.45, label="one seed"),
                ],
            )
            plots[col] = _svg(fig, titles)
    return plots


def heat_maps(agg: pd.DataFrame, metric_of: dict[str, str], below_constant: set) -> dict[str, str]:
    """Per model: datasets x methods, each cell the mean test score over seeds ± its std, coloured on one 0–100
    scale with its colour bar; a cell marked ▽ where it is not significantly better than the dataset's best constant
    answer (`below_constant`: (dataset, model, method))."""
    maps = {}
    for model, g in agg.groupby("model", sort=False):
        mean = g.pivot_table(index="dataset", columns="method", values="score_mean", sort=False)
        std = g.pivot_table(index="dataset", columns="method", values="score_std", sort=False)
        with plt.rc_context(STYLE):
            fig, ax = plt.subplots(figsize=(2.6 + 1.15 * mean.shape[1], 1.1 + 0.55 * mean.shape[0]))
            im = ax.imshow(mean.to_numpy(dtype=float), cmap="viridis", aspect="auto", vmin=0, vmax=100)
            ax.set_xticks(range(mean.shape[1]), mean.columns, rotation=25, ha="right")
            ax.set_yticks(range(mean.shape[0]), [f"{d}\n({metric_of.get(d, '')})" for d in mean.index], fontsize=7)
            for i, d in enumerate(mean.index):
                for j, m in enumerate(mean.columns):
                    v = mean.iat[i, j]
                    if np.isnan(v):
                        continue
                    mark = " ▽" if (d, model, m) in below_constant else ""
                    ax.text(
                        j,
                        i,
                        f"{v:.1f}{mark}\n± {std.iat[i, j]:.1f}",
                        ha="center",
                        va="center",
                        fontsize=7.5,
                        color="white" if v < 60 else "black",
                    )
            bar = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
            bar.set_label("test score (×100)")
            ax.set_title(f"{model}: test score, mean ± std over seeds", fontsize=9)
            maps[model] = _svg(fig)
    return maps


def cost_per_dataset(agg: pd.DataFrame, intervals: pd.DataFrame, constants: dict, metric_of: dict) -> dict[str, str]:
    """Per dataset: each configuration's test score (95 % interval over seeds and examples) against its total
    compute (training + its search + prediction), the Pareto front, and the best constant answer as a line."""
    out = {}
    markers = model_markers(agg.model)
    for dataset, g in agg.groupby("dataset", sort=False):
        with plt.rc_context(STYLE):
            fig, ax = plt.subplots(figsize=(5.6, 3.4))
            titles = {}
            for i, r in enumerate(g.itertuples()):
                iv = intervals[(intervals.dataset == dataset) & (intervals.config == f"{r.model} / {r.method}")]
                lo, hi = (iv.ci_low.iloc[0], iv.ci_high.iloc[0]) if len(iv) else (r.score_mean, r.score_mean)
                lo, hi = max(lo, min(0.0, r.score_mean)), min(hi, max(100.0, r.score_mean))  # a score's range
                gid = f"cost-{dataset}-{i}"
                ax.errorbar(
                    r.cost_seconds,
                    r.score_mean,
                    yerr=[[r.score_mean - lo], [hi - r.score_mean]],
                    fmt=markers[r.model],
                    color=method_colour(r.method),
                    capsize=3,
                    ms=7,
                    gid=gid,
                )
                titles[gid] = (
                    f"{r.model} / {r.method}: {r.score_mean:.2f} [{lo:.2f}, {hi:.2f}]; {r.cost_seconds:,.0f} s "
                    f"(training {r.train_seconds:,.0f} + search {r.search_seconds:,.0f} + prediction "
                    f"{getattr(r, 'eval_seconds', 0):,.0f})"
                )
            xs, ys = g.cost_seconds.to_numpy(dtype=float), g.score_mean.to_numpy(dtype=float)
            front = stats.pareto_front(list(zip(xs, ys)))
            ax.plot(xs[front], ys[front], "--", color="grey", lw=1)
            extra = [Line2D([], [], color="grey", ls="--", label="Pareto front")]
            if dataset in constants:
                value, label = constants[dataset]
                ax.axhline(value, color=CONSTANT_COLOUR, ls=":", lw=1.2)
                extra.append(Line2D([], [], color=CONSTANT_COLOUR, ls=":", label=f"always {label!r}: {value:.1f}"))
            ax.set_xlabel("compute per run (s): training + its search + prediction")
            ax.set_ylabel(f"test {metric_of.get(dataset, 'score')}")
            ax.set_title(dataset, fontsize=9)
            ax.grid(alpha=0.3)
            _legend(ax, g.method, markers, extra=extra)
            out[dataset] = _svg(fig, titles)
    return out


def learning_curves(curves: pd.DataFrame, metric_of: dict, candidates: pd.DataFrame | None = None) -> dict[str, str]:
    """Per dataset: each trained configuration's training loss and dev score against the step, the mean over its
    seeds as a line and their range as a band (`curves`: dataset, model, method, seed, kind, step, value); with
    `candidates` (dataset, model, method, candidate, chosen, step, value), each search candidate's dev score,
    faint and dotted, its values on hover."""
    out = {}
    if curves.empty:
        return out
    markers = model_markers(curves.model)
    for dataset, g in curves.groupby("dataset", sort=False):
        titles: dict[str, str] = {}
        cands = candidates[candidates.dataset == dataset] if candidates is not None else pd.DataFrame()
        with plt.rc_context(STYLE):
            fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.2))
            for ax, kind, label in (
                (axes[0], "loss", "training loss"),
                (axes[1], "dev_score", f"dev {metric_of.get(dataset, 'score')}"),
            ):
                for (model, method), c in g[g.kind == kind].groupby(["model", "method"], sort=False):
                    by_step = c.groupby("step")["value"]
                    steps = np.array(sorted(c.step.unique()))
                    mean, lo, hi = by_step.mean()[steps], by_step.min()[steps], by_step.max()[steps]
                    colour = method_colour(method)
                    ls = "-" if list(markers).index(model) == 0 else "--"
                    ax.plot(steps, mean, ls, color=colour, lw=1.4, marker=markers[model], ms=3)
                    ax.fill_between(steps, lo, hi, color=colour, alpha=0.18, lw=0)
                ax.set_xlabel("step")
                ax.set_ylabel(label)
                ax.grid(alpha=0.3)
            for i, ((model, method, name, chosen), c) in enumerate(
                cands.groupby(["model", "method", "candidate", "chosen"], sort=False) if len(cands) else []
            ):
                c = c.sort_values("step")
                gid = f"candidate-{dataset}-{i}"
                axes[1].plot(c.step, c.value, ":", color=method_colour(method), lw=1.0, alpha=0.5, gid=gid)
                titles[gid] = (
                    f"search candidate {model} / {method} [{name}]{' (chosen)' if chosen else ''}: dev "
                    f"{c.value.iloc[-1]:.2f} at step {int(c.step.iloc[-1])}"
                )
            extra = [Line2D([], [], color="#999", lw=6, alpha=0.3, label="range over seeds")]
            if titles:
                extra.append(Line2D([], [], color="#777", lw=1.0, ls=":", label="search candidate"))
            _legend(axes[1], g.method, {m: k for m, k in markers.items() if m in set(g.model)}, extra=extra)
            fig.suptitle(f"{dataset}: mean over seeds (line), range (band)", fontsize=9)
            out[dataset] = _svg(fig, titles)
    return out
