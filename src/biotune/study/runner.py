"""Run a study's cells, skipping the finished ones, each in its own process (its own peak memory, and a crash
stays in its cell); results go to the store as each cell ends."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from biotune.errors import BiotuneError
from biotune.identity import describe
from biotune.plan.machine import estimates_on
from biotune.progress import duration, plain_line
from biotune.resources import dir_size

from .adopt import adopt, finished_runs
from .eta import Planned, TimeLeft, work_left
from .executors import EXECUTORS
from .grid import Cell, StudyConfig
from .halving import choice, run_halving, starting_candidates
from .search import candidates_on_reported_seeds, final_cells, searched_on_other_seeds
from .store import Store, holder_state, row_key


def git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_study(
    study: StudyConfig,
    cells: list[Cell],
    console: Console | None = None,
    executor: str = "local",
    reclaim: bool = False,
    progress: bool = True,
    **executor_options,
) -> dict:
    """Run the cells not yet done. `executor` (study/executors.py): `local` (default), one after another on this
    machine; `ray`, fanned out over a Ray cluster, its workers claiming cells in and writing results to the same
    store. `reclaim`: also run the cells that workers of other machines claimed and did not finish (Store.claim).

    With a `search:` block, two phases: the cells without a search and every search candidate (the search seed,
    scored on dev; an adaptive search rung by rung), then the chosen candidate of each search anew on every
    reported seed. Returns the tally, with `final_cells` (what the report shows) and `pending` (searches still
    without a winner: a candidate failed). `progress`: a live bar; else (a log file) a plain line as each cell
    starts, with the count done and the time left."""
    console = console or Console(stderr=True)
    store = Store(study.store_url)
    rev = git_revision()
    runner = EXECUTORS.get(executor)(study, store, rev, reclaim, **executor_options)
    todo, tally = _plan(study, cells, store, console, executor)
    finished = finished_runs(study.adopt)
    left = _time_left(study, store, todo, console, cells, executor == "local") if todo else None
    with runner.session(), _Progress(console, tally, tally["already_done"], progress, left) as shown:

        def run(batch: list[Cell]) -> None:
            batch = adopt(study, store, batch, finished, rev, shown.adopted) if finished else batch
            with stop_signals():
                runner.run(batch, shown.report, shown.describe)

        finals, pending = [], []
        for part, part_todo, groups in _parts(study, cells, todo):
            _run_searched_and_fixed(study, groups, store, part_todo, run, console)
            f, p = _run_chosen(study, groups, part, store, run, shown, tally, console)
            finals, pending = finals + f, pending + p
    tally["final_cells"] = finals
    tally["pending"] = [g.key for g in pending]
    _say_after(study, store, tally, console)
    return tally


def _time_left(
    study: StudyConfig, store: Store, todo: list[Cell], console: Console, cells: list[Cell], here: bool
) -> TimeLeft | None:
    """The plan of the work left on this machine, said in one line; None where it cannot be made (said) or is
    not wanted (BIOTUNE_ESTIMATE=0). `here`: the cells run on this machine, so each teaches later plans here."""
    if not estimates_on():
        return None
    try:
        planned = Planned()
        left = work_left(study, store, todo, planned)
    except Exception as e:  # noqa: BLE001  (an estimate never stops the study)
        console.print(f"plan: none ({type(e).__name__}: {escape((str(e).strip().splitlines() or [''])[0])})")
        return None
    console.print(f"plan on {escape(planned.acc.name)}: about {duration(left)} of cells to run", soft_wrap=True)
    time_left = TimeLeft(study, left, planned, learn=here)
    try:
        time_left.already([c for c in cells if c not in todo], store)
    except Exception:  # noqa: BLE001  (an estimate never stops the study; the plan alone is said then)
        pass
    return time_left


def _plan(study: StudyConfig, cells: list[Cell], store: Store, console: Console, executor: str):
    """What is left to run (the cells not done), said in one line with what is stale and why; the tally (its cells:
    the study's results, an adaptive search's candidates left out: they end paused, never done). A reported seed
    an earlier search ran its candidates on is refused before anything is said or run (search.py)."""
    refused, warnings = seed_conflicts(study, store)
    if refused:
        raise BiotuneError(refused[0])
    states = cell_states(store, study.name, cells)
    todo = [c for c, (state, _) in zip(cells, states) if state != "done"]
    uncounted = starting_candidates(study.groups)  # search runs, not cells the study counts
    counted = [state for c, (state, _) in zip(cells, states) if c.identity_hash not in uncounted]
    later = sum(len(g.seeds) for g in study.groups)  # each search's chosen candidate, anew on every seed
    n = Counter(counted)
    done, stale, stopped, claimed = n["done"], n["stale"], n["interrupted"], n["running"]
    searches = (
        f" ({later} of them the chosen values of {len(study.groups)} searches on dev"
        + (f", whose {len(uncounted)} starting candidates are search runs, not cells" if uncounted else "")
        + ")"
        if study.groups
        else ""
    )
    console.print(
        f"study {study.name}: {len(counted) + later} cells{searches}, {done} already done, {stale} stale (rerun), "
        + (f"{stopped} interrupted (resumed), " if stopped else "")
        + (f"{claimed} claimed by a worker, " if claimed else "")
        + f"{len(counted) - done - stale - stopped - claimed} new; store {study.store_url}, executor {executor}"
    )
    for c, (state, why) in zip(cells, states):
        if state == "stale":
            console.print(f"stale {escape(c.label)}: {escape(why)}")
    for line in warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(line)}", soft_wrap=True)
    tally = {
        "cells": len(counted) + later,
        "ran": 0,
        "adopted": 0,
        "failed": 0,
        "skipped": 0,
        "already_done": done,
    }
    return todo, tally


class _Progress:
    """The study's progress and its tally: each cell's end said in one line (`report`), the running cell's label
    shown beside a live bar (`describe`), or without one (`shown` false: a log) said in a plain line with the
    cells done, the rate and the time left (progress.plain_line)."""

    def __init__(self, console: Console, tally: dict, done: int, shown: bool = True, left: TimeLeft | None = None):
        self.console, self.tally, self.left = console, tally, left
        self.done, self.began_with, self.began = done, done, time.perf_counter()
        self.progress = None
        if shown:
            columns = [
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            ]
            self.progress = Progress(*columns, console=console, transient=False)
            self.bar = self.progress.add_task("cells", total=tally["cells"], completed=done)

    def __enter__(self):
        if self.progress is not None:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc) if self.progress is not None else None

    def _advance(self, n: int = 1) -> None:
        self.done += n
        if self.progress is not None:
            self.progress.update(self.bar, completed=self.done)

    def describe(self, text: str) -> None:
        if self.progress is not None:
            eta = f" · {self.left.text().split(' (')[0]}" if self.left is not None and self.left.ran else ""
            self.progress.update(self.bar, description=escape(text + eta))
            return
        total = self.tally["cells"]
        if self.left is not None:
            head = f"study: {self.done:,}/{total:,} cells ({100 * self.done / max(total, 1):.0f} %), {self.left.text()}"
        else:  # no plan: the rate of this run's cells (those done before it took no time here)
            head = plain_line(
                "study",
                self.done - self.began_with,
                total - self.began_with,
                "cells",
                time.perf_counter() - self.began,
            )
        self.console.print(escape(f"{head}; now {text}"), soft_wrap=True)

    def _ended(self, cell: Cell, status: str, detail) -> None:
        if self.left is not None:
            self.left.ended(cell, status, detail)

    def adopted(self, line: str, cell: Cell, summary) -> None:
        """A cell took a finished run's result (study/adopt.py): no longer work left, and its run's recorded
        compute corrects the plan as a cell run here would."""
        self.console.print(escape(line))
        self._ended(cell, "done", (summary, 0.0))
        self.tally["adopted"] += 1
        self._advance()

    def skip(self, n: int) -> None:
        """`n` cells found done already (a search's chosen candidate run before)."""
        self._advance(n)

    def report(self, cell: Cell, status: str, detail) -> None:
        """One cell ended: `done` (detail: its summary and seconds), `paused` at a search's rung, `failed` (the
        error) or `skipped` (another worker has it, or finished it meanwhile)."""
        say = self.console.print
        self._ended(cell, status, detail)
        if status == "paused":
            info, seconds = detail
            say(
                f"paused {escape(cell.label)} at step {info.get('step')} of {info.get('total_steps')}: dev "
                f"{info.get('dev_score')} ({seconds:.0f} s)"
            )
            return
        if status == "done":
            summary, seconds = detail
            dev = summary.dev_score
            say(
                f"done {escape(cell.label)}: {summary.score:.2f}"
                + (f" (dev {dev:.2f})" if dev is not None else "")
                + f" ({seconds:.0f} s)"
            )
            self.tally["ran"] += 1
        elif status == "failed":
            say(f"[red]failed[/red] {escape(cell.label)}: {escape(str(detail))}")
            self.tally["failed"] += 1
        else:
            self.tally["skipped"] += 1
        if cell.experiment.training.pause_at is None:  # else a search's candidate at a rung: not a counted cell
            self._advance()


def _parts(study: StudyConfig, cells: list[Cell], todo: list[Cell]):
    """What runs together, in turn: each dataset's cells, todo and searches (study.order: dataset), or the whole
    grid at once (phase)."""
    if study.order == "phase":
        yield cells, todo, study.groups
        return
    for dataset in dict.fromkeys(c.dataset for c in cells):
        yield (
            [c for c in cells if c.dataset == dataset],
            [c for c in todo if c.dataset == dataset],
            [g for g in study.groups if g.key[0] == dataset],
        )


def _run_searched_and_fixed(study: StudyConfig, groups: list, store: Store, todo: list[Cell], run: Callable, console):
    """The first phase: the cells without a search and the exhaustive searches' candidates, then the adaptive
    searches rung by rung (study/halving.py)."""
    adaptive = [g for g in groups if g.strategy == "halving"]
    searched = starting_candidates(adaptive)
    run([c for c in todo if c.identity_hash not in searched])
    if adaptive:
        run_halving(study, store, adaptive, run, lambda text: console.print(escape(text)))


def _run_chosen(
    study: StudyConfig, groups: list, cells: list[Cell], store: Store, run: Callable, shown: _Progress, tally, console
):
    """The second phase: each finished search's chosen candidate anew on every reported seed. Returns the final
    cells and the searches still without a winner."""
    fixed = [c for c in cells if c.search is None]
    done = store.done(study.name)
    finals, pending = final_cells(fixed, groups, done, lambda g: choice(store, study.name, g))
    for g in groups:
        if g not in pending:
            best = next(c for c in finals if c.search and c.search.group == g.key)
            console.print(f"search {'/'.join(g.key)}: chose {best.search.label()} (best dev score)")
    chosen_later = [c for c in finals if c.search is not None and c.search.final]
    batch = [c for c in chosen_later if not any(r["config_hash"] == c.identity_hash for r in done.get(c.key, []))]
    tally["already_done"] += len(chosen_later) - len(batch)
    shown.skip(len(chosen_later) - len(batch))
    run(batch)
    return finals, pending


def _say_after(study: StudyConfig, store: Store, tally: dict, console: Console) -> None:
    """The study's disk use, searches without a winner, cells left to other machines' workers."""
    tally["disk_bytes"] = dir_size(study.out) if study.out.is_dir() else 0
    if tally["pending"]:
        console.print(
            "[red]searches without a winner[/red] (a candidate did not finish): "
            + ", ".join("/".join(k) for k in tally["pending"])
        )
    held = store.held_elsewhere(study.name)
    tally["held_elsewhere"] = len(held)
    if held:
        workers = sorted({r["worker"] for r in held})
        console.print(
            f"{len(held)} cells claimed by workers of other machines ({', '.join(workers[:3])}"
            + (", ..." if len(workers) > 3 else "")
            + f"; the oldest since {held[0]['started_at']}) are "
            "left to them: if none of them runs this study any more, rerun with --reclaim"
        )


def final_study_cells(study: StudyConfig, cells: list[Cell]) -> list[Cell]:
    """The cells a report shows: those without a search, and each finished search's chosen candidate on every
    seed (as the store has them now)."""

    store = existing_store(study.store_url)
    done = store.done(study.name) if store is not None else {}
    return final_cells(
        [c for c in cells if c.search is None], study.groups, done, lambda g: choice(store, study.name, g)
    )[0]


@contextlib.contextmanager
def stop_signals():
    """While a study runs here, Ctrl-C (SIGINT) and SIGTERM (`kill`, a batch scheduler's preemption) both stop it
    as Ctrl-C does: the running cell is recorded as interrupted and resumes from its last checkpoint on the next
    run. SIGINT is caught even where the study was started with it ignored (a shell script's background job,
    `biotune study ... &`, inherits SIGINT ignored), and so are the cells, which inherit the handling."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def seed_conflicts(study: StudyConfig, store: Store) -> tuple[list[str], list[str]]:
    """What the store says of the study's search seeds, for a run and its dry run alike: (the lines a run refuses
    on: a reported seed an earlier search ran its candidates on; the warnings: an earlier search on another seed)."""
    rows = store.rows(study.name)
    return (
        candidates_on_reported_seeds(study.groups, rows, store.rung_rows(study.name)),
        searched_on_other_seeds(study.groups, rows),
    )


def existing_store(url: str) -> Store | None:
    """The store at `url`, or None for an SQLite file that does not exist yet (a dry run creates nothing)."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None
    return Store(url)


def cell_states(store: Store | None, study_name: str, cells: list[Cell]) -> list[tuple[str, str]]:
    """(state, why) of each cell, in order: 'done' (a finished row of its identity), 'interrupted' (stopped by the
    user while it ran, or its worker on this machine is gone), 'running' (claimed by a live worker here or by one
    of another machine), 'stale' (finished rows of its grid key under identities no cell of the grid has any more:
    the result it replaces; `why` names what changed since the newest of them) or 'new'. `store` None: nothing
    run yet."""

    done = store.done(study_name) if store is not None else {}
    stopped = (
        {(row_key(r), r["config_hash"]) for r in store.rows(study_name, "interrupted")} if store is not None else set()
    )
    paused = {(row_key(r), r["config_hash"]) for r in store.rows(study_name, "paused")} if store is not None else set()
    running = (
        {(row_key(r), r["config_hash"]): r for r in store.rows(study_name, "running")} if store is not None else {}
    )
    current = {(c.key, c.identity_hash) for c in cells}
    out = []
    for c in cells:
        rows = done.get(c.key, [])
        replaced = [r for r in rows if (c.key, r["config_hash"]) not in current]
        if any(r["config_hash"] == c.identity_hash for r in rows):
            out.append(("done", ""))
        elif (c.key, c.identity_hash) in paused:
            out.append(("paused", "stopped at a rung of its adaptive search; goes on from there if chosen to"))
        elif (c.key, c.identity_hash) in stopped:
            out.append(("interrupted", "stopped by the user; resumes from its last checkpoint"))
        elif (c.key, c.identity_hash) in running:
            r = running[(c.key, c.identity_hash)]
            holder = holder_state(r["worker"])
            if holder == "gone":
                out.append(
                    (
                        "interrupted",
                        f"its worker {r['worker']} ended without finishing it (killed?); "
                        "resumes from its last checkpoint",
                    )
                )
            else:
                out.append(
                    (
                        "running",
                        f"claimed by {r['worker']} since {r['started_at']}"
                        + (
                            " (a worker of another machine: if it no longer runs, --reclaim runs the cell here)"
                            if holder == "unknown"
                            else ""
                        ),
                    )
                )
        elif replaced:
            old = json.loads(replaced[0]["config"] or "{}")
            why = (
                describe(old, c.identity)
                if "scoring_version" in old
                else "its result was written by an earlier biotune, before identities"
            )
            out.append(("stale", why))
        else:
            out.append(("new", ""))
    return out
