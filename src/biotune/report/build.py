"""Assemble a study's report from its results store: `build_report(store_url, study, out_dir)` computes it
(compute.py), lays out its sections (sections.py) and writes report.html and report.md (render.py)."""

from __future__ import annotations

from pathlib import Path

from biotune.io import atomic_write_text

from .compute import compute_report
from .render import render_html, render_markdown
from .sections import sections


def build_report(
    store_url: str,
    study: str,
    out_dir: str | Path,
    memory_mb=(2048, 8192, float("inf")),
    seconds=(300, 3600, float("inf")),
    samples: int = 10000,
    identities: dict | None = None,
    search: list[dict] | None = None,
    datasets: list[str] | None = None,
    data_dir: str | None = None,
) -> dict:
    """The report of a study's final cells (`identities`: grid key -> identity hash; `search`: the candidates
    of its searches, study/search.py `summary`; `datasets`: the study's, finished or not; `data_dir`: its data
    location, where a dataset left out may lack a split), written as report.html and report.md. It leads with the answer
    (per dataset the configuration chosen on dev, its test score with interval, what it is better or worse
    than), then the heat maps and Pareto plots and the budget table; the complete tables follow, folded."""
    d = compute_report(store_url, study, memory_mb, seconds, samples, identities, search, datasets, data_dir)
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
