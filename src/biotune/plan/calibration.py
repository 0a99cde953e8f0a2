"""The plan, corrected for the machine it runs on by the runs that finished there.

The planner counts FLOPs and bytes exactly but cannot know what share of its peak a machine reaches on a given
model, dataset and run size. Measured on a 2-core Xeon: the walkthrough's small runs took 2.2-4.7x their plan
(small-batch generation is bound by each step's fixed cost); the fair rerun's learning-scale SmolLM2 cells took
0.46-0.84x their plan to train on GAD and 1.0-1.2x on NCBI-disease, 0.6x to predict GAD (one-word answers) and
1.4-2.9x to predict NCBI-disease (entity lists). So every run that finishes on this machine (`biotune run`, a
study's cells run here) records its time against its plan, per part (training with its dev evaluations;
prediction), and later plans on this machine are multiplied by what runs of the closest kind took: the median
ratio of the KEEP runs nearest in size of the same model, method and dataset; else model and dataset; model and
method; model; family. A plan made for another machine (`--gpu NAME`, a GPU described by hand) is never corrected.

The ratios live in `$BIOTUNE_CACHE/plan-calibration.json` (default `~/.cache/biotune`; `$BIOTUNE_CALIBRATION_FILE`
names another file), keyed by the machine (its name as the planner gives it, threads and torch version), one entry
per run and part (a run recorded again replaces its entry), each with the version of the planner's arithmetic it
was planned by (ARITHMETIC): a ratio learned against other arithmetic is not read. Delete the file to start again."""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from biotune.data.location import cache_dir
from biotune.io import atomic_write_json

FILE = "plan-calibration.json"
KEEP = 9  # the runs a ratio is the median of: enough to outvote one run slowed by something beside it
# a part planned shorter is mostly fixed cost the planner does not model (loading, set-up: 10-20 s here), so its
# ratio would not carry over to a longer run (the demo's 4 s MiniLM training took 15 s, 3.6x; the fair rerun's 23 s
# one 1.2x): not learned from
MIN_PLANNED = 30.0
PARTS = ("training", "prediction")
# the planner's arithmetic per part, raised when it changes what it plans, so that ratios learned against the old
# arithmetic are not read (an entry without one: 1). prediction 2: prompts padded to their batch's longest, as
# generation batches them, and a CPU's or a measured GPU's decoding steps bound by the weight-read rates measured
# there (machine.weight_read_rates), no longer by their compute alone
ARITHMETIC = {"training": 1, "prediction": 2}


@dataclass(frozen=True)
class Kind:
    """What a ratio is learned for: a model (its path, or the path and 'random init') with a method, a dataset (its
    name or file) and the model's family."""

    model: str
    method: str
    dataset: str
    family: str

    @classmethod
    def of(cls, cfg) -> Kind:
        model = cfg.model.path + (" (random init)" if cfg.model.random_init else "")
        return cls(model, cfg.method.name, str(cfg.dataset), cfg.model.family)


@dataclass(frozen=True)
class Correction:
    """The factor a part of a plan is multiplied by, and what it was learned from."""

    factor: float
    runs: int
    basis: str  # the level it came from: 'smollm2-135m lora gad', 'smollm2-135m gad', ..., 'causal-family'

    def words(self, part: str) -> str:
        return f"{part} x{self.factor:.2g} ({self.runs} {self.basis} run{'s' * (self.runs > 1)})"


def _learns(planned: float) -> bool:
    """Whether a part planned at `planned` seconds teaches (and is read): MIN_PLANNED or more, and not zero."""
    return planned >= max(MIN_PLANNED, 1e-9)


def path() -> Path:
    return Path(os.environ.get("BIOTUNE_CALIBRATION_FILE") or cache_dir() / FILE)


def machine_key(acc) -> str:
    return f"{acc.name}|torch {torch.__version__}"


def _read() -> dict:
    try:
        known = json.loads(path().read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


@contextmanager
def _locked():
    """The file for a read-modify-write, held against other processes (parallel study workers) where flock exists."""
    p = path()
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl  # noqa: PLC0415  (POSIX only)
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(p.with_suffix(".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def record(acc, kind: Kind, run_id: str, planned: dict[str, float], took: dict[str, float]) -> int:
    """A finished run's time against its uncorrected plan, per part ({'training': s, 'prediction': s}); parts
    planned under MIN_PLANNED seconds are left out. Returns the number of parts recorded."""
    entries = [
        {
            "id": run_id,
            "part": part,
            "model": kind.model,
            "method": kind.method,
            "dataset": kind.dataset,
            "family": kind.family,
            "planned": round(planned[part], 4),
            "took": round(took[part], 4),
            "arithmetic": ARITHMETIC[part],
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        for part in PARTS
        if _learns(planned.get(part, 0)) and took.get(part, 0) > 0
    ]
    if not entries:
        return 0
    with _locked():
        known = _read()
        runs = known.get(machine_key(acc), [])
        replaced = {(e["id"], e["part"]) for e in entries}
        runs = [e for e in runs if (e.get("id"), e.get("part")) not in replaced] + entries
        known[machine_key(acc)] = runs[-500:]  # the file stays small; each kind keeps far more than KEEP
        atomic_write_json(path(), known)
    return len(entries)


def correction(acc, kind: Kind, part: str, known: dict | None = None, near: float | None = None) -> Correction | None:
    """The factor for `part` of a plan of `kind` on `acc`: the median ratio (took / planned) of KEEP runs of the
    closest kind (module docstring) — those nearest in planned time to `near` (the part's own plan), else the last;
    None where no run of the family finished here."""
    runs = [
        e
        for e in (known if known is not None else _read()).get(machine_key(acc), [])
        if e.get("part") == part and _learns(e.get("planned", 0)) and e.get("arithmetic", 1) == ARITHMETIC[part]
    ]
    k = kind  # short: the five levels below
    levels = (
        (("model", "method", "dataset"), f"{k.model} {k.method} {k.dataset}"),
        (("model", "dataset"), f"{k.model} {k.dataset}"),
        (("model", "method"), f"{k.model} {k.method}"),
        (("model",), k.model),
        (("family",), f"{k.family}-family"),
    )
    for fields, basis in levels:
        chosen = [e for e in runs if all(e.get(f) == getattr(k, f) for f in fields)]
        if near and near > 0:  # the nearest in size (a stable sort: among equals, the later run last)
            chosen = sorted(chosen, key=lambda e: -abs(math.log(e["planned"] / near)))
        chosen = chosen[-KEEP:]
        if chosen:
            factor = statistics.median(e["took"] / e["planned"] for e in chosen)
            return Correction(factor, len(chosen), basis)
    return None


def corrections(acc, kind: Kind, planned: dict[str, float] | None = None) -> dict[str, Correction]:
    """Both parts' corrections for a plan of `kind` on this machine (only those learned), each from the runs
    nearest in size to the part's own plan (`planned`, seconds per part)."""
    known = _read()
    found = {part: correction(acc, kind, part, known, (planned or {}).get(part)) for part in PARTS}
    return {part: c for part, c in found.items() if c is not None}
