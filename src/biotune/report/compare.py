"""Comparisons between a study's configurations on the examples they share: each run's predictions (read once per
file version), the paired test over seeds and examples per dataset (`compare_runs`, `significance`: Holm over
every comparison) and the best constant answer a configuration is compared with (`constant_baselines`). The
report's tables and its answer both read from here."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import pandas as pd

from biotune.data import DATASETS, get_spec
from biotune.io import read_jsonl
from biotune.tasks import task_for
from biotune.yamlfile import read_yaml_file

from . import stats

CONSTANT = "constant"  # the model name of a dataset's best constant answer, compared as one more configuration


def config_label(model: str, method: str) -> str:
    """How the report names a configuration: `model / method` (the constant answer: `constant 'yes'`)."""
    return f"{model} {method}" if model == CONSTANT else f"{model} / {method}"


def runs_of(g: pd.DataFrame, which: str = "test") -> dict:
    """(configuration label, seed) -> {id: prediction row} of the runs that wrote their `which` predictions."""
    runs = {(config_label(r.model, r.method), r.seed): predictions(r.output_dir, which) for r in g.itertuples()}
    return {k: v for k, v in runs.items() if v}


def paired_runs(seeds_a: list[int], seeds_b: list[int], fixed_a: bool, fixed_b: bool) -> list[tuple[int, int]]:
    """Which runs of two configurations are compared with each other: a deterministic configuration's one run
    with every seed of the other; otherwise run by run over the seeds both have."""
    if fixed_a and len(seeds_a) == 1:
        return [(seeds_a[0], s) for s in seeds_b]
    if fixed_b and len(seeds_b) == 1:
        return [(s, seeds_b[0]) for s in seeds_a]
    return [(s, s) for s in seeds_a if s in seeds_b]


def compare_runs(
    dataset: str,
    runs: dict,
    fixed: dict,
    spec,
    samples: int,
    alpha: float = 0.05,
    constant: tuple[float, str] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Every pair of configurations on one dataset's examples (`runs`: (label, seed) -> predictions by id), and each
    configuration's score with its interval: per-example sufficient statistics, resamples of the examples (of the
    documents where the dataset's ids name them: `DatasetSpec.documents`), the same resamples for every run, then
    stats.seed_example_test. `constant`: the best constant answer, added as one more (deterministic) configuration.
    Returns (pair rows, interval rows), unadjusted."""
    ids = [i for i in next(iter(runs.values())) if all(i in p for p in runs.values())]
    if len(ids) < 2:
        return [], []
    task = task_for(spec)
    first = next(iter(runs.values()))
    golds = [first[i]["gold"] for i in ids]
    stats_by_run = {k: task.stats(golds, [p[i]["prediction"] for i in ids], ids) for k, p in runs.items()}
    fixed = dict(fixed)
    if constant is not None:
        label = config_label(CONSTANT, repr(constant[1]))
        stats_by_run[(label, 0)] = task.stats(golds, [constant[1]] * len(ids), ids)
        fixed[label] = True
    docs = [spec.document_of(i) for i in ids]
    clusters = (
        [d if d is not None else f"#{i}" for d, i in zip(docs, ids)] if any(d is not None for d in docs) else None
    )
    units = len(set(clusters)) if clusters else len(ids)
    observed, reps = stats.replicate_scores(stats_by_run, task.score_stats, samples, clusters=clusters)
    seeds: dict[str, list[int]] = {}
    for label, seed in stats_by_run:
        seeds.setdefault(label, []).append(seed)
    rows, intervals = [], []
    base = {"dataset": dataset, "n": len(ids), "units": units, "resampled": "documents" if clusters else "examples"}
    for c, ss in seeds.items():
        iv = stats.seed_example_interval([observed[(c, s)] for s in sorted(ss)], [reps[(c, s)] for s in sorted(ss)])
        # a t interval is symmetric and can pass the metric's bounds (BIOSSES' 20 pairs, 3 seeds: up to 107 for a
        # Pearson r): cut there, where the score cannot be
        low, high = task.score_range
        iv["ci_low"], iv["ci_high"] = max(low, iv["ci_low"]), min(high, iv["ci_high"])
        intervals.append({**base, "config": c, **iv})
    for a, b in itertools.combinations(list(seeds), 2):
        pairs = paired_runs(sorted(seeds[a]), sorted(seeds[b]), fixed.get(a, False), fixed.get(b, False))
        if not pairs:
            continue
        res = stats.seed_example_test(
            [observed[(a, sa)] for sa, _ in pairs],
            [reps[(a, sa)] for sa, _ in pairs],
            [observed[(b, sb)] for _, sb in pairs],
            [reps[(b, sb)] for _, sb in pairs],
            alpha=alpha,
        )
        rows.append({**base, "a": a, "b": b, **res})
    return rows, intervals


def seen_from(row, config: str) -> tuple[str, float, float, float]:
    """A comparison row (a, b: score(a) − score(b) and its interval) from `config`'s side: (the other
    configuration, config − other, the interval's low and high ends)."""
    get = row.get if isinstance(row, dict) else lambda k: getattr(row, k)
    if get("a") == config:
        return get("b"), get("diff"), get("ci_low"), get("ci_high")
    return get("a"), -get("diff"), -get("ci_high"), -get("ci_low")


PAIR_COLUMNS = [
    "dataset",
    "a",
    "b",
    "n",
    "units",
    "resampled",
    "diff",
    "ci_low",
    "ci_high",
    "p_value",
    "seeds",
    "df",
    "seed_var",
    "example_var",
    "samples",
]


def significance(
    df: pd.DataFrame, samples: int = 10000, alpha: float = 0.05, constants: dict | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every pair of configurations (model / method, across models) on each dataset, and each configuration
    against the dataset's best constant answer (`constants`, from `constant_baselines`), over every seed both ran
    and every test example both predicted (`compare_runs`), then Holm-Bonferroni over all the pairs tested:
    `significant` only after that correction. Also each configuration's test score with its interval."""
    rows, intervals = [], []
    for dataset, g in df.groupby("dataset", sort=False):
        runs = runs_of(g)
        if not runs:
            continue
        fixed = {config_label(r.model, r.method): bool(r.deterministic) for r in g.itertuples()}
        spec = dataset_spec(dataset, g.output_dir)
        pair_rows, iv = compare_runs(dataset, runs, fixed, spec, samples, alpha, (constants or {}).get(dataset))
        rows += pair_rows
        intervals += iv
    out = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    out["p_holm"] = stats.holm(out["p_value"]) if len(out) else []
    out["significant"] = out["p_holm"] < alpha
    return out, pd.DataFrame(
        intervals, columns=["dataset", "config", "n", "units", "resampled", "score", "ci_low", "ci_high", "seeds"]
    )


def constant_baselines(df: pd.DataFrame) -> dict[str, tuple[float, str]]:
    """Per dataset with one label per example (relations, QA): the best test score of answering one label for
    every example, on the examples every run of it predicted — what a model that learned only the majority
    answer scores (GAD's F1 of the positive class: about 69 for always 'yes'). Other task types: none listed
    (a constant there scores 0: no mentions, a constant similarity, one label set)."""
    out = {}
    for dataset, g in df.groupby("dataset", sort=False):
        runs = [p for p in (predictions(o) for o in g.output_dir) if p]
        if not runs:
            continue
        ids = [i for i in runs[0] if all(i in p for p in runs)]
        golds = [runs[0][i]["gold"] for i in ids]
        if not ids or not all(isinstance(x, str) for x in golds):
            continue
        task = task_for(dataset_spec(dataset, g.output_dir))
        best = max(
            (float(task.score_stats(task.stats(golds, [c] * len(ids), ids).sum(axis=0))), c) for c in sorted(set(golds))
        )
        if best[0] > 0:
            out[dataset] = best
    return out


def dataset_spec(dataset: str, output_dirs):
    """A dataset's spec: a built-in by name, a dataset file as its runs' configs name it."""
    if dataset in DATASETS:
        return get_spec(dataset)
    for out in output_dirs:
        config = Path(out) / "config.yaml"
        if config.is_file():
            return get_spec(read_yaml_file(config, "run config", "dataset")[0]["dataset"])
    return get_spec(dataset)  # raises, naming the dataset


def predictions(output_dir: str, which: str = "test") -> dict:
    """A run's predictions by example id: of the evaluated split (`test`) or of dev (the kept model's). Read once
    per file version: the constant answers, the comparisons and the dev decisions all read them (the caller must
    not change what it gets)."""
    path = Path(output_dir) / ("predictions.jsonl" if which == "test" else "dev_predictions.jsonl")
    try:
        st = path.stat()
    except OSError:
        return {}
    return _read_predictions(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=512)
def _read_predictions(path: str, size: int, mtime_ns: int) -> dict:
    return {r["id"]: r for r in read_jsonl(path)}
