"""The one definition of a finished run's metrics.json (biotune.summary.RunSummary)."""

import json

import pytest

from biotune.summary import RunSummary

WRITTEN = {  # a metrics.json as Experiment.write writes it (a few fields shortened)
    "name": "gad-smollm2-135m-lora-s0",
    "dataset": "gad",
    "task": "relation",
    "model": "smollm2-135m",
    "family": "causal",
    "method": "lora",
    "seed": 0,
    "identity_hash": "5891a1bcb25bb04e",
    "metrics": {"metric": "micro F1, negative class excluded", "score": 65.39, "n": 534, "n_unparsed": 0},
    "dev": {"score": 67.7, "n": 200, "from": "training"},
    "blurb_comparable": True,
    "resources": {"trainable_params": 2442240, "train_seconds": 1510.2},
    "training": {"global_step": 125},
    "device": "cpu",
    "compute_dtype": "float32",
    "versions": {"biotune": "0.1.0"},
}


def test_a_written_file_reads_back_typed_and_writes_the_same_layout(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps(WRITTEN))
    s = RunSummary.read(tmp_path)
    assert (s.score, s.dev_score, s.method, s.seed) == (65.39, 67.7, "lora", 0)
    assert s["metrics"]["n"] == 534 and s.get("dev")["n"] == 200 and s.get("nothing", 1) == 1  # the JSON keys
    with pytest.raises(KeyError):
        s["nothing"]
    out = tmp_path / "again"
    s.write(out)
    assert json.loads((out / "metrics.json").read_text()) == WRITTEN
    assert RunSummary.exists(out) and not RunSummary.exists(tmp_path / "nowhere")


def test_an_older_file_reads_and_a_newer_ones_fields_are_kept(tmp_path):
    older = {k: v for k, v in WRITTEN.items() if k not in ("task", "dev", "blurb_comparable", "versions")}
    (tmp_path / "metrics.json").write_text(json.dumps({**older, "written_by_a_later_version": [1, 2]}))
    s = RunSummary.read(tmp_path)
    assert s.dev_score is None and s.task is None and s.versions == {}
    assert s["written_by_a_later_version"] == [1, 2] and "written_by_a_later_version" in s
    assert s.as_json()["written_by_a_later_version"] == [1, 2]


def test_only_a_blurb_datasets_official_test_split_is_marked_blurb_comparable(tmp_path):
    """A user's dataset file is never comparable to published BLURB numbers, whatever its split is called (it was
    marked comparable when its split was named test)."""
    import json

    import yaml

    from biotune.config import validate_experiment
    from biotune.train import Experiment

    (tmp_path / "test.jsonl").write_text(json.dumps({"id": "1", "text": "a b", "label": "yes"}) + "\n")
    (tmp_path / "mine.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "mine",
                "task": "relation",
                "labels": ["yes", "no"],
                "negative": "no",
                "source": {"format": "jsonl", "splits": {"test": "test.jsonl"}},
            }
        )
    )

    def written(dataset, name, metrics=None):
        cfg = validate_experiment(
            {
                "dataset": dataset,
                "model": {"family": "causal", "path": "smollm2-135m"},
                "method": {"name": "zero_shot"},
                "output_dir": str(tmp_path / name),
            }
        )
        return Experiment(cfg, progress=False).write(metrics or {"score": 50.0, "n": 1}, [])

    assert written(str(tmp_path / "mine.yaml"), "mine").blurb_comparable is False
    assert written("gad", "gad").blurb_comparable is True  # (a run that did not record the split's size)
    # a fixed part of the test split (eval.limit) is not the split: no BLURB-comparable claim
    assert written("gad", "part", {"score": 50.0, "n": 100, "n_total": 534}).blurb_comparable is False
    assert written("gad", "whole", {"score": 50.0, "n": 534, "n_total": 534}).blurb_comparable is True
