"""The answer: the cheapest configuration dev cannot tell apart from the dev-best, the sentence that says when dev
cannot decide, and test comparisons across models and with the best constant answer (constructed runs on GAD)."""

import json

import numpy as np
import pandas as pd
import pytest

from biotune.report import stats
from biotune.report.answer import dev_decisions, needed
from biotune.report.compare import constant_baselines, significance
from biotune.report.verdict import answer


def _write(folder, name, ids, golds, preds):
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"id": i, "gold": g, "prediction": p} for i, g, p in zip(ids, golds, preds)]
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def _answers(rng, golds, acc):
    right = rng.random(len(golds)) < acc
    return [g if r else ("0" if g == "1" else "1") for g, r in zip(golds, right)]


def _study(tmp_path, configs, n_dev, n_test=400, seeds=(0, 1, 2)):
    """GAD-style runs (labels '1' / '0', F1 of '1'): configs = {(model, method): (dev acc, test acc, cost s)}."""
    rng = np.random.default_rng(0)
    dev_ids, test_ids = [f"d{i}" for i in range(n_dev)], [str(i) for i in range(n_test)]
    dev_gold = list(rng.choice(["1", "0"], n_dev, p=[0.6, 0.4]))
    test_gold = list(rng.choice(["1", "0"], n_test, p=[0.6, 0.4]))
    rows = []
    for (model, method), (dev_acc, test_acc, cost) in configs.items():
        for seed in seeds:
            out = tmp_path / f"{model}_{method}_{seed}"
            dev_pred, test_pred = _answers(rng, dev_gold, dev_acc), _answers(rng, test_gold, test_acc)
            _write(out, "dev_predictions.jsonl", dev_ids, dev_gold, dev_pred)
            _write(out, "predictions.jsonl", test_ids, test_gold, test_pred)
            f1 = lambda g, p: (
                100
                * 2
                * sum(a == b == "1" for a, b in zip(g, p))
                / (  # noqa: E731
                    sum(x == "1" for x in g) + sum(x == "1" for x in p)
                )
            )
            rows.append(
                {
                    "dataset": "gad",
                    "task": "relation",
                    "model": model,
                    "method": method,
                    "seed": seed,
                    "score": f1(test_gold, test_pred),
                    "dev_score": f1(dev_gold, dev_pred),
                    "search_seconds": 0.0,
                    "trainable_params": 1,
                    "peak_memory_mb": 100.0,
                    "train_seconds": cost,
                    "eval_seconds": 0.0,
                    "trains": True,
                    "deterministic": False,
                    "output_dir": str(out),
                    "n_unparsed": 0,
                    "n_test": n_test,
                }
            )
    df = pd.DataFrame(rows)
    return df, stats.aggregate(df)


def test_when_dev_cannot_decide_the_cheapest_tied_configuration_is_recommended_and_the_answer_says_so(tmp_path):
    """20 dev examples: a large model's LoRA a little ahead of a small encoder on dev, at ten times the compute.
    Dev cannot separate them, so the encoder is recommended, and the sentence says what would decide."""
    df, agg = _study(tmp_path, {("llm", "lora"): (0.80, 0.75, 1000.0), ("bert", "fft"): (0.75, 0.80, 100.0)}, 20)
    dec = dev_decisions(df, agg, samples=1000)["gad"]
    assert dec["best"] == "llm / lora" and dec["tied"] == ["bert / fft"] and dec["recommended"] == "bert / fft"
    r = dec["comparisons"]["bert / fft"]
    assert r["ci_low"] < 0 < r["ci_high"] and r["basis"] == "dev examples and seeds" and r["n"] == 20
    s = dec["sentence"]
    assert s.startswith("Dev cannot decide: llm / lora (the best on dev")
    assert "the cheapest of them, bert / fft (100 s of compute against 1,000 s), is recommended" in s
    assert "would take about" in s and ("dev examples (now 20)" in s or "seeds (now 3)" in s)


def test_when_dev_decides_the_best_on_dev_is_recommended_even_if_dearer(tmp_path):
    df, agg = _study(tmp_path, {("llm", "lora"): (0.95, 0.9, 1000.0), ("bert", "fft"): (0.6, 0.6, 100.0)}, 1000)
    dec = dev_decisions(df, agg, samples=1000)["gad"]
    assert dec["recommended"] == dec["best"] == "llm / lora" and dec["tied"] == []
    assert dec["sentence"].startswith("Dev decides: llm / lora") and "bert / fft, by +" in dec["sentence"]


def test_without_dev_predictions_the_per_seed_dev_scores_decide_and_the_basis_is_named(tmp_path):
    df, agg = _study(tmp_path, {("llm", "lora"): (0.95, 0.9, 1000.0), ("bert", "fft"): (0.6, 0.6, 100.0)}, 300)
    for out in df.output_dir:
        (tmp_path / out / "dev_predictions.jsonl").unlink()
    r = dev_decisions(df, agg, samples=500)["gad"]["comparisons"]["bert / fft"]
    assert r["basis"] == "per-seed dev scores only (no dev predictions stored)" and r["example_var"] == 0


def test_needed_dev_examples_and_seeds_grow_as_the_difference_shrinks():
    big, _ = needed(5.0, 0.0, 4.0, 3, 100)
    small, _ = needed(2.0, 0.0, 4.0, 3, 100)
    assert small > big > 100
    # a seed spread alone too wide at 3 seeds: more seeds decide, more examples cannot
    examples, seeds = needed(2.0, 4.0, 0.0, 3, 100)
    assert examples is None and seeds > 3
    assert needed(0.0, 1.0, 1.0, 3, 100) == (None, None)


def test_test_comparisons_go_across_models_and_against_the_constant_answer(tmp_path):
    """Every configuration against every other on the dataset, across models, and against always answering '1';
    the answer row names which it is better or worse than (Holm) and its difference from that constant."""
    df, agg = _study(tmp_path, {("llm", "lora"): (0.7, 0.55, 1000.0), ("bert", "fft"): (0.9, 0.92, 100.0)}, 300)
    constants = constant_baselines(df)
    assert constants["gad"][1] == "1" and constants["gad"][0] > 70  # 60 % positives: F1 of always '1' about 75
    sig, intervals = significance(df, samples=1000, constants=constants)
    assert sorted(zip(sig.a, sig.b)) == [
        ("bert / fft", "constant '1'"),
        ("llm / lora", "bert / fft"),
        ("llm / lora", "constant '1'"),
    ]
    decisions = dev_decisions(df, agg, samples=1000)
    table, verdicts = answer(agg, decisions, sig, intervals, [], constants)
    lead = table.iloc[0]
    assert lead["recommended (on dev)"] == "bert / fft"
    assert "Better on test than llm / lora (Holm)." in verdicts["gad"]
    assert lead["vs best constant (test)"].startswith("+") and " * vs always '1'" in lead["vs best constant (test)"]
    assert "Against answering '1' every time" in verdicts["gad"] and "significant." in verdicts["gad"]
    below = sig[(sig.a == "llm / lora") & (sig.b == "constant '1'")].iloc[0]
    assert below["diff"] < 0 and below["significant"]  # a model below the constant answer is shown to be


def test_a_constant_answer_that_scores_nothing_is_not_compared(tmp_path):
    df, _ = _study(tmp_path, {("bert", "fft"): (0.9, 0.9, 1.0)}, 10, seeds=(0,))
    for out in df.output_dir:  # every gold '0': the F1 of '1' of any constant is 0
        p = tmp_path / out / "predictions.jsonl"
        rows = [dict(json.loads(line), gold="0") for line in p.read_text().splitlines()]
        p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert constant_baselines(df) == {}


@pytest.mark.parametrize(
    "spec_name, ids, units", [("chemprot", ["1.T1.T2", "1.T3.T4", "2.T1.T2"], 2), ("gad", ["0", "1", "2"], 3)]
)
def test_significance_resamples_documents_where_the_ids_name_them(tmp_path, spec_name, ids, units):
    golds = ["false", "CPR:3", "CPR:4"] if spec_name == "chemprot" else ["1", "0", "1"]
    rows = []
    for method, seed in (("a", 0), ("b", 0)):
        out = tmp_path / f"{method}{seed}"
        _write(out, "predictions.jsonl", ids, golds, golds)
        rows.append(
            {
                "dataset": spec_name,
                "model": "m",
                "method": method,
                "seed": seed,
                "output_dir": str(out),
                "deterministic": True,
            }
        )
    sig, _ = significance(pd.DataFrame(rows), samples=200)
    assert sig.units.tolist() == [units]
    assert sig.resampled.tolist() == ["documents" if spec_name == "chemprot" else "examples"]


def test_a_configuration_not_told_apart_is_named_with_its_numbers_and_the_lead_says_what_holm_covers(tmp_path):
    """A difference Holm does not let through is given with its size, interval and p before and after Holm (a large
    one then reads as large, not as equal); the answer's lead counts the comparisons and the seeds each t has."""
    import re
    from types import SimpleNamespace

    from biotune.report.sections import LEAD_TEXT, lead_text

    df, agg = _study(tmp_path, {("llm", "lora"): (0.8, 0.8, 1000.0), ("bert", "fft"): (0.8, 0.81, 100.0)}, 300)
    constants = constant_baselines(df)
    sig, intervals = significance(df, samples=1000, constants=constants)
    _, verdicts = answer(agg, dev_decisions(df, agg, samples=1000), sig, intervals, [], constants)
    pair = sig[(sig.a == "llm / lora") & (sig.b == "bert / fft")].iloc[0]
    assert not pair["significant"]
    rec = "bert / fft" if "bert / fft: " in verdicts["gad"] else "llm / lora"
    other, diff, lo, hi = ("llm / lora", -pair["diff"], -pair["ci_high"], -pair["ci_low"])
    if rec == "llm / lora":
        other, diff, lo, hi = "bert / fft", pair["diff"], pair["ci_low"], pair["ci_high"]
    said = re.search(rf"Not told apart on test from {re.escape(other)} \(([^)]*)\)", verdicts["gad"])
    assert said, verdicts["gad"]
    assert said[1] == f"{diff:+.2f} [{lo:.2f}, {hi:.2f}], p {pair['p_value']:.2g}, {pair['p_holm']:.2g} after Holm"
    lead = lead_text(SimpleNamespace(sig=sig))
    assert lead.startswith(LEAD_TEXT) and f"Significance: {len(sig)} comparisons here" in lead
    assert "each a t over 3 paired seed differences" in lead
    assert lead_text(SimpleNamespace(sig=sig.iloc[:0])) == LEAD_TEXT
