"""A study's time left: the plan of the work still to do on this machine (biotune.plan), corrected by how the
cells run so far compare with their plan. An adaptive search counts what halving will run: every candidate to
the first rung, the share `keep` of them to each next one."""

from __future__ import annotations

import json
from collections.abc import Callable

from biotune.methods import METHODS
from biotune.plan import plan_experiment
from biotune.plan.machine import this_machine
from biotune.plan.planner import Plan, learn, measured_parts
from biotune.progress import duration

from .grid import Cell, StudyConfig
from .halving import candidates, rung_cell, starting_candidates
from .search import rung_sizes, rung_steps
from .store import Store, group_key, row_key


class Planned:
    """Planned seconds of a cell at its full budget on this machine, by identity and whether it stops at a search's
    rung (then it predicts nothing) (None: it cannot be planned)."""

    def __init__(self):
        self.acc = this_machine()
        self.known: dict[tuple[str, bool], Plan | None] = {}

    def plan(self, cell: Cell) -> Plan | None:
        key = (cell.identity_hash, cell.experiment.training.pause_at is not None)
        if key not in self.known:
            try:
                plan = plan_experiment(cell.experiment, self.acc, suggest=False)
                self.known[key] = None if plan.error else plan
            except Exception:  # noqa: BLE001  (an estimate never stops the study)
                self.known[key] = None
        return self.known[key]

    def __call__(self, cell: Cell) -> float | None:
        plan = self.plan(cell)
        return None if plan is None else plan.seconds


def share(study: StudyConfig, cell: Cell) -> float:
    """The part of its full budget one run of `cell` trains: a rung's step for an adaptive search's candidate
    (from the rung before to this one), else all of it."""
    if cell.search is None or cell.search.final or study.search is None or study.search.strategy != "halving":
        return 1.0
    rungs = study.search.rungs
    return dict(zip(rungs, rung_steps(rungs)))[cell.experiment.training.pause_at or 1.0]


def work_left(study: StudyConfig, store: Store, todo: list[Cell], planned: Callable[[Cell], float | None]) -> float:
    """Planned seconds of what the study still has to run: the cells not done, each search's final cells not
    done, and for an adaptive search the rungs its candidates have not reached (as many as halving keeps)."""
    adaptive = {g.key: g for g in study.groups if g.strategy == "halving"}
    in_halving = starting_candidates(study.groups)
    left = sum(planned(c) or 0.0 for c in todo if c.identity_hash not in in_halving)
    done = {row_key(r) for r in store.rows(study.name) if r["status"] == "done"}
    for g in study.groups:
        first = g.candidates[0] if g.candidates else None
        if first is None:
            continue
        left += sum(planned(first) or 0.0 for s in g.seeds if (*g.key, s) not in done)
    rung_rows = store.rung_rows(study.name) if adaptive else []
    for key, g in adaptive.items():
        rows = [r for r in rung_rows if group_key(r) == key and r["decision"] != "note"]
        if any(r["decision"] == "chosen" for r in rows):
            continue
        cands = candidates(g, rows)
        reached = {(r["config_hash"], r["rung"]) for r in rows if r["decision"] != "added"}
        sizes = rung_sizes(len(cands), study.search.rungs, study.search.keep)
        for i, (runs, step) in enumerate(zip(sizes, rung_steps(study.search.rungs))):
            runs -= sum(1 for c in cands if (c.identity_hash, i) in reached)
            left += max(0, runs) * (planned(rung_cell(cands[0], 1.0)) or 0.0) * step
    return left


class TimeLeft:
    """The study's time left as cells end: the planned work left, times how long the cells run so far took
    against their plan. Where the cells run on this machine (`learn`), each one that ends also teaches later plans
    here its time (biotune.plan.calibration)."""

    def __init__(self, study: StudyConfig, left: float, planned: Planned, learn: bool = False):
        self.study, self.left, self.planned, self.learn = study, left, planned, learn
        self.ran_planned = self.ran_took = 0.0
        self.ran = 0

    def already(self, cells: list[Cell], store: Store) -> None:
        """The correction starts from what an earlier invocation finished (recorded compute against plan): the cells
        of `cells`, and each search's final cells (its chosen candidate anew on a reported seed), planned as
        work_left plans them (as its first candidate), so a resumed study's first line is corrected too."""
        rows = store.rows(self.study.name, "done")
        by_identity, by_key = {r["config_hash"]: r for r in rows}, {row_key(r): r for r in rows}
        finished = [(cell, by_identity.get(cell.identity_hash)) for cell in cells]
        finished += [
            (g.candidates[0], by_key.get((*g.key, s))) for g in self.study.groups if g.candidates for s in g.seeds
        ]
        for planned_as, row in finished:
            if row is not None and (full := self.planned(planned_as)):
                self._count(full, _recorded(planned_as, json.loads(row["resources"] or "{}")))

    def ended(self, cell: Cell, status: str, detail) -> None:
        """A cell ended, as the executor reports it (runner._Progress.report). The plan's correction compares
        the compute the cell's run records for its whole trajectory (a resumed or already finished run included)
        with the plan of that trajectory; a cell that failed or was skipped only leaves the work left."""
        full = self.planned(cell) or 0.0
        self.left = max(0.0, self.left - full * share(self.study, cell))
        if full <= 0 or status not in ("paused", "done"):
            return
        if status == "paused":  # detail: (paused.json's info, seconds); trained to its rung
            fraction = cell.experiment.training.pause_at or 1.0
            self._count(full * fraction, detail[0].get("train_seconds"))
            self._teach(cell, f"{cell.identity_hash}@{fraction}", detail[0], fraction)
        else:  # detail: (its RunSummary, seconds)
            self._count(full, _recorded(cell, detail[0].resources))
            self._teach(cell, cell.identity_hash, detail[0].resources)

    def _teach(self, cell: Cell, run_id: str, resources: dict, fraction: float = 1.0) -> None:
        plan = self.planned.plan(cell)
        if self.learn and plan is not None:
            try:
                learn(plan, cell.experiment, self.planned.acc, run_id, resources, fraction)
            except OSError:  # the cache cannot be written: the study goes on uncorrected
                pass

    def _count(self, planned: float, took: float | None) -> None:
        """One run's planned and recorded seconds into the correction (a run that recorded none is left out)."""
        if took:
            self.ran_planned += planned
            self.ran_took += took
            self.ran += 1

    def text(self) -> str:
        if not self.ran:
            return f"about {duration(self.left)} left (the plan)"
        ratio = self.ran_took / self.ran_planned
        return (
            f"about {duration(self.left * ratio)} left (the plan x {ratio:.2g}, as the {self.ran} "
            f"cell{'s' * (self.ran > 1)} finished so far took)"
        )


def _recorded(cell: Cell, resources: dict) -> float:
    """The compute a finished run of `cell` records, counted as its plan counts it (plan.planner.measured_parts)."""
    return sum(measured_parts(resources, METHODS.get(cell.experiment.method.name).trains).values())
