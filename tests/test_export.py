"""`biotune export`: a run's adapter as a standard peft folder, the model with the adapter merged, a fully
fine-tuned model; each loads with plain transformers / peft and gives the run's predictions."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from biotune.config import ExperimentConfig
from biotune.errors import BiotuneError
from biotune.export import export_run
from biotune.io import read_jsonl
from biotune.train import run_experiment
from conftest import TINY_LLAMA

TRAINING = {"max_steps": 3, "batch_size": 2, "train_limit": 6, "dev_limit": 2, "learning_rate": 0.01, "max_length": 192}


def _run(tmp_path, method, **fields):
    cfg = ExperimentConfig(
        dataset="gad",
        model=TINY_LLAMA,
        method={"name": method},
        training=TRAINING,
        eval={"limit": 4},
        output_dir=str(tmp_path / method),
        **fields,
    )
    run_experiment(cfg, progress=False)
    return cfg, tmp_path / method


def _predict(cfg, model, tokenizer):
    """The run's own prediction path (biotune.train._predict) with another model."""
    from biotune.evaluate import evaluate_dataset, prompt_budget
    from biotune.prompting import PromptBuilder

    model.eval()
    _, rows = evaluate_dataset(
        cfg, model, tokenizer, PromptBuilder(tokenizer, prompt_budget(model, cfg)), progress=False
    )
    return rows


def test_the_adapter_and_the_merged_model_load_plainly_and_predict_as_the_run(tmp_path):
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg, run = _run(tmp_path, "lora")
    ran = list(read_jsonl(run / "predictions.jsonl"))

    adapter = export_run(run, tmp_path / "adapter")
    names = {p.name for p in adapter.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "README.md"} <= names
    assert not any(n.endswith(".bin") for n in names)  # no pickles
    card = (adapter / "README.md").read_text()
    assert (
        "GAD" in card
        and "lora" in card
        and f"{json.loads((run / 'metrics.json').read_text())['metrics']['score']:.2f}" in card
    )
    model = AutoPeftModelForCausalLM.from_pretrained(str(adapter))  # the base from adapter_config.json
    rows = _predict(cfg, model, AutoTokenizer.from_pretrained(str(adapter)))
    assert [r["raw_output"] for r in rows] == [r["raw_output"] for r in ran]
    assert [r["prediction"] for r in rows] == [r["prediction"] for r in ran]

    merged_dir = export_run(run, tmp_path / "merged", merge=True)
    assert (merged_dir / "model.safetensors").is_file() and not (merged_dir / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(merged_dir))
    ids = tokenizer(ran[0]["prompt"], return_tensors="pt")
    with torch.no_grad():  # the merge is the adapter's function: the same logits
        assert torch.allclose(merged(**ids).logits, model.eval()(**ids).logits, atol=1e-4)
    assert [r["prediction"] for r in _predict(cfg, merged, tokenizer)] == [r["prediction"] for r in ran]


def test_a_fully_fine_tuned_model_exports_as_one_folder(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg, run = _run(tmp_path, "fft", keep="model")
    out = export_run(run, tmp_path / "fft-out", merge=True)  # nothing to merge: the model itself
    model = AutoModelForCausalLM.from_pretrained(str(out))
    rows = _predict(cfg, model, AutoTokenizer.from_pretrained(str(out)))
    assert [r["raw_output"] for r in rows] == [r["raw_output"] for r in read_jsonl(run / "predictions.jsonl")]


def test_qlora_merges_into_a_bf16_base(tmp_path):
    from transformers import AutoModelForCausalLM

    _, run = _run(tmp_path, "qlora")
    out = export_run(run, tmp_path / "q", merge=True)
    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert model.dtype == torch.bfloat16 and "bf16 base" in (out / "README.md").read_text()


def test_what_cannot_be_exported_is_one_line(tmp_path):
    _, run = _run(tmp_path, "lora", keep="none")
    with pytest.raises(BiotuneError, match="kept no trained weights"):
        export_run(run, tmp_path / "x")
    _, zero = _run(tmp_path, "zero_shot")
    with pytest.raises(BiotuneError, match="trains nothing"):
        export_run(zero, tmp_path / "y")
    _, prompt = _run(tmp_path, "prompt_tuning")
    with pytest.raises(BiotuneError, match="nothing to merge"):
        export_run(prompt, tmp_path / "z", merge=True)
    assert not (tmp_path / "x").exists() and not (tmp_path / "z").exists()
    r = subprocess.run(
        [sys.executable, "-m", "biotune", "export", str(tmp_path / "nosuch"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and "is not a finished run" in r.stderr and "Traceback" not in r.stderr
