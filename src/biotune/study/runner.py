"""Run a study's cells, skipping the finished ones, each as its own `biotune run` process (its own peak memory,
and a crash stays in its cell); results go to the store as each cell ends."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from biotune.io import atomic_write_text

from .grid import Cell, StudyConfig
from .store import Store


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_cell(cell: Cell) -> dict:
    """Run one cell in a subprocess; returns its metrics.json (resumes a half-done cell by itself)."""
    out = Path(cell.experiment.output_dir)
    cfg_path = out / "experiment.yaml"
    atomic_write_text(cfg_path, yaml.safe_dump(cell.experiment.model_dump(), sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "biotune", "run", str(cfg_path), "--no-progress"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
        raise RuntimeError(lines[-1] if lines else f"exit code {proc.returncode}")
    return json.loads((out / "metrics.json").read_text())


def run_study(study: StudyConfig, cells: list[Cell], console: Console | None = None) -> dict:
    console = console or Console(stderr=True)
    store = Store(study.store_url)
    rev = git_revision()
    done = store.done_keys(study.name)
    todo = [c for c in cells if c.key not in done]
    console.print(f"study {study.name}: {len(cells)} cells, {len(cells) - len(todo)} already done, store {study.store_url}")
    ran = failed = skipped = 0
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("cells", total=len(cells), completed=len(cells) - len(todo))
        for cell in todo:
            progress.update(bar, description=f"{cell.cell_id}")
            if not store.claim(study.name, cell.key):
                skipped += 1  # another worker has it, or finished it meanwhile
                progress.advance(bar)
                continue
            started = time.time()
            try:
                summary = run_cell(cell)
            except Exception as e:  # noqa: BLE001  (a failed cell is recorded; the study goes on)
                store.fail(study.name, cell.key, str(e))
                console.print(f"[red]failed[/red] {cell.cell_id}: {e}")
                failed += 1
            else:
                store.finish(study.name, cell.key, summary, cell.experiment.model_dump(), cell.config_hash, rev)
                console.print(f"done {cell.cell_id}: {summary['metrics']['score']:.2f} ({time.time() - started:.0f} s)")
                ran += 1
            progress.advance(bar)
    return {"cells": len(cells), "ran": ran, "failed": failed, "skipped": skipped,
            "already_done": len(cells) - len(todo)}
