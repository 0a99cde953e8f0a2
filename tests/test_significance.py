"""Significance across seeds and examples: per-example sufficient statistics give exactly the BLURB rules, the
seed-and-example bootstrap on hand-made cases with known answers, Holm's correction, and the report's pairs."""

import json
import random

import numpy as np
import pandas as pd
import pytest

from biotune.data import get_spec, load_split
from biotune.report import stats
from biotune.report.build import significance
from biotune.tasks import task_for


def _perturbed(task, examples, rng):
    """Predictions near the gold: the gold of another example for about a third of them."""
    golds = [task.gold(e) for e in examples]
    preds = []
    for g in golds:
        if rng.random() < 0.35:
            other = rng.choice(golds)
            if isinstance(g, list) and isinstance(other, list) and len(other) != len(g) and task.name in ("ner", "pico"):
                other = [rng.choice(sorted({t for x in golds for t in x})) for _ in g]
            g = other
        if isinstance(g, float):
            g = g + rng.uniform(-1, 1)
        preds.append(g)
    return golds, preds


@pytest.mark.parametrize("name", ["ncbi-disease", "ebm-pico", "gad", "ddi", "chemprot", "biosses", "hoc",
                                  "pubmedqa", "bioasq"])
def test_sufficient_statistics_give_exactly_the_rule(name, data_dir):
    task = task_for(get_spec(name))
    examples = load_split(name, "dev", data_dir).to_list()[:300]
    ids = [e["id"] for e in examples]
    rng = random.Random(0)
    for _ in range(5):
        golds, preds = _perturbed(task, examples, rng)
        s = task.stats(golds, preds, ids)
        assert s.shape[0] == len(examples)
        assert float(task.score_stats(s.sum(axis=0))) == pytest.approx(task.score_gold(golds, preds, ids)["score"],
                                                                        abs=1e-9)
        # a resample as counts equals the rule on the resampled examples (copies of one example kept apart)
        w = next(stats.resample_weights(len(examples), 3, seed=1))
        for row in w:
            idx = [i for i, c in enumerate(row) for _ in range(int(c))]
            want = task.score_gold([golds[i] for i in idx], [preds[i] for i in idx], [f"{ids[i]}#{j}" for j, i in
                                                                                       enumerate(idx)])["score"]
            assert float(task.score_stats(row @ s)) == pytest.approx(want, abs=1e-6)


def _acc_stats(correct):
    correct = np.asarray(correct, dtype=float)
    return np.stack([correct, np.ones_like(correct)], axis=1)


def _score_acc(t):
    t = np.asarray(t, dtype=float)
    return 100 * t[..., 0] / t[..., 1]


def _test(runs_a, runs_b, samples=4000):
    obs, reps = stats.replicate_scores({("a", i): _acc_stats(c) for i, c in enumerate(runs_a)}
                                       | {("b", i): _acc_stats(c) for i, c in enumerate(runs_b)}, _score_acc, samples)
    seeds = range(len(runs_a))
    return stats.seed_example_test([obs[("a", i)] for i in seeds], [reps[("a", i)] for i in seeds],
                                   [obs[("b", i)] for i in seeds], [reps[("b", i)] for i in seeds])


def test_identical_methods_differ_by_nothing():
    run = [1, 0, 1, 1, 0] * 40
    r = _test([run, run], [run, run])
    assert (r["diff"], r["ci_low"], r["ci_high"], r["p_value"], r["seeds"]) == (0.0, 0.0, 0.0, 1.0, 2)


def test_one_seed_matches_the_reference_paired_bootstrap_and_the_normal_approximation():
    # A right on all 400, B on half: resampled mean difference sd 0.5 / sqrt(400) -> 95% interval 50 +- 4.9
    b = np.random.default_rng(1).permutation([1] * 200 + [0] * 200)
    r = _test([[1] * 400], [b])
    ref = stats.paired_bootstrap(lambda i: 100.0, lambda i: 100 * b[np.asarray(i)].mean(), 400, samples=4000, seed=3)
    assert r["diff"] == pytest.approx(50.0)
    assert r["ci_low"] == pytest.approx(ref["ci_low"], abs=0.8) == pytest.approx(50 - 4.9, abs=0.8)
    assert r["ci_high"] == pytest.approx(ref["ci_high"], abs=0.8)
    assert r["p_value"] == pytest.approx(2 / 4001)  # never 0: (hits + 1) / (samples + 1)


def test_seed_to_seed_variation_enters_the_interval():
    """Seed 0: A 90 % vs B 80 %; seed 1: A 80 % vs B 90 %, on 1,000 examples. One seed alone looks decisive
    (+10, interval clear of 0); over both seeds the mean difference is 0 and the interval spans 0."""
    rng = np.random.default_rng(0)

    def run(acc):
        return rng.permutation([1] * int(1000 * acc) + [0] * (1000 - int(1000 * acc)))

    a, b = [run(0.9), run(0.8)], [run(0.8), run(0.9)]
    one = _test(a[:1], b[:1])
    assert one["diff"] == pytest.approx(10) and one["ci_low"] > 0 and one["p_value"] < 0.001
    both = _test(a, b)
    assert both["diff"] == pytest.approx(0) and both["ci_low"] < -5 and both["ci_high"] > 5
    assert both["p_value"] > 0.3 and both["seeds"] == 2


def test_holm_bonferroni_on_known_values():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> monotone 0.06
    got = stats.holm([0.01, 0.04, 0.03, 0.005])
    assert got == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # 0.5 x 2 capped at 1; monotone


def _write_run(folder, ids, golds, preds):
    folder.mkdir(parents=True)
    rows = [{"id": i, "gold": g, "prediction": p} for i, g, p in zip(ids, golds, preds)]
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(folder)


def test_report_pairs_use_every_shared_seed_pair_a_deterministic_run_and_correct_for_multiplicity(tmp_path):
    """PubMedQA-style accuracy on 300 questions: fft (3 seeds) beats the one zero-shot run by about 20 points,
    which survives the correction; fft and lora differ by a few points, which does not."""
    rng = np.random.default_rng(0)
    n = 300
    ids = [f"q{i}" for i in range(n)]
    golds = list(rng.choice(["yes", "no", "maybe"], n))

    def answers(acc):
        right = rng.random(n) < acc
        return [g if r else ("no" if g == "yes" else "yes") for g, r in zip(golds, right)]

    rows = []
    for method, accs, det in (("zero_shot", [0.5], True), ("fft", [0.70, 0.71, 0.70], False),
                              ("lora", [0.665, 0.68, 0.675], False)):
        for seed, acc in enumerate(accs):
            out = _write_run(tmp_path / f"{method}{seed}", ids, golds, answers(acc))
            rows.append({"dataset": "pubmedqa", "model": "m", "method": method, "seed": seed, "output_dir": out,
                         "deterministic": det})
    sig, intervals = significance(pd.DataFrame(rows), samples=4000)
    sig = sig.set_index(["a", "b"])
    assert set(sig.index) == {("zero_shot", "fft"), ("zero_shot", "lora"), ("fft", "lora")}
    assert sig.loc[("zero_shot", "fft"), "seeds"] == 3  # the one zero-shot run against each fft seed
    assert (sig["n"] == n).all()
    assert sig.loc[("zero_shot", "fft"), "significant"] and sig.loc[("zero_shot", "fft"), "diff"] < -15
    fl = sig.loc[("fft", "lora")]
    assert fl.seeds == 3 and fl.p_holm >= fl.p_value and not fl.significant
    assert sig["p_holm"].tolist() == pytest.approx(stats.holm(sig["p_value"]).tolist())
    assert (sig["significant"] == (sig["p_holm"] < 0.05)).all()
    # each method's test score over its seeds, with an interval that holds it
    iv = intervals.set_index("method")
    assert iv.loc["fft", "seeds"] == 3 and iv.loc["zero_shot", "seeds"] == 1
    assert (iv.ci_low <= iv.score).all() and (iv.score <= iv.ci_high).all()
