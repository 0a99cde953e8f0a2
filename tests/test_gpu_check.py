"""benchmarks/gpu_check.py, the GPU check, runs its steps end to end at tiny shapes on this machine: the kit it
carries to the GPU machine (GAD, the SmolLM2 tokenizer), the package report, and LoRA / QLoRA / FFT through
`biotune run` with the planner beside each (on CUDA it adds the CUDA tests and the planner's errors)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.extended  # three `biotune run` processes, as on the GPU machine: CI's `-m extended` run
def test_the_gpu_check_runs_its_steps_at_tiny_shapes(tmp_path):
    kit, out = tmp_path / "kit", tmp_path / "check.json"
    check = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--kit-dir", str(kit)]
    subprocess.run([*check, "--kit"], check=True, capture_output=True, text=True, timeout=300)
    assert (kit / "tokenizer" / "tokenizer.json").is_file() and (kit / "blurb" / "GAD" / "test.tsv").is_file()
    assert sum(p.stat().st_size for p in kit.rglob("*") if p.is_file()) < 8e6  # travels with the working tree
    r = subprocess.run([*check, "--small", "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["packages"]["torch"] and "datasets" in result["packages"]
    assert set(result["train"]) == {"tiny/lora", "tiny/qlora", "tiny/fft"}
    for name, case in result["train"].items():
        m, p = case["measured"], case["planned"]
        assert m["device"] == "cpu" and m["peak_bytes"] > 0 and m["train_tokens_per_s"] > 0
        assert m["trainable_params"] == p["trainable_params"], name  # the planner counts what trains
    assert (
        result["train"]["tiny/fft"]["measured"]["trainable_params"]
        > 100 * result["train"]["tiny/lora"]["measured"]["trainable_params"]
    )
