"""Where a study's cells run: one small interface, one registry (EXECUTORS). An executor opens a session for the
whole study (`session()`: a Ray cluster is started or joined once) and runs one batch of cells at a time
(`run(batch, report, describe)`: every cell claimed in the store, run, and its end passed to `report(cell,
status, detail)`); the store is the single source of truth, so executors differ only in where cells run.

| executor | cells run                                  | options                                            |
|----------|--------------------------------------------|----------------------------------------------------|
| local    | one after another in this machine's processes | —                                               |
| ray      | as Ray tasks, fanned out over a cluster    | address, cpus_per_cell, gpus_per_cell (ray_executor.py) |

A new executor: a class with `session` and `run`, registered with `@EXECUTORS.register("<name>")`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from biotune.registry import Registry

from .cell_run import run_claimed
from .grid import Cell, StudyConfig
from .ray_executor import ray_session, run_on_ray
from .store import Store

EXECUTORS: Registry[type] = Registry("executor")


class Executor:
    def __init__(self, study: StudyConfig, store: Store, rev: str | None, reclaim: bool = False, **options):
        self.study, self.store, self.rev, self.reclaim, self.options = study, store, rev, reclaim, options

    def session(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def run(self, batch: list[Cell], report: Callable, describe: Callable[[str], None]) -> None:
        raise NotImplementedError


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """Cells one after another, each in a process of its own on this machine."""

    def run(self, batch, report, describe):
        for cell in batch:
            describe(cell.label)
            report(cell, *run_claimed(self.study.name, self.store, cell, self.rev, self.reclaim))


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """Cells as Ray tasks over a cluster (ray_executor.py); one Ray for the whole study."""

    def session(self):
        return ray_session(self.options.get("address"))

    def run(self, batch, report, describe):
        run_on_ray(self.study, batch, self.rev, report, describe, reclaim=self.reclaim, **self.options)
