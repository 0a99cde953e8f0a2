"""The fair study's committed cells read again with the report of the new protocol (no cell rerun).

The study ran under the earlier protocol: each search's chosen candidate on seed 0 was reused as a result and its
report resampled 3 seeds as if many. This script builds two reports from the same store:

- `reread/as-run/`: the cells the old report showed (the search's seed-0 winner included), with the new
  significance test (seed and example variance apart, t with 2 degrees of freedom), comparisons across models and
  with the constant answer, and the recommendation rule (the cheapest configuration dev cannot tell from the best);
- `reread/fresh-seeds/`: the same without the search runs: a searched configuration is its seeds 1 and 2 only
  (3-shot, never searched, keeps its 3 seeds) — what the study's answer is once the winner's curse is taken out.

    .venv/bin/python docs/studies/fair/reread.py
"""

from pathlib import Path

from biotune.report.build import build_report
from biotune.study.store import Store

HERE = Path("docs/studies/fair")  # run from the repository's root, as the study's cells name their folders
STORE = f"sqlite:///{HERE / 'results.sqlite'}"


def main() -> None:
    rows = Store(STORE).rows("fair", "done")
    by_group: dict = {}
    for r in rows:
        by_group.setdefault((r["dataset"], r["model"], r["method"]), []).append(r)
    as_run, fresh = {}, {}
    for (dataset, model, method), rs in by_group.items():
        seed0 = [r for r in rs if r["seed"] == 0]
        searched = len(seed0) > 1
        # seed 0 of a search: the candidate with the best dev score (ties: the first), as the old report chose
        pick = max(seed0, key=lambda r: (r["dev_score"], -seed0.index(r)))
        for r in rs:
            key = (dataset, model, method, r["seed"])
            if r["seed"] == 0 and r is not pick:
                continue
            as_run[key] = r["config_hash"]
            if not (searched and r["seed"] == 0):
                fresh[key] = r["config_hash"]
    for name, identities in (("as-run", as_run), ("fresh-seeds", fresh)):
        out = HERE / "reread" / name
        build_report(STORE, "fair", out, memory_mb=(1024, 4096, float("inf")), seconds=(600, 1800, float("inf")),
                     identities=identities)
        print(out / "report.md")


if __name__ == "__main__":
    main()
