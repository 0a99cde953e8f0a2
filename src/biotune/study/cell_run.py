"""Running one cell of a study: in a process of its own (forked from a server that has the heavy libraries
imported), claimed in the results store first and its end recorded there — what every executor does with a cell
(the local one in runner.py, Ray's workers in ray_executor.py)."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
from pathlib import Path

import yaml

from biotune.errors import BiotuneError
from biotune.io import atomic_write_text
from biotune.summary import RunSummary

from .grid import Cell
from .store import Store, process_alive

_CONTEXT = None


def process_context():
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


def _cell_process(
    config: dict, log_path: str, conn, environment: dict | None = None, study_pid: int | None = None
) -> None:
    """In the cell's process: the study's environment as it is now (the fork server keeps the one it started
    with), output to the cell's log file, a watch on the study's process, run the experiment, send back how it
    ended."""
    if environment is not None:
        os.environ.clear()
        os.environ.update(environment)
    with open(log_path, "a", buffering=1) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        if study_pid is not None:
            _die_with(study_pid)
        try:
            from biotune.config import ExperimentConfig
            from biotune.train import run_experiment

            run_experiment(ExperimentConfig(**config), progress=False)
            conn.send(None)
        except BaseException as e:  # noqa: BLE001  (reported to the study, which records the failure)
            traceback.print_exc()
            first = (str(e).strip().splitlines() or [""])[0]
            conn.send(first if isinstance(e, BiotuneError) else f"{type(e).__name__}: {first}")


def _die_with(pid: int, every: float = 0.5) -> None:
    """End this process as soon as process `pid` (the study that started this cell; under Ray, the worker) has
    ended, however it ended: kill -9 of a study must not leave its cell training on, where a rerun would claim the
    cell again. The cell is killed where it stands, as kill -9 of the whole process group would: it resumes from
    its last complete checkpoint. (The cell is the fork server's child, so the parent-death signal would watch the
    wrong process; a thread polling the study's pid watches the right one.)"""

    def watch():
        while process_alive(pid):
            time.sleep(every)
        print(f"the study's process {pid} has ended: this cell stops with it", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="biotune-die-with-study", daemon=True).start()


def run_cell(cell: Cell) -> RunSummary | dict:
    """Run one cell in its own process; returns its metrics.json (resumes a half-done cell by itself), or where
    the cell stopped at a search's rung (`training.pause_at`), what its paused.json says. The cell's output goes
    to <cell>/run.log."""
    out = Path(cell.experiment.output_dir)
    atomic_write_text(out / "experiment.yaml", yaml.safe_dump(cell.experiment.model_dump(), sort_keys=False))
    log = out / "run.log"
    ctx = process_context()
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_cell_process, args=(cell.experiment.model_dump(), str(log), send, dict(os.environ), os.getpid())
    )
    proc.start()
    send.close()
    try:
        error = receive.recv()
    except EOFError:  # the process died without a word: killed (out of memory?) or crashed
        error = "no result"
    except BaseException:  # Ctrl-C or a stop signal (stop_signals): the cell stops as well
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal (which sends it to the cell too)
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()  # killed where it stands: it resumes from its last complete checkpoint
            proc.join()
        raise
    proc.join()
    if error is not None or proc.exitcode != 0:
        why = (
            error
            if error not in (None, "no result")
            else (f"killed by signal {-proc.exitcode}" if (proc.exitcode or 0) < 0 else f"exit code {proc.exitcode}")
        )
        raise RuntimeError(f"{why} (log: {log})")
    if cell.experiment.training.pause_at is not None:
        from biotune.train import paused_at  # None once the run has finished

        reached = paused_at(out)
        if reached is not None:
            return reached
    return RunSummary.read(out)


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C during a study: the cell that was running (its label) is recorded as interrupted."""


def run_claimed(
    study_name: str, store: Store, cell: Cell, rev: str | None, reclaim: bool = False
) -> tuple[str, object]:
    """Claim a cell in the store, run it, record how it ended there. Returns (status, detail) as `report` takes."""
    if not store.claim(study_name, cell.key, cell.identity_hash, reclaim=reclaim):
        return "skipped", None
    started = time.time()
    try:
        summary = run_cell(cell)
        if isinstance(summary, dict):  # stopped at a search's rung: claimable again to go on from there
            store.pause(study_name, cell.key, cell.identity_hash, summary)
            return "paused", (summary, time.time() - started)
    except KeyboardInterrupt:  # stopped by the user: recorded as such (not failed), resumed by the next run
        store.interrupt(study_name, cell.key, cell.identity_hash)
        raise StudyInterrupted(cell.label) from None
    except Exception as e:  # noqa: BLE001  (a failed cell is recorded; the study goes on)
        store.fail(study_name, cell.key, cell.identity_hash, str(e))
        return "failed", str(e)
    store.finish(study_name, cell.key, cell.identity_hash, summary, cell.identity, rev, cell.experiment.output_dir)
    return "done", (summary, time.time() - started)
