"""Is the report's significance test honest with few seeds? Simulated studies with a known true difference.

Each simulated study compares two configurations A and B on one test set of `documents` x `per_document`
examples (sentences of one abstract share a difficulty), each trained on `seeds` seeds. An example's chance of
being answered right is a logistic function of its difficulty (the document's plus its own), of a per-example
effect of the configuration (what one configuration gets right and the other does not: the same on every seed),
of the seed (a run's overall luck, standard deviation `seed_sd` on the logit scale) and of the true effect
`effect` (A only). Each run's answers are drawn from those chances, so two seeds of one configuration also
disagree example by example, as real runs do. The score is accuracy (×100).

Under `effect=0` the configurations are equal on the population of examples and seeds: the share of studies the
test calls significant at alpha is its false-positive rate, which must be at most alpha. Under an effect it is
the power. The test is the report's own (`stats.replicate_scores` by document, then
`stats.seed_example_test`), run unchanged. `python -m biotune.report.calibration` prints the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import stats

# seed spreads named by what they look like in a study's seed std of the score (accuracy points, 3 seeds):
# about 1, 3 and 10 points (the fair study's seed std ran from under 1 to 33 F1)
SPREADS = {"steady": 0.05, "moderate": 0.15, "wide": 0.5}


@dataclass
class Calibration:
    spread: str
    seed_sd: float
    effect: float  # logit
    studies: int
    rejected: float  # share of studies called significant
    true_diff: float  # the mean observed difference over the studies (accuracy points)
    seed_std: float  # the mean over studies of A's seed std of the score (accuracy points)


def _studies(rng, studies: int, seeds: int, documents: int, per_document: int, seed_sd: float, effect: float):
    n = documents * per_document
    doc = np.repeat(np.arange(documents), per_document)
    for _ in range(studies):
        difficulty = rng.normal(0, 1, documents)[doc] + rng.normal(0, 1, n)
        runs = {}
        for name, shift in (("a", effect), ("b", 0.0)):
            own = rng.normal(0, 0.5, n)  # what this configuration gets right or wrong on every seed
            for s in range(seeds):
                logit = difficulty + own + rng.normal(0, seed_sd) + shift
                right = rng.random(n) < 1 / (1 + np.exp(-logit))
                runs[(name, s)] = np.stack([right, np.ones(n)], axis=1).astype(np.float32)
        yield doc, runs


def _accuracy(t):
    t = np.asarray(t, dtype=float)
    return 100 * t[..., 0] / t[..., 1]


def calibrate(
    spread: str = "moderate",
    effect: float = 0.0,
    studies: int = 1000,
    seeds: int = 3,
    documents: int = 100,
    per_document: int = 5,
    samples: int = 400,
    alpha: float = 0.05,
    seed: int = 0,
) -> Calibration:
    """The share of `studies` simulated studies in which the report's test calls A and B different at `alpha`."""
    rng = np.random.default_rng(seed)
    sd = SPREADS[spread]
    hits, diffs, spreads = 0, [], []
    for i, (doc, runs) in enumerate(_studies(rng, studies, seeds, documents, per_document, sd, effect)):
        observed, reps = stats.replicate_scores(runs, _accuracy, samples, seed=i, clusters=doc)
        r = stats.seed_example_test(
            [observed[("a", s)] for s in range(seeds)],
            [reps[("a", s)] for s in range(seeds)],
            [observed[("b", s)] for s in range(seeds)],
            [reps[("b", s)] for s in range(seeds)],
            alpha=alpha,
        )
        hits += r["p_value"] < alpha
        diffs.append(r["diff"])
        spreads.append(np.std([observed[("a", s)] for s in range(seeds)], ddof=1) if seeds > 1 else 0.0)
    return Calibration(spread, sd, effect, studies, hits / studies, float(np.mean(diffs)), float(np.mean(spreads)))


def table(studies: int = 2000, effects=(0.0, 0.3, 0.6), seeds: int = 3) -> list[Calibration]:
    return [calibrate(spread, e, studies, seeds) for spread in SPREADS for e in effects]


def describe(rows: list[Calibration]) -> str:
    lines = [
        "| seed spread (A's seed std) | true difference | studies | called significant at 0.05 |",
        "|---|---|---|---|",
    ]
    for r in rows:
        what = "false positives" if r.effect == 0 else "power"
        se = 100 * (r.rejected * (1 - r.rejected) / r.studies) ** 0.5
        lines.append(
            f"| {r.spread} ({r.seed_std:.1f} points) | {r.true_diff:+.1f} points | {r.studies} | "
            f"{100 * r.rejected:.1f} % ± {se:.1f} ({what}) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    import sys
    import time

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    began = time.perf_counter()
    rows = table(n)
    print(describe(rows))
    print(
        f"({n} studies per row, 3 seeds, 500 test examples in 100 documents, 400 resamples each; "
        f"{time.perf_counter() - began:.0f} s)"
    )
