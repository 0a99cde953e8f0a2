"""The CUDA path, on a GPU (skipped without one; `benchmarks/gpu_check.sh` runs these first): the device and
precision `auto` picks there and keys results by, LoRA / FFT / QLoRA training and prediction on CUDA, and
packed batches (position ids per example: SDPA, FlashAttention-2 where installed) giving the padded loss. The
data is found where biotune looks (../shared, $BIOTUNE_DATA: the GPU check points it at its kit)."""

import importlib.util

import pytest
import torch

from biotune.identity import identity
from biotune.train import Experiment, run_experiment

from test_fast_paths import config

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")]


def _on_cuda(cfg, **training):
    return cfg.model_copy(update={"device": "auto", "training": cfg.training.model_copy(update=training)})


def test_auto_picks_the_gpu_and_its_precision_and_keys_results_by_it(tmp_path):
    cfg = _on_cuda(config(tmp_path, "auto"), bf16="auto")
    exp = Experiment(cfg, progress=False)
    assert exp.device.type == "cuda"
    assert exp.use_bf16 == torch.cuda.is_bf16_supported()
    resolved = identity(cfg)["experiment"]
    assert resolved["training"]["bf16"] == exp.use_bf16
    assert resolved["model"]["dtype"] == ("bfloat16" if torch.cuda.is_bf16_supported() else "float16")


@pytest.mark.parametrize("method", ["lora", "fft", "qlora"])
def test_a_method_trains_and_predicts_on_cuda(tmp_path, method):
    if method == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
        pytest.skip("QLoRA needs bitsandbytes (its CUDA kernels)")
    cfg = _on_cuda(config(tmp_path, method, method=method, params={} if method == "fft" else {"dropout": 0.0}),
                   bf16="auto", max_steps=8)
    summary = run_experiment(cfg, progress=False)
    curve = [loss for _, loss in summary["training"]["loss_curve"]]
    assert curve[-1] < curve[0], curve  # it learns the training batch
    assert summary["device"].startswith("cuda") and summary["metrics"]["n"] == 6
    assert summary["resources"]["memory_kind"] == "cuda_max_allocated"
    assert summary["resources"]["train_peak_memory_bytes"] > 0


@pytest.mark.parametrize("attention", ["sdpa", "flash_attention_2"])
def test_packed_batches_give_the_padded_loss_on_cuda(tmp_path, attention):
    if attention == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        pytest.skip("flash-attn is not installed")
    from biotune.trainer import CountingTrainer

    losses = {}
    for packing in (False, True):
        cfg = _on_cuda(config(tmp_path, f"{attention}-{packing}", params={"dropout": 0.0}, batch_size=4), bf16=True)
        cfg = cfg.model_copy(update={"runtime": cfg.runtime.model_copy(update={"packing": packing}),
                                     "model": cfg.model.model_copy(update={"attn_implementation": attention})})
        exp = Experiment(cfg, progress=False)
        exp.setup()
        batch = {k: v.to(exp.device) if hasattr(v, "to") else v
                 for k, v in exp.trainer.data_collator(exp.train_features[:4]).items()}
        assert (batch["input_ids"].shape[0] == 1) is packing
        with torch.autocast("cuda", dtype=torch.bfloat16):
            losses[packing] = CountingTrainer.compute_loss(exp.trainer, exp.model.train(), batch).item()
    assert losses[True] == pytest.approx(losses[False], rel=2e-2)  # bf16: the two orders of summation differ
