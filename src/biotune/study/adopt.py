"""Finished runs a study takes instead of running them again (`adopt:` in a study file): a `biotune run` folder, or
any run folder, whose result has the same identity as one of the study's cells — the same resolved experiment, data,
model and scoring (biotune.identity), so the same result — is copied into the cell's folder (predictions, metrics,
config; never checkpoints) and recorded in the store as done, saying where it came from. A search's candidates
stopped at a rung are never adopted (a finished run is not a paused one).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from biotune.identity import hash_of, upgrade
from biotune.summary import FILE, RunSummary

from .grid import Cell, StudyConfig

if TYPE_CHECKING:
    from .store import Store

KEPT = ("metrics.json", "predictions.jsonl", "dev_predictions.jsonl", "config.yaml", "identity.json", "run.log")


def finished_runs(folders: list[str]) -> dict[str, Path]:
    """Identity hash -> folder of every finished run in `folders` (a run folder, or a folder of run folders)."""
    found: dict[str, Path] = {}
    for folder in map(Path, folders):
        for run in (folder, *(sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else ())):
            try:
                identity = json.loads((run / FILE).read_text()).get("identity_hash")
                held = run / "identity.json"
                stored = json.loads(held.read_text()).get("identity") if held.is_file() else None
                current = upgrade(stored) if stored else None
                if current is not stored:  # the same result, named otherwise now
                    identity = hash_of(current)
            except (OSError, ValueError):
                continue
            if identity and (run / "predictions.jsonl").is_file():
                found.setdefault(identity, run)
    return found


def adopt(
    study: StudyConfig, store: Store, batch: list[Cell], runs: dict[str, Path], rev: str | None, say: Callable
) -> list[Cell]:
    """The cells of `batch` still to run: each one with a finished run of its identity in `runs` is adopted (its
    files copied into the cell's folder, the store's row done, one line said) instead."""
    rest = []
    for cell in batch:
        source = runs.get(cell.identity_hash)
        if source is None or cell.experiment.training.pause_at is not None:
            rest.append(cell)
            continue
        if not store.claim(study.name, cell.key, cell.identity_hash):
            continue  # done or held by another worker meanwhile
        out = Path(cell.experiment.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name in KEPT:
            if (source / name).is_file() and source.resolve() != out.resolve():
                shutil.copy2(source / name, out / name)
        summary = RunSummary.read(out)
        summary.resources = {**summary.resources, "adopted_from": str(source)}
        store.finish(study.name, cell.key, cell.identity_hash, summary, cell.identity, rev, str(out))
        say(
            f"adopted {cell.label} from {source}: {summary.score:.2f} (identity {cell.identity_hash}, not run again)",
            cell,
            summary,
        )
    return rest
