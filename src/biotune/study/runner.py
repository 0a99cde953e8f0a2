"""Run a study's cells, skipping the finished ones, each in its own process (its own peak memory, and a crash
stays in its cell); results go to the store as each cell ends."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import time
import traceback
from pathlib import Path

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from biotune.errors import BiotuneError
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


_CONTEXT = None


def _context():
    """A fork server that has imported the heavy libraries once; each cell is a fresh child forked from it
    (own peak memory, a crash stays in its cell). Where fork servers don't exist (Windows), spawn."""
    global _CONTEXT
    if _CONTEXT is None:
        try:
            _CONTEXT = mp.get_context("forkserver")
            _CONTEXT.set_forkserver_preload(["biotune.study._preload"])
        except ValueError:
            _CONTEXT = mp.get_context("spawn")
    return _CONTEXT


def _cell_process(config: dict, log_path: str, conn) -> None:
    """In the cell's process: output to the cell's log file, run the experiment, send back how it ended."""
    with open(log_path, "a", buffering=1) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            from biotune.config import ExperimentConfig
            from biotune.train import run_experiment

            run_experiment(ExperimentConfig(**config), progress=False)
            conn.send(None)
        except BaseException as e:  # noqa: BLE001  (reported to the study, which records the failure)
            traceback.print_exc()
            first = (str(e).strip().splitlines() or [""])[0]
            conn.send(first if isinstance(e, BiotuneError) else f"{type(e).__name__}: {first}")


def run_cell(cell: Cell) -> dict:
    """Run one cell in its own process; returns its metrics.json (resumes a half-done cell by itself).
    The cell's output goes to <cell>/run.log."""
    out = Path(cell.experiment.output_dir)
    atomic_write_text(out / "experiment.yaml", yaml.safe_dump(cell.experiment.model_dump(), sort_keys=False))
    log = out / "run.log"
    ctx = _context()
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_cell_process, args=(cell.experiment.model_dump(), str(log), send))
    proc.start()
    send.close()
    try:
        error = receive.recv()
    except EOFError:  # the process died without a word: killed (out of memory?) or crashed
        error = "no result"
    proc.join()
    if error is not None or proc.exitcode != 0:
        why = error if error not in (None, "no result") else (
            f"killed by signal {-proc.exitcode}" if (proc.exitcode or 0) < 0 else f"exit code {proc.exitcode}")
        raise RuntimeError(f"{why} (log: {log})")
    return json.loads((out / "metrics.json").read_text())


def run_study(study: StudyConfig, cells: list[Cell], console: Console | None = None, executor: str = "local",
              **executor_options) -> dict:
    """Run the cells not yet done. `local` (default): one after another on this machine; `ray`: fanned out over
    a Ray cluster (see ray_executor.py), its workers claiming cells in and writing results to the same store."""
    console = console or Console(stderr=True)
    store = Store(study.store_url)
    rev = git_revision()
    states = cell_states(store, study.name, cells)
    todo = [c for c in cells if states[c.cell_id][0] != "done"]
    stale = [c for c in todo if states[c.cell_id][0] == "stale"]
    console.print(f"study {study.name}: {len(cells)} cells, {len(cells) - len(todo)} already done, "
                  f"{len(stale)} stale (rerun), {len(todo) - len(stale)} new; store {study.store_url}, "
                  f"executor {executor}")
    for c in stale:
        console.print(f"stale {c.cell_id}: {states[c.cell_id][1]}")
    tally = {"cells": len(cells), "ran": 0, "failed": 0, "skipped": 0, "already_done": len(cells) - len(todo)}
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("cells", total=len(cells), completed=len(cells) - len(todo))

        def report(cell: Cell, status: str, detail) -> None:
            """One cell ended: `done` (detail: its summary and seconds), `failed` (the error) or `skipped`."""
            if status == "done":
                summary, seconds = detail
                console.print(f"done {cell.cell_id}: {summary['metrics']['score']:.2f} ({seconds:.0f} s)")
                tally["ran"] += 1
            elif status == "failed":
                console.print(f"[red]failed[/red] {cell.cell_id}: {detail}")
                tally["failed"] += 1
            else:
                tally["skipped"] += 1  # another worker has it, or finished it meanwhile
            progress.advance(bar)

        if executor == "local":
            for cell in todo:
                progress.update(bar, description=cell.cell_id)
                report(cell, *run_claimed(study.name, store, cell, rev))
        elif executor == "ray":
            from .ray_executor import run_on_ray

            run_on_ray(study, todo, rev, report, lambda text: progress.update(bar, description=text),
                       **executor_options)
        else:
            raise BiotuneError(f"unknown executor {executor!r}; valid: local, ray")
    return tally


def run_claimed(study_name: str, store: Store, cell: Cell, rev: str | None) -> tuple[str, object]:
    """Claim a cell in the store, run it, record how it ended there. Returns (status, detail) as `report` takes."""
    if not store.claim(study_name, cell.key, cell.identity_hash):
        return "skipped", None
    started = time.time()
    try:
        summary = run_cell(cell)
    except Exception as e:  # noqa: BLE001  (a failed cell is recorded; the study goes on)
        store.fail(study_name, cell.key, cell.identity_hash, str(e))
        return "failed", str(e)
    store.finish(study_name, cell.key, cell.identity_hash, summary, cell.identity, rev, cell.experiment.output_dir)
    return "done", (summary, time.time() - started)


def existing_store(url: str) -> Store | None:
    """The store at `url`, or None for an SQLite file that does not exist yet (a dry run creates nothing)."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None
    return Store(url)


def cell_states(store: Store | None, study_name: str, cells: list[Cell]) -> dict[str, tuple[str, str]]:
    """cell_id -> (state, why): 'done' (a finished row of this identity), 'stale' (finished rows of other
    identities only; `why` names what changed since the newest) or 'new'. `store` None: nothing run yet."""
    from biotune.identity import describe

    done = store.done(study_name) if store is not None else {}
    out = {}
    for c in cells:
        rows = done.get(c.key, [])
        if any(r["config_hash"] == c.identity_hash for r in rows):
            out[c.cell_id] = ("done", "")
        elif rows:
            old = json.loads(rows[0]["config"] or "{}")
            why = (describe(old, c.identity) if "scoring_version" in old
                   else "its result was written by an earlier biotune, before identities")
            out[c.cell_id] = ("stale", why)
        else:
            out[c.cell_id] = ("new", "")
    return out
