"""Tracking through the Trainer's own integrations: a real local MLflow file store (no server) and TensorBoard
event files, both read back; a study's cells tagged with study and cell; tracking outside a result's identity."""

from __future__ import annotations

import pytest

from biotune.config import ExperimentConfig
from biotune.identity import hash_of, identity
from biotune.train import run_experiment
from conftest import TINY_LLAMA

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")

TRAINING = {
    "max_steps": 4,
    "batch_size": 2,
    "train_limit": 8,
    "dev_limit": 2,
    "learning_rate": 0.002,
    "max_length": 192,
    "logging_steps": 1,
    "eval_steps": 2,
    "save_steps": 2,
}


def _cfg(tmp_path, report_to, **fields):
    return ExperimentConfig(
        dataset="gad",
        model=TINY_LLAMA,
        method={"name": "lora"},
        training={**TRAINING, "report_to": report_to},
        eval={"limit": 2},
        output_dir=str(tmp_path / "run"),
        **fields,
    )


def test_mlflow_and_tensorboard_receive_the_curve_the_tags_and_the_final_metrics(tmp_path, monkeypatch):
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store behind this switch
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    cfg = _cfg(tmp_path, ["mlflow", "tensorboard"], tags={"study": "s1", "cell": "gad__tiny__lora__s0"})
    summary = run_experiment(cfg, progress=False)

    client = mlflow.tracking.MlflowClient(tracking_uri=store.as_uri())
    [experiment] = [e for e in client.search_experiments() if e.name == "s1"]  # the study names the experiment
    [run] = client.search_runs([experiment.experiment_id])
    tags = run.data.tags
    assert {tags[k] for k in ("dataset", "model", "method", "seed", "study", "cell")} == {
        "gad",
        "smollm2-135m",
        "lora",
        "0",
        "s1",
        "gad__tiny__lora__s0",
    }
    assert tags["identity"] == summary["identity_hash"]
    loss = client.get_metric_history(run.info.run_id, "loss")
    assert len(loss) == 4  # the Trainer's own log, one per step
    metrics = run.data.metrics
    assert metrics["test_score"] == pytest.approx(summary["metrics"]["score"])
    assert metrics["resources_train_seconds"] == pytest.approx(summary["resources"]["train_seconds"])
    assert "eval_loss" in metrics and "dev_score" in metrics

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "eval/loss", "test/score", "resources/train_seconds"} <= scalars
    assert events.Scalars("test/score")[-1].value == pytest.approx(summary["metrics"]["score"], rel=1e-6)
    assert len(events.Scalars("train/loss")) == 4


def test_tracking_is_outside_a_results_identity(tmp_path):
    plain = identity(_cfg(tmp_path, []))
    tracked = identity(_cfg(tmp_path, ["mlflow", "tensorboard"], tags={"study": "x"}))
    assert hash_of(plain) == hash_of(tracked)


def test_a_study_tags_each_cell(tmp_path):
    from biotune.study.grid import StudyConfig, expand

    study = StudyConfig(
        name="tagged",
        datasets=["gad"],
        models=[{**TINY_LLAMA, "name": "tiny"}],
        methods=["zero_shot", "lora"],
        seeds=[0],
        output_dir=str(tmp_path / "s"),
        defaults={"training": {**TRAINING, "report_to": ["mlflow"]}},
    )
    cells, _, _ = expand(study)
    assert [c.experiment.tags for c in cells] == [{"study": "tagged", "cell": c.cell_id} for c in cells]
    assert all(c.experiment.training.report_to == ["mlflow"] for c in cells)


def test_an_unknown_tracker_is_refused_naming_the_field(tmp_path):
    with pytest.raises(ValueError, match="report_to"):
        _cfg(tmp_path, ["neptune"])
