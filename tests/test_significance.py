"""Significance across seeds and examples: per-example sufficient statistics give exactly the BLURB rules, the
seed-and-example bootstrap on hand-made cases with known answers, Holm's correction, and the report's pairs."""

import json
import random

import numpy as np
import pandas as pd
import pytest

from biotune import metrics
from biotune.data import get_spec, load_split
from biotune.report import stats
from biotune.report.compare import significance
from biotune.tasks import task_for


def _perturbed(task, examples, rng):
    """Predictions near the gold: the gold of another example for about a third of them."""
    golds = [task.gold(e) for e in examples]
    preds = []
    for g in golds:
        if rng.random() < 0.35:
            other = rng.choice(golds)
            if (
                isinstance(g, list)
                and isinstance(other, list)
                and len(other) != len(g)
                and task.name in ("ner", "pico")
            ):
                other = [rng.choice(sorted({t for x in golds for t in x})) for _ in g]
            g = other
        if isinstance(g, float):
            g = g + rng.uniform(-1, 1)
        preds.append(g)
    return golds, preds


def _library_rule(task, golds, preds, ids) -> float:
    """The BLURB rule as the field's libraries compute it (biotune.metrics: seqeval, scikit-learn, scipy), apart
    from the task's own scoring path (per-example stats summed)."""
    spec = task.spec
    if task.name == "ner":
        return 100 * metrics.entity_f1(golds, preds)["f1"]
    if task.name == "pico":
        return 100 * metrics.word_macro_f1(golds, preds, ("I-PAR", "I-INT", "I-OUT"))["f1"]
    if task.name == "relation":
        return 100 * metrics.relation_micro_f1(golds, preds, spec.negative)["f1"]
    if task.name == "similarity":
        return 100 * metrics.pearson(golds, preds)["pearson"]
    if task.name == "doc_classification":
        return 100 * metrics.doc_label_micro_f1(ids, golds, preds, spec.labels)["f1"]
    return 100 * metrics.accuracy(golds, preds)["accuracy"]


@pytest.mark.parametrize(
    "name", ["ncbi-disease", "ebm-pico", "gad", "ddi", "chemprot", "biosses", "hoc", "pubmedqa", "bioasq"]
)
def test_sufficient_statistics_give_exactly_the_rule(name, data_dir):
    task = task_for(get_spec(name))
    examples = load_split(name, "dev", data_dir).to_list()[:300]
    ids = [e["id"] for e in examples]
    rng = random.Random(0)
    for _ in range(5):
        golds, preds = _perturbed(task, examples, rng)
        s = task.stats(golds, preds, ids)
        assert s.shape[0] == len(examples)
        assert float(task.score_stats(s.sum(axis=0))) == pytest.approx(_library_rule(task, golds, preds, ids), abs=1e-9)
        assert task.score_gold(golds, preds, ids)["score"] == pytest.approx(
            _library_rule(task, golds, preds, ids), abs=1e-9
        )
        # a resample as counts equals the rule on the resampled examples (copies of one example kept apart)
        w = next(stats.resample_weights(len(examples), 3, seed=1))
        for row in w:
            idx = [i for i, c in enumerate(row) for _ in range(int(c))]
            want = _library_rule(
                task, [golds[i] for i in idx], [preds[i] for i in idx], [f"{ids[i]}#{j}" for j, i in enumerate(idx)]
            )
            assert float(task.score_stats(row @ s)) == pytest.approx(want, abs=1e-6)


def _acc_stats(correct):
    correct = np.asarray(correct, dtype=float)
    return np.stack([correct, np.ones_like(correct)], axis=1)


def _score_acc(t):
    t = np.asarray(t, dtype=float)
    return 100 * t[..., 0] / t[..., 1]


def _test(runs_a, runs_b, samples=4000):
    obs, reps = stats.replicate_scores(
        {("a", i): _acc_stats(c) for i, c in enumerate(runs_a)}
        | {("b", i): _acc_stats(c) for i, c in enumerate(runs_b)},
        _score_acc,
        samples,
    )
    seeds = range(len(runs_a))
    return stats.seed_example_test(
        [obs[("a", i)] for i in seeds],
        [reps[("a", i)] for i in seeds],
        [obs[("b", i)] for i in seeds],
        [reps[("b", i)] for i in seeds],
    )


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
    # one seed: nothing to estimate a seed variance from, so the example variance alone and a normal reference
    assert r["seed_var"] == 0 and r["df"] == float("inf") and r["example_var"] == pytest.approx(2.5**2, rel=0.1)
    assert r["p_value"] < 1e-20


def test_three_seeds_take_a_t_reference_with_two_degrees_of_freedom():
    """Per-seed differences +4, +6, +8 on a test set where the examples add little: mean 6, seed part
    var(4, 6, 8) / 3 = 4 / 3, so the interval is 6 +- 4.30 * sqrt(4/3 + example part) — not 1.96."""
    rng = np.random.default_rng(2)
    n = 20000

    def run(acc):
        return rng.permutation([1] * int(n * acc) + [0] * (n - int(n * acc)))

    a = [run(0.54), run(0.56), run(0.58)]
    b = [run(0.50)] * 3
    r = _test(a, b, samples=2000)
    assert r["diff"] == pytest.approx(6.0) and r["df"] == 2 and r["seed_var"] == pytest.approx(4 / 3)
    half = 4.302653 * np.sqrt(r["seed_var"] + r["example_var"])
    assert r["ci_high"] - r["diff"] == pytest.approx(half) and half > 4.3 * np.sqrt(4 / 3)
    assert 0.01 < r["p_value"] < 0.05  # t(2) at 6 / 1.2 = 5.0: p 0.038


def test_the_example_part_is_what_seeds_share_not_each_seed_s_own_noise():
    """Three seeds that share nothing example by example (each run's right answers drawn anew): their resampled
    values are uncorrelated, so the example part is near 0 and the seed spread carries the uncertainty; three
    copies of one run share everything: the example part is one run's resampling variance and the seed part 0."""
    rng = np.random.default_rng(3)
    n = 2000
    own = [rng.random(n) < 0.7 for _ in range(3)]
    obs, reps = stats.replicate_scores({i: _acc_stats(c) for i, c in enumerate(own)}, _score_acc, 2000)
    _, seed_part, example_part, df = stats.seed_example_variance(
        [obs[i] for i in range(3)], [reps[i] for i in range(3)]
    )
    one_run = np.var(reps[0], ddof=1)
    assert df == 2 and example_part < 0.1 * one_run
    _, seed_part, example_part, _ = stats.seed_example_variance([obs[0]] * 3, [reps[0]] * 3)
    assert seed_part == 0 and example_part == pytest.approx(one_run, rel=1e-6)


def test_resampling_by_document_draws_whole_documents():
    clusters = ["d1"] * 3 + ["d2"] * 2 + ["d3"] * 5
    for w in next(stats.resample_weights(10, 200, seed=0, clusters=clusters)):
        assert len(set(w[:3])) == 1 and len(set(w[3:5])) == 1 and len(set(w[5:])) == 1
        assert w[0] + w[3] + w[5] == 3  # three documents drawn, with replacement


def test_documents_widen_the_interval_when_their_sentences_agree():
    """20 documents of 25 sentences each, a document right or wrong as a whole: resampling sentences treats 500
    independent examples and understates the spread about 5-fold (sqrt(25)); resampling documents does not."""
    rng = np.random.default_rng(4)
    docs = np.repeat(np.arange(20), 25)
    right = (rng.random(20) < 0.6)[docs]
    obs_s, reps_s = stats.replicate_scores({0: _acc_stats(right)}, _score_acc, 2000)
    obs_d, reps_d = stats.replicate_scores({0: _acc_stats(right)}, _score_acc, 2000, clusters=docs)
    ratio = np.std(reps_d[0]) / np.std(reps_s[0])
    assert 3.5 < ratio < 6.5


def test_calibration_false_positives_at_most_alpha_and_power_reported(capsys):
    """Simulated studies (3 seeds, 500 test examples in 100 documents) with no true difference: the report's test
    calls at most 5 % of them significant at 0.05, at every seed spread; with a true difference of about 10
    accuracy points, the share it finds (its power) is printed. The README's table (+5 points too) comes from
    `python -m biotune.report.calibration`."""
    from biotune.report import calibration

    # 2,000 studies under no difference (Monte-Carlo standard error of a 5 % rate: 0.5 points), 500 for power
    rows = [
        calibration.calibrate(spread, effect, studies=2000 if effect == 0 else 500)
        for spread in calibration.SPREADS
        for effect in (0.0, 0.6)
    ]
    with capsys.disabled():
        print("\n" + calibration.describe(rows))
    for r in rows:
        if r.effect == 0:
            assert r.rejected <= 0.05, r
            assert abs(r.true_diff) < 1.0
        else:
            assert r.true_diff > 4
    power = {(r.spread, r.effect): r.rejected for r in rows}
    assert power[("steady", 0.6)] > 0.5 > power[("wide", 0.6)] > power[("wide", 0.0)]


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
    for method, accs, det in (
        ("zero_shot", [0.5], True),
        ("fft", [0.70, 0.71, 0.70], False),
        ("lora", [0.665, 0.68, 0.675], False),
    ):
        for seed, acc in enumerate(accs):
            out = _write_run(tmp_path / f"{method}{seed}", ids, golds, answers(acc))
            rows.append(
                {
                    "dataset": "pubmedqa",
                    "model": "m",
                    "method": method,
                    "seed": seed,
                    "output_dir": out,
                    "deterministic": det,
                }
            )
    sig, intervals = significance(pd.DataFrame(rows), samples=4000)
    sig = sig.set_index(["a", "b"])
    zf, zl, fl = ("m / zero_shot", "m / fft"), ("m / zero_shot", "m / lora"), ("m / fft", "m / lora")
    assert set(sig.index) == {zf, zl, fl}
    assert sig.loc[zf, "seeds"] == 3  # the one zero-shot run against each fft seed
    assert (sig["n"] == n).all()
    assert sig.loc[zf, "significant"] and sig.loc[zf, "diff"] < -15
    fl = sig.loc[fl]
    assert fl.seeds == 3 and fl.p_holm >= fl.p_value and not fl.significant
    assert sig["p_holm"].tolist() == pytest.approx(stats.holm(sig["p_value"]).tolist())
    assert (sig["significant"] == (sig["p_holm"] < 0.05)).all()
    # each configuration's test score over its seeds, with an interval that holds it
    iv = intervals.set_index("config")
    assert iv.loc["m / fft", "seeds"] == 3 and iv.loc["m / zero_shot", "seeds"] == 1
    assert (iv.ci_low <= iv.score).all() and (iv.score <= iv.ci_high).all()


def test_a_scores_interval_stays_inside_what_its_metric_can_give():
    """A t interval over 3 seeds is wide (critical value 4.30) and symmetric: on BIOSSES' 20 test pairs a Pearson r
    near 0.9 whose seeds differ reached 107 ×100 in the encoder baseline's report. It is cut at the metric's bounds:
    [-100, 100] for a correlation, [0, 100] for an F1 or an accuracy."""
    from biotune.report.compare import compare_runs

    spec = get_spec("biosses")
    rng = np.random.default_rng(0)
    gold = rng.uniform(0, 4, 20)
    ids = [str(i) for i in range(20)]
    runs = {
        ("minilm / fft", seed): {
            i: {"gold": float(g), "prediction": float(g + rng.normal(0, noise))} for i, g in zip(ids, gold)
        }
        for seed, noise in enumerate((0.1, 1.2, 0.1))
    }
    _, [iv] = compare_runs("biosses", runs, {}, spec, samples=200)
    unbounded = stats.seed_example_interval(
        [
            task_for(spec).score_gold(*zip(*[(r["gold"], r["prediction"], i) for i, r in runs[k].items()]))["score"]
            for k in sorted(runs)
        ],
        [np.zeros(200)] * 3,
    )
    assert unbounded["ci_high"] > 100  # the seeds alone carry it past the bound
    assert iv["ci_high"] == 100.0 and -100 < iv["ci_low"] < iv["score"] < 100
    assert task_for(spec).score_range == (-100.0, 100.0)
    assert task_for(get_spec("gad")).score_range == (0.0, 100.0)
