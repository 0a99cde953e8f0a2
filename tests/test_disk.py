"""What a finished run leaves on disk: predictions, metrics, config and what `keep:` says; checkpoints never."""

import pytest

from biotune.config import ExperimentConfig
from biotune.errors import BiotuneError
from biotune.identity import hash_of, identity
from biotune.resources import dir_size
from biotune.study.grid import load_study
from biotune.study.runner import run_study
from biotune.train import run_experiment
from test_study import TINY_LLAMA, write_study

# 4 steps with a dev evaluation and a checkpoint every 2: checkpoints exist while the run trains
TRAINING = {
    "max_steps": 4,
    "batch_size": 2,
    "train_limit": 4,
    "dev_limit": 2,
    "max_length": 160,
    "learning_rate": 0.002,
    "eval_steps": 2,
    "save_steps": 2,
}


def _tiny(tmp_path, method: str, **fields) -> ExperimentConfig:
    model = {k: v for k, v in TINY_LLAMA.items() if k != "name"}
    return ExperimentConfig(
        dataset="gad",
        model=model,
        method={"name": method},
        training=TRAINING,
        eval={"limit": 2},
        output_dir=str(tmp_path / method),
        **fields,
    )


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.iterdir())


@pytest.mark.parametrize(
    "method, keep, kept",
    [
        ("lora", "auto", "adapter"),
        ("fft", "auto", "model"),
        ("zero_shot", "auto", "none"),
        ("lora", "none", "none"),
        ("fft", "none", "none"),
    ],
)
def test_keep_resolves_per_method_and_stays_out_of_the_identity(tmp_path, method, keep, kept):
    cfg = _tiny(tmp_path, method, keep=keep)
    assert cfg.keep == kept
    assert hash_of(identity(cfg)) == hash_of(identity(_tiny(tmp_path, method)))


@pytest.mark.parametrize(
    "method, keep, needle",
    [
        ("fft", "adapter", "fft trains the whole model: keep model or none"),
        ("lora", "model", "lora trains an adapter: keep adapter or none"),
        ("zero_shot", "adapter", "zero_shot trains nothing"),
    ],
)
def test_a_keep_that_does_not_fit_the_method_is_refused(tmp_path, method, keep, needle):
    with pytest.raises(ValueError, match=needle):
        _tiny(tmp_path, method, keep=keep)


def test_a_finished_run_deletes_its_checkpoints_and_keeps_what_keep_says(tmp_path, data_dir):
    lora = run_experiment(_tiny(tmp_path, "lora", data_dir=str(data_dir)), progress=False)
    out = tmp_path / "lora"
    assert lora["training"]["best_checkpoint"]  # checkpoints were written while it trained
    # the kept model's dev predictions stay beside the test predictions (each evaluation's are gone)
    assert _files(out) == [
        "config.yaml",
        "dev_predictions.jsonl",
        "final",
        "identity.json",
        "metrics.json",
        "predictions.jsonl",
    ]
    assert (out / "final" / "adapter_model.safetensors").is_file()
    assert not list((out / "final").glob("model*.safetensors"))  # the adapter only, not the base

    fft = run_experiment(_tiny(tmp_path, "fft", data_dir=str(data_dir), keep="none"), progress=False)
    assert fft["training"]["best_checkpoint"]
    assert _files(tmp_path / "fft") == [
        "config.yaml",
        "dev_predictions.jsonl",
        "identity.json",
        "metrics.json",
        "predictions.jsonl",
    ]

    # killed after its result was written, before the tidying: the rerun finds it finished and tidies
    (out / "checkpoints" / "checkpoint-9").mkdir(parents=True)
    again = run_experiment(_tiny(tmp_path, "lora", data_dir=str(data_dir)), progress=False)
    assert again["metrics"] == lora["metrics"] and again["identity_hash"] == lora["identity_hash"]
    assert not (out / "checkpoints").exists() and (out / "final").is_dir()


def test_a_study_keeps_no_fully_fine_tuned_model_unless_told_and_reports_its_disk_use(tmp_path, data_dir):
    path = write_study(
        tmp_path, methods=["lora", "fft"], data_dir=str(data_dir), defaults={"training": TRAINING, "eval": {"limit": 2}}
    )
    study, cells, _ = load_study(path)
    assert {c.method: c.experiment.keep for c in cells} == {"lora": "adapter", "fft": "none"}
    result = run_study(study, cells)
    assert result["ran"] == 2 and result["failed"] == 0
    folders = {c.method: study.out / "cells" / c.cell_id / c.identity_hash for c in cells}
    assert not list(study.out.rglob("checkpoint-*"))
    assert (folders["lora"] / "final" / "adapter_model.safetensors").is_file()
    assert not (folders["fft"] / "final").exists() and (folders["fft"] / "metrics.json").is_file()
    assert result["disk_bytes"] == dir_size(study.out) and 0 < result["disk_bytes"] < 20e6

    told = write_study(
        tmp_path,
        methods=["fft"],
        data_dir=str(data_dir),
        output_dir=str(tmp_path / "told"),
        defaults={"training": TRAINING, "eval": {"limit": 2}, "keep": "model"},
    )
    _, cells, _ = load_study(told)
    assert cells[0].experiment.keep == "model"
    with pytest.raises(BiotuneError, match="keep"):
        load_study(write_study(tmp_path, methods=["fft"], defaults={"keep": "adapter"}))


def test_checkpoints_off_the_dev_evaluations_are_refused_when_the_file_is_read(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text(
        "dataset: gad\nmodel: {family: causal}\nmethod: {name: lora}\ntraining: {eval_steps: 2, save_steps: 3}\n"
    )
    from biotune.config import load_experiment

    with pytest.raises(BiotuneError, match=r"e.yaml:4: field 'training.save_steps': 3 is not a multiple of eval_st"):
        load_experiment(path)
