"""How close a plan comes to a real run's time, from the planner alone and corrected by the runs that finished
on the same machine before (biotune.plan.calibration), on the finished cells of a study run on this machine.

For every finished cell of the store, in the order they finished: its plan on this machine (the planner's
arithmetic, nothing learned), its recorded seconds per part (training with its dev evaluations; prediction), and
the plan corrected as biotune would have corrected it then: by the cells of the store that finished before it,
recorded into an empty calibration file as the study records them. Cells of another machine kind must not be in
the store (the fair studies ran on one kind of machine throughout: see their READMEs).

    python benchmarks/plan_calibration.py docs/studies/fair-halving/results.sqlite fair-halving

Writes benchmarks/results/plan-calibration-<machine>.json: per cell and part, planned, corrected, took; and per
model x method the median and worst |log2(plan / took)| of each.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import RESULTS, machine, machine_slug  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", help="a study's results.sqlite")
    ap.add_argument("study", help="the study's name in the store")
    args = ap.parse_args()
    os.environ["BIOTUNE_CALIBRATION_FILE"] = str(Path(tempfile.mkdtemp()) / "calibration.json")

    from biotune.config import ExperimentConfig
    from biotune.plan import plan_experiment
    from biotune.plan.machine import this_machine
    from biotune.plan.planner import learn, measured_parts

    db = sqlite3.connect(args.store)
    db.row_factory = sqlite3.Row
    rows = db.execute(
        "select * from results where study = ? and status = 'done' order by finished_at", (args.study,)
    ).fetchall()
    acc = this_machine()
    cells = []
    for row in rows:
        cfg = ExperimentConfig.model_validate(json.loads(row["config"])["experiment"])
        resources = json.loads(row["resources"] or "{}")
        plan = plan_experiment(cfg, acc, suggest=False)  # corrected by the cells recorded so far
        if plan.error:
            continue
        took = measured_parts(resources, plan.trains)
        raw = plan.uncorrected_parts()
        corrected = plan.parts()
        for part in ("training", "prediction"):
            if raw[part] > 0 and took[part] > 0:
                cells.append(
                    {
                        "cell": f"{row['dataset']}/{row['model']}/{row['method']}/s{row['seed']}",
                        "model": row["model"],
                        "method": row["method"],
                        "part": part,
                        "planned": round(raw[part], 1),
                        "corrected": round(corrected[part], 1),
                        "correction": (plan.corrections[part].words(part) if part in plan.corrections else None),
                        "took": round(took[part], 1),
                        "resumed": bool(resources.get("resumes")),
                    }
                )
        learn(plan, cfg, acc, row["config_hash"], resources)  # as the study records a cell that ends
        mine = [c for c in cells if c["cell"] == cells[-1]["cell"]]
        said = "; ".join(
            f"{c['part']} planned {c['planned']}, corrected {c['corrected']}, took {c['took']} s" for c in mine
        )
        print(f"{mine[0]['cell']}: {said}", flush=True)

    def err(a: float, b: float) -> float:
        return abs(math.log2(a / b))

    groups = defaultdict(list)
    for c in cells:
        groups[f"{c['model']} {c['method']} {c['part']}"].append(c)
    summary = {}
    for key, cs in groups.items():
        learned = [c for c in cs if c["correction"]]  # the first of each kind has nothing to learn from
        summary[key] = {
            "cells": len(cs),
            "plan_median_x": round(statistics.median(c["took"] / c["planned"] for c in cs), 2),
            "plan_median_abs_log2": round(statistics.median(err(c["planned"], c["took"]) for c in learned or cs), 3),
            "corrected_cells": len(learned),
            "corrected_median_abs_log2": (
                round(statistics.median(err(c["corrected"], c["took"]) for c in learned), 3) if learned else None
            ),
            "corrected_worst_abs_log2": (
                round(max(err(c["corrected"], c["took"]) for c in learned), 3) if learned else None
            ),
        }
    all_learned = [c for c in cells if c["correction"]]
    out = {
        "machine": machine(),
        "command": "python benchmarks/plan_calibration.py " + " ".join(sys.argv[1:]),
        "store": args.store,
        "study": args.study,
        "accelerator": acc.name,
        "summary": summary,
        "all": {
            "parts": len(all_learned),
            "plan_median_abs_log2": round(statistics.median(err(c["planned"], c["took"]) for c in all_learned), 3),
            "corrected_median_abs_log2": round(
                statistics.median(err(c["corrected"], c["took"]) for c in all_learned), 3
            ),
        },
        "cells": cells,
    }
    path = RESULTS / f"plan-calibration-{machine_slug(out['machine'])}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({"summary": summary, "all": out["all"]}, indent=1))
    print(f"written to {path}; what the replay taught: {os.environ['BIOTUNE_CALIBRATION_FILE']}")


if __name__ == "__main__":
    main()
