"""`biotune study --executor ray`: the grid fanned out over a Ray cluster.

Each cell is one Ray task; the task claims its cell in the results store, runs it (in its own process, as the
local executor does) and writes its row there, so the store is the single source of truth whatever the number
of workers, and a cell claimed by a live worker is never run twice. The driver only waits and shows progress.

`--ray-address auto` joins a running cluster (`ray start --head` on one node, `ray start --address ...` on the
others); without an address a local Ray is started on this machine. On a cluster the store must be reachable
from every node (a PostgreSQL URL, or SQLite on a shared file system) and so must the data and output folders.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from biotune.data.location import resolve_data_dir
from biotune.errors import BiotuneError

from .cell_run import run_claimed
from .grid import Cell, StudyConfig


def _ray_task(study_name: str, store_url: str, cell: Cell, rev: str | None, reclaim: bool = False):
    from .store import Store, worker_id

    status, detail = run_claimed(study_name, Store(store_url), cell, rev, reclaim)
    return status, detail, worker_id()


def _absolute(cell: Cell) -> Cell:
    """Workers may start in another folder (or on another node): pin paths before the cell leaves."""
    exp = cell.experiment.model_copy(
        update={
            "output_dir": str(Path(cell.experiment.output_dir).resolve()),
            "data_dir": resolve_data_dir(cell.experiment.data_dir),
        }
    )
    return dataclasses.replace(cell, experiment=exp)


def _absolute_store(url: str) -> str:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(url.removeprefix("sqlite:///")).resolve())
    return url


def _start(address: str | None) -> bool:
    """Start or join Ray unless it runs in this process already; True where it was started here."""
    try:
        import ray
    except ModuleNotFoundError:
        raise BiotuneError("--executor ray needs Ray: pip install 'biotune[ray]' (or pip install ray)") from None
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:  # a local Ray on this machine; small object store, the tasks pass only summaries
            ray.init(include_dashboard=False, log_to_driver=False, object_store_memory=128 * 2**20)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise BiotuneError(
            f"--executor ray: cannot start or join Ray ({address or 'local'}): {str(e).splitlines()[0]}"
        ) from None
    return True


@contextmanager
def ray_session(address: str | None = None):
    """One Ray for all the batches of a study (an adaptive search runs one batch per rung): started or joined
    once, shut down at the end if started here."""
    started = _start(address)
    try:
        yield
    finally:
        if started:
            import ray

            ray.shutdown()


def run_on_ray(
    study: StudyConfig,
    cells: list[Cell],
    rev: str | None,
    report: Callable,
    describe: Callable,
    address: str | None = None,
    cpus_per_cell: float = 1,
    gpus_per_cell: float = 0,
    reclaim: bool = False,
) -> list[str]:
    """Run `cells` as Ray tasks; calls report(cell, status, detail) as each ends. Returns the workers seen. Ray is
    started (or joined) here unless it runs already (`ray_session` keeps one for a whole study's batches)."""
    import ray

    started_here = _start(address)
    try:
        task = ray.remote(num_cpus=cpus_per_cell, num_gpus=gpus_per_cell, max_retries=0)(_ray_task)
        url = _absolute_store(study.store_url)
        pending = {task.remote(study.name, url, _absolute(c), rev, reclaim): c for c in cells}
        workers = []
        describe(f"{len(pending)} cells on Ray ({ray.cluster_resources().get('CPU', 0):.0f} CPUs)")
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                cell = pending.pop(ref)
                try:
                    status, detail, worker = ray.get(ref)
                except ray.exceptions.RayError as e:  # the worker died: the cell's claim lapses with it
                    report(cell, "failed", f"Ray task failed: {str(e).splitlines()[0]}")
                    continue
                workers.append(worker)
                report(cell, status, detail)
            describe(f"{len(pending)} cells left on Ray")
        return workers
    finally:
        if started_here:
            ray.shutdown()
