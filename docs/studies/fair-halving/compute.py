"""The compute of the fair rerun (adaptive search, fresh seeds) against the old fair study (exhaustive grid, the
search's seed-0 run reused), counted the same way from both committed stores (nothing rerun):

  a finished run   its recorded training (dev evaluations included) + test prediction (+ dev prediction for an
                   in-context run): what the report counts as one run's compute
  a stopped candidate   its training up to the rung where halving stopped it (search_rungs.train_seconds)
  lost             training redone after a kill (`lost_seconds`), listed apart, in neither total

    python docs/studies/fair-halving/compute.py
"""

from __future__ import annotations

import json
import sqlite3
import statistics
from collections import defaultdict
from pathlib import Path

from biotune.methods import METHODS
from biotune.plan.planner import measured_parts  # noqa: TID253  (a script: it always needs it)

HERE = Path(__file__).resolve().parent
STORES = {"fair": HERE.parent / "fair" / "results.sqlite", "fair-halving": HERE / "results.sqlite"}


def run_seconds(resources: dict, method: str) -> float:
    """A finished run's compute as its plan and the report count it (training with its dev evaluations, then
    prediction: test, and dev for an in-context run)."""
    return sum(measured_parts(resources, METHODS.get(method).trains).values())


def study(name: str) -> dict:
    db = sqlite3.connect(STORES[name])
    db.row_factory = sqlite3.Row
    rows = db.execute("select * from results where study = ? and status = 'done'", (name,)).fetchall()
    seeds = sorted({r["seed"] for r in rows})
    out: dict = defaultdict(float)
    per_cell = {}
    for r in rows:
        res = json.loads(r["resources"] or "{}")
        secs = run_seconds(res, r["method"])
        search = name == "fair-halving" and r["seed"] == 3  # the search seed's survivors
        out["search" if search else "results"] += secs
        out["lost"] += res.get("lost_seconds") or 0.0
        per_cell[(r["dataset"], r["model"], r["method"], r["seed"])] = secs
    stopped = db.execute(
        "select config_hash, max(train_seconds) as s from search_rungs where study = ? and decision = 'stop' "
        "group by config_hash",
        (name,),
    ).fetchall()
    out["search"] += sum(r["s"] for r in stopped)
    out["runs"] = len(rows)
    out["survivors"] = sum(1 for r in rows if name == "fair-halving" and r["seed"] == 3)
    out["stopped_candidates"] = len(stopped)
    out["total"] = out["results"] + out["search"]
    return {"seeds": seeds, **out, "per_cell": per_cell}


def main() -> None:
    old, new = study("fair"), study("fair-halving")
    hours = lambda s: f"{s / 3600:.2f} h"  # noqa: E731
    print(f"old fair study: {old['runs']} runs, {hours(old['total'])} (lost, apart: {hours(old['lost'])})")
    print(
        f"fair rerun: {new['runs']} finished runs ({new['runs'] - new['survivors']} results, {new['survivors']} search "
        f"survivors) and "
        f"{new['stopped_candidates']} stopped candidates: {hours(new['total'])} — results {hours(new['results'])}, "
        f"search {hours(new['search'])} (lost, apart: {hours(new['lost'])})"
    )
    # one run's time inflated by the test suite run beside it (GAD SmolLM2 FFT seed 1): counted at its seeds' median
    cell = ("gad", "smollm2-135m", "fft", 1)
    if cell in new["per_cell"]:
        others = [new["per_cell"][(*cell[:3], s)] for s in (0, 2) if (*cell[:3], s) in new["per_cell"]]
        median = statistics.median([new["per_cell"][cell], *others])
        fixed = new["total"] - new["per_cell"][cell] + median
        print(
            f"  with GAD SmolLM2 FFT seed 1 ({new['per_cell'][cell]:.0f} s, slowed by tests beside it) at its "
            f"seeds' median ({median:.0f} s): {hours(fixed)}"
        )


if __name__ == "__main__":
    main()
