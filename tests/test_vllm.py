"""`runtime.generation: vllm` where vLLM cannot run (no vLLM, no GPU, a family or scoring it does not serve): a
one-line error before anything is written; it is outside a result's identity, and a trained cell asked for it
predicts with transformers, its result unchanged. The equality of vLLM's answers with transformers' is checked
on a GPU (tests/test_cuda.py; skipped where vLLM or CUDA is absent)."""

import json

import pytest
import torch

from biotune import vllm_generation
from biotune.errors import BiotuneError
from biotune.identity import identity
from biotune.train import run_experiment
from test_fast_paths import config


def _with(cfg, generation):
    return cfg.model_copy(update={"runtime": cfg.runtime.model_copy(update={"generation": generation})})


def test_asking_for_vllm_where_it_cannot_run_is_a_one_line_error(tmp_path):
    cfg = _with(config(tmp_path, "icl", method="zero_shot"), "vllm")
    if vllm_generation.available() and torch.cuda.is_available():
        pytest.skip("vLLM and a GPU are here: the CUDA test checks the path itself")
    with pytest.raises(BiotuneError) as err:
        run_experiment(cfg, progress=False)
    message = str(err.value)
    assert "\n" not in message and message.startswith("runtime.generation: vllm")
    assert ("not installed" in message) if not vllm_generation.available() else ("CUDA" in message)
    assert "runtime.generation: hf" in message  # the fix
    assert not (tmp_path / "icl" / "metrics.json").exists() and not (tmp_path / "icl" / "predictions.jsonl").exists()


@pytest.mark.parametrize(
    "family, scoring, expected", [("seq2seq", "generate", "decoder-only"), ("causal", "likelihood", "scores options")]
)
def test_vllm_serves_decoder_only_generation_only(family, scoring, expected, monkeypatch):
    monkeypatch.setattr(vllm_generation, "available", lambda: True)  # past the install check, to the next one
    with pytest.raises(BiotuneError, match=expected):
        vllm_generation.check_usable(torch.device("cuda"), family, scoring)
    with pytest.raises(BiotuneError, match="generates on CUDA"):
        vllm_generation.check_usable(torch.device("cpu"), "causal", "generate")


def test_the_generation_backend_is_outside_the_identity(tmp_path):
    cfg = config(tmp_path, "icl", method="zero_shot")
    assert identity(_with(cfg, "vllm")) == identity(cfg)


def test_a_trained_cell_asked_for_vllm_predicts_with_transformers_and_the_same_result(tmp_path):
    results = {}
    for generation in ("hf", "vllm"):
        cfg = _with(config(tmp_path, generation, params={"dropout": 0.0}, max_steps=2), generation)
        summary = run_experiment(cfg, progress=False)
        rows = [json.loads(line) for line in (tmp_path / generation / "predictions.jsonl").read_text().splitlines()]
        results[generation] = (summary["metrics"]["score"], [r["raw_output"] for r in rows])
        assert "generation" not in summary["resources"]
    assert results["vllm"] == results["hf"]
