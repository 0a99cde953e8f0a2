"""The plan corrected by what runs that finished on this machine took against it (biotune.plan.calibration)."""

from __future__ import annotations

import dataclasses
import json
import os
import re

import pytest

from biotune.config import ExperimentConfig
from biotune.plan import accelerator, calibration, plan_experiment
from biotune.plan.calibration import Kind
from biotune.plan.planner import learn
from conftest import cli_here

HERE = dataclasses.replace(accelerator("a100-80gb"), name="this GPU (test)", here=True)
SMOL_LORA = Kind("smollm2-135m", "lora", "gad", "causal")


def _cfg(method="lora", path="meta-llama/Meta-Llama-3-8B-Instruct"):
    return ExperimentConfig(dataset="gad", model={"family": "causal", "path": path}, method={"name": method})


def _runs(acc, kind, ratios, part="training", planned=100.0, start=0):
    for i, ratio in enumerate(ratios, start):
        calibration.record(acc, kind, f"run{i}", {part: planned}, {part: planned * ratio})


def test_the_correction_is_the_median_of_the_closest_kind_of_run_on_this_machine():
    _runs(HERE, SMOL_LORA, [2.0, 3.0, 10.0])  # one run slowed by something beside it does not move the median
    c = calibration.correction(HERE, SMOL_LORA, "training")
    assert (c.factor, c.runs, c.basis) == (3.0, 3, "smollm2-135m lora gad")
    assert c.words("training") == "training x3 (3 smollm2-135m lora gad runs)"
    # the closest kind that ran here: the same model on the same dataset (another method), the same model and
    # method (another dataset), the model, its family; a family none of whose runs finished here: nothing
    _runs(HERE, Kind("smollm2-135m", "fft", "ncbi-disease", "causal"), [5.0], start=10)
    closest = {
        Kind("smollm2-135m", "qlora", "ncbi-disease", "causal"): (5.0, "smollm2-135m ncbi-disease"),
        Kind("smollm2-135m", "lora", "hoc", "causal"): (3.0, "smollm2-135m lora"),
        Kind("smollm2-135m", "qlora", "hoc", "causal"): (4.0, "smollm2-135m"),  # the median of 2, 3, 10, 5
        Kind("llama-8b", "lora", "gad", "causal"): (4.0, "causal-family"),
    }
    for kind, (factor, basis) in closest.items():
        c = calibration.correction(HERE, kind, "training")
        assert (c.factor, c.basis) == (factor, basis), kind
    assert calibration.correction(HERE, Kind("minilm", "fft", "gad", "encoder"), "training") is None
    # another part, another machine: nothing learned
    assert calibration.correction(HERE, SMOL_LORA, "prediction") is None
    assert calibration.correction(dataclasses.replace(HERE, name="this CPU (other)"), SMOL_LORA, "training") is None


def test_the_last_runs_count_a_run_recorded_again_replaces_itself_and_short_parts_are_not_learned():
    _runs(HERE, SMOL_LORA, [1.0] * 5 + [4.0] * calibration.KEEP)  # the older five fall out of the window
    c = calibration.correction(HERE, SMOL_LORA, "training")
    assert (c.factor, c.runs) == (4.0, calibration.KEEP)
    _runs(HERE, SMOL_LORA, [2.0], start=13)  # run13 again, another time
    known = json.loads(calibration.path().read_text())[calibration.machine_key(HERE)]
    assert len(known) == 5 + calibration.KEEP and known[-1]["id"] == "run13" and known[-1]["took"] == 200.0
    assert sum(e["id"] == "run13" for e in known) == 1
    # a part planned under MIN_PLANNED (mostly loading and set-up, which the planner does not model) teaches nothing
    short = {"training": calibration.MIN_PLANNED - 1, "prediction": 0.0}
    assert calibration.record(HERE, SMOL_LORA, "short", short, {"training": 60.0, "prediction": 9.0}) == 0
    ok = {"training": calibration.MIN_PLANNED, "prediction": 2.0}
    assert calibration.record(HERE, SMOL_LORA, "ok", ok, {"training": 60.0, "prediction": 9.0}) == 1


def test_the_runs_nearest_in_size_decide():
    """Small runs carry a fixed cost the planner does not model: a long run's plan is corrected by the long runs."""
    _runs(HERE, SMOL_LORA, [3.0] * 6, planned=40.0)  # short runs, slowed by loading and set-up
    _runs(HERE, SMOL_LORA, [1.0] * calibration.KEEP, planned=4000.0, start=6)
    _runs(HERE, SMOL_LORA, [3.0] * 6, planned=40.0, start=20)
    near = lambda seconds: calibration.correction(HERE, SMOL_LORA, "training", near=seconds).factor  # noqa: E731
    assert near(3000.0) == 1.0 and near(50.0) == 3.0
    assert calibration.correction(HERE, SMOL_LORA, "training").factor == 3.0  # no size given: the last KEEP


def test_a_plan_for_this_machine_is_corrected_per_part_and_a_plan_for_another_machine_is_not():
    cfg = _cfg()
    kind = Kind.of(cfg)
    assert kind == Kind("meta-llama/Meta-Llama-3-8B-Instruct", "lora", "gad", "causal")
    raw = plan_experiment(cfg, HERE, suggest=False)
    assert raw.corrections == {} and not any(n.startswith("time corrected") for n in raw.notes)
    _runs(HERE, kind, [2.0], "training")
    _runs(HERE, kind, [4.0], "prediction", start=1)
    p = plan_experiment(cfg, HERE, suggest=False)
    assert p.train_seconds == pytest.approx(2 * raw.train_seconds)
    assert p.dev_seconds == pytest.approx(2 * raw.dev_seconds)  # dev evaluations are part of training
    assert p.eval_seconds == pytest.approx(4 * raw.eval_seconds)
    assert p.uncorrected_parts() == pytest.approx(raw.parts())
    assert p.peak_bytes == raw.peak_bytes and p.train_flops == raw.train_flops  # only time is corrected
    assert (
        "time corrected by what runs that finished on this machine took against their plan: training x2 (1 "
        "meta-llama/Meta-Llama-3-8B-Instruct lora gad run), prediction x4 (1 meta-llama/Meta-Llama-3-8B-Instruct "
        "lora gad run)"
    ) in p.notes
    # the same GPU from the table (a plan for another machine) is never corrected
    table = plan_experiment(cfg, accelerator("a100-80gb"), suggest=False)
    assert table.seconds == pytest.approx(raw.seconds) and table.corrections == {}
    # an in-context run: its dev and test prediction take the prediction factor; there is no training to correct
    icl_raw = plan_experiment(_cfg("few_shot"), accelerator("a100-80gb"), suggest=False)
    icl = plan_experiment(_cfg("few_shot"), HERE, suggest=False)  # learned from the model's lora runs
    assert icl.parts()["prediction"] == pytest.approx(4 * icl_raw.parts()["prediction"])
    assert set(icl.corrections) == {"prediction"} and icl.corrections["prediction"].basis == f"{kind.model} gad"


def test_a_ratio_learned_against_the_planner_s_older_arithmetic_is_not_read():
    """Prediction's arithmetic changed (a CPU's decoding steps bound by its measured weight-read rates): a ratio
    recorded before, against the compute-bound plan, would correct the new plan wrongly, so it is not read;
    training's arithmetic did not change, so its ratios still are."""
    kind = SMOL_LORA
    assert calibration.ARITHMETIC == {"training": 1, "prediction": 2}
    before = dict(model=kind.model, method=kind.method, dataset=kind.dataset, family=kind.family, planned=100.0)
    known = {
        calibration.machine_key(HERE): [
            {"id": "old", "part": "prediction", "took": 140.0, **before},  # no "arithmetic": recorded before it
            {"id": "old", "part": "training", "took": 70.0, **before},
        ]
    }
    assert calibration.correction(HERE, kind, "prediction", known) is None
    assert calibration.correction(HERE, kind, "training", known).factor == pytest.approx(0.7)
    _runs(HERE, kind, [1.1], "prediction")  # recorded now, under the current arithmetic
    entry = json.loads(calibration.path().read_text())[calibration.machine_key(HERE)][0]
    assert entry["arithmetic"] == 2
    assert calibration.correction(HERE, kind, "prediction").factor == pytest.approx(1.1)


def test_a_finished_run_teaches_its_uncorrected_plan_and_a_paused_candidate_its_training_to_the_rung(monkeypatch):
    monkeypatch.setattr(calibration, "MIN_PLANNED", 0.0)  # the 8B plan's test prediction on this GPU is short
    cfg = _cfg()
    _runs(HERE, Kind.of(cfg), [3.0], "training", planned=50.0, start=100)
    plan = plan_experiment(cfg, HERE, suggest=False)  # already corrected x3 for training
    raw = plan.uncorrected_parts()
    learn(plan, cfg, HERE, "final", {"train_seconds": 700.0, "eval_seconds": 90.0})
    learn(plan, cfg, HERE, "cand@0.25", {"train_seconds": 60.0}, fraction=0.25)
    learn(plan, cfg, accelerator("a100-80gb"), "elsewhere", {"train_seconds": 60.0})  # not this machine
    known = {(e["id"], e["part"]): e for e in json.loads(calibration.path().read_text())[calibration.machine_key(HERE)]}
    assert set(known) == {
        ("run100", "training"),
        ("final", "training"),
        ("final", "prediction"),
        ("cand@0.25", "training"),
    }
    assert known["final", "training"]["planned"] == pytest.approx(raw["training"], rel=1e-4)
    assert known["final", "training"]["took"] == 700.0 and known["final", "prediction"]["took"] == 90.0
    assert known["cand@0.25", "training"]["planned"] == pytest.approx(raw["training"] / 4, rel=1e-4)


def test_a_run_on_this_machine_teaches_the_next_runs_plan(tmp_path, monkeypatch):
    """End to end through `biotune run`: the first run records its time against its plan; the plan the second
    one prints is the planner's, times what the first took against it."""
    monkeypatch.setattr(calibration, "MIN_PLANNED", 0.0)  # a tiny run's seconds teach here
    on = {"BIOTUNE_ESTIMATE": "1"}
    first = cli_here("run", "configs/causal/tiny-llama_lora.yaml", "-o", tmp_path / "a", "--no-progress", env=on)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "corrected" not in first.stdout
    [machine] = json.loads(calibration.path().read_text())
    entries = {e["part"]: e for e in json.loads(calibration.path().read_text())[machine]}
    [metrics] = (tmp_path / "a").rglob("metrics.json")  # the run's summary
    summary = json.loads(metrics.read_text())
    assert {e["id"] for e in entries.values()} == {summary["identity_hash"]}
    assert entries["training"]["took"] == pytest.approx(summary["resources"]["train_seconds"], abs=1e-3)
    assert entries["prediction"]["took"] == pytest.approx(summary["resources"]["eval_seconds"], abs=1e-3)
    second = cli_here("run", "configs/causal/tiny-llama_lora.yaml", "-o", tmp_path / "b", "--no-progress", env=on)
    assert second.returncode == 0, second.stderr[-2000:]
    [before] = [line for line in second.stdout.splitlines() if line.startswith("plan on this CPU (")]
    ratios = {k: e["took"] / e["planned"] for k, e in entries.items()}
    words = re.search(
        r"corrected by this machine's finished runs: training x(\S+) \(1 smollm2-135m \(random init\) lora gad run\), "
        r"prediction x(\S+) \(1 smollm2-135m \(random init\) lora gad run\)$",
        before,
    )
    assert words, before
    assert float(words[1]) == pytest.approx(ratios["training"], rel=0.06)
    assert float(words[2]) == pytest.approx(ratios["prediction"], rel=0.06)
    assert os.environ["BIOTUNE_CALIBRATION_FILE"] == str(calibration.path())
