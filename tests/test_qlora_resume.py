"""QLoRA on the real SmolLM2 (4-bit base), and kill-and-resume of a real `biotune run` subprocess."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from biotune.config import validate_experiment
from biotune.io import read_jsonl
from biotune.resources import weight_bytes
from biotune.train import Experiment
from conftest import TINY_LLAMA


@pytest.mark.model
def test_qlora_base_is_4bit_smaller_and_trains(tmp_path, data_dir):
    import bitsandbytes as bnb

    def config(method):
        return validate_experiment(
            {
                "dataset": "gad",
                "model": {"family": "causal", "path": "smollm2-135m"},
                "method": {"name": method},
                "training": {
                    "max_steps": 3,
                    "batch_size": 2,
                    "train_limit": 6,
                    "dev_limit": 2,
                    "logging_steps": 1,
                    "max_length": 160,
                },  # bf16 where the CPU has it (emulated, 300x slower, where not)
                "eval": {"limit": 2},
                "output_dir": str(tmp_path / method),
                "data_dir": str(data_dir),
            }
        )

    q = Experiment(config("qlora"), progress=False)
    q.setup()
    linears = [m for n, m in q.model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(linears) == 30 * 7  # q, k, v, o, gate, up, down in each of the 30 layers
    for layer in linears:
        w = layer.weight
        assert w.dtype == torch.uint8 and w.quant_state.quant_type == "nf4"
        assert w.numel() * 2 == torch.Size(w.quant_state.shape).numel()  # two 4-bit weights per byte
        assert not w.requires_grad
    # LoRA adapters on top, trained
    assert 0 < q.resources["trainable_params"] < 0.05 * q.resources["total_params"]
    assert q.resources["total_params"] == 134_515_008 + q.resources["trainable_params"]  # real count, not packed

    from biotune.models import FAMILIES

    fam = FAMILIES.get("causal")
    # the same base unquantized, in the compute dtype the QLoRA base keeps its other weights in (bf16 where the CPU
    # has it, else fp32)
    full, _ = fam.load(q.cfg.model, q.spec, "lm", torch.device("cpu"), q.compute_dtype)
    size = torch.finfo(q.compute_dtype).bits // 8
    embedding = full.model.embed_tokens.weight.numel() * size  # not quantized (tied with the LM head)
    # measured 0.414 in bf16: the 4-bit linear layers take ~0.26x of their bf16 bytes (~0.13x of fp32), the
    # embedding dominates the rest
    assert q.base_weight_bytes < 0.45 * weight_bytes(full)
    assert q.base_weight_bytes - embedding < 0.3 * (weight_bytes(full) - embedding)
    del full

    q.train()
    curve = q.train_info["loss_curve"]
    assert len(curve) == 3 and all(torch.isfinite(torch.tensor(loss)) for _, loss in curve)
    summary = q.write(*q.predict())
    assert summary["metrics"]["n"] == 2


RESUME = {
    "dataset": "gad",
    "model": TINY_LLAMA,
    "method": {"name": "lora"},
    "training": {
        "max_steps": 30,
        "batch_size": 4,
        "train_limit": 64,
        "dev_limit": 8,
        "save_steps": 10,
        "learning_rate": 0.002,
        "max_length": 192,
        "logging_steps": 5,
        "save_total_limit": 10,
    },
    "eval": {"limit": 6},
}


def _run(cfg_path):
    return subprocess.Popen(
        [sys.executable, "-m", "biotune", "run", str(cfg_path), "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_run_resumes_to_the_same_result(tmp_path, data_dir):
    import yaml

    def write(name):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**RESUME, "output_dir": str(tmp_path / name), "data_dir": str(data_dir)}))
        return path

    from biotune.config import load_experiment
    from biotune.train import run_experiment

    run_experiment(load_experiment(write("straight")), progress=False)  # here: the same code as `biotune run`'s

    killed_cfg = write("killed")
    proc = _run(killed_cfg)
    ckpt = tmp_path / "killed" / "checkpoints" / "checkpoint-10" / "trainer_state.json"
    deadline = time.time() + 600
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "metrics.json").exists()

    run_experiment(load_experiment(killed_cfg), progress=False)  # resumes, in this process
    a = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    b = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert b["training"]["resumed_from"] is not None and a["training"]["resumed_from"] is None
    assert b["metrics"] == a["metrics"]
    # the resumed run's tokens are the whole run's (the Trainer's count comes back with the checkpoint)
    assert b["resources"]["train_tokens"] == a["resources"]["train_tokens"] > 0
    assert b["resources"]["train_tokens_per_s"] > 0
    assert b["training"]["best_dev_loss"] == pytest.approx(a["training"]["best_dev_loss"], rel=1e-6)
    resumed_steps = {s for s, _ in b["training"]["loss_curve"]}
    for step, loss in a["training"]["loss_curve"]:
        if step in resumed_steps:
            assert dict(b["training"]["loss_curve"])[step] == pytest.approx(loss, rel=1e-5)
    assert read_jsonl(tmp_path / "killed" / "predictions.jsonl") == read_jsonl(
        tmp_path / "straight" / "predictions.jsonl"
    )
