"""One experiment on 2 processes through `accelerate launch` (DDP, gloo on CPU) follows the same loss curve as
1 process with the same global batch, and only the main process writes the results; an FSDP config on CPUs
runs as data parallelism and says so."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli_here

pytestmark = pytest.mark.extended  # processes started by accelerate launch: CI's `-m extended` run

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "configs" / "causal" / "tiny-llama_lora.yaml"
# fp32 (no bf16 autocast) so the only difference between the runs is how the batch is split over processes
# and no length grouping: its groups are formed per process batch, so they differ between 1 and 2 processes
COMMON = [
    "--set",
    "method.params.dropout=0",
    "--set",
    "training.bf16=false",
    "--set",
    "training.logging_steps=1",
    "--set",
    "training.group_by_length=false",
    "--no-progress",
]
TOLERANCE = 1e-4  # absolute, per logged training loss (measured difference: about 1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd, tmp_path):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    return r


@pytest.mark.parametrize("processes", [2])
def test_two_process_ddp_matches_one_process(tmp_path, data_dir, processes):
    one, two = tmp_path / "one", tmp_path / "two"
    r = cli_here(
        "run",
        str(EXPERIMENT),
        "-o",
        str(one),
        "--set",
        f"data_dir={data_dir}",  # 1 process: this one
        "--set",
        "training.batch_size=4",
        *COMMON,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    r = _run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(ROOT / "configs" / "distributed" / "ddp_cpu.yaml"),
            "--num_processes",
            str(processes),
            "--main_process_port",
            str(_free_port()),
            "-m",
            "biotune",
            "run",
            str(EXPERIMENT),
            "-o",
            str(two),
            "--set",
            f"data_dir={data_dir}",
            "--set",
            f"training.batch_size={4 // processes}",
            *COMMON,
        ],
        tmp_path,
    )
    assert r.stderr.count("loading smollm2-135m") == processes  # both processes really ran
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert b["resources"]["processes"] == processes and a["resources"]["processes"] == 1
    assert (a["resources"]["parallelism"], b["resources"]["parallelism"]) == ("NO", "MULTI_CPU")
    curve_a, curve_b = a["training"]["loss_curve"], b["training"]["loss_curve"]
    assert len(curve_a) == len(curve_b) == a["training"]["steps"] == 8
    assert [s for s, _ in curve_a] == [s for s, _ in curve_b]
    diffs = [abs(x - y) for (_, x), (_, y) in zip(curve_a, curve_b)]
    assert max(diffs) < TOLERANCE, diffs
    assert curve_a[-1][1] < curve_a[0][1]  # and it did learn
    # the same examples were seen: the global batch is the same, tokens counted over both processes
    assert a["resources"]["train_tokens"] == b["resources"]["train_tokens"]
    # one set of results, written by the main process
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert len((two / "predictions.jsonl").read_text().splitlines()) == a["metrics"]["n"]


def test_an_fsdp_config_on_cpus_says_it_runs_as_data_parallel(tmp_path, data_dir):
    """configs/distributed/fsdp.yaml launches; on CPUs accelerate applies no FSDP (plain data parallelism over
    gloo): the run says so and records what was applied, so nobody reads a CPU run as an FSDP one."""
    out = tmp_path / "fsdp"
    r = _run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(ROOT / "configs" / "distributed" / "fsdp.yaml"),
            "--num_processes",
            "2",
            "--mixed_precision",
            "no",
            "--main_process_port",
            str(_free_port()),
            "-m",
            "biotune",
            "run",
            str(EXPERIMENT),
            "-o",
            str(out),
            "--set",
            f"data_dir={data_dir}",
            "--set",
            "method.name=fft",
            "--set",
            "training.max_steps=2",
            "--set",
            "training.batch_size=2",
            *COMMON[2:],
        ],  # full fine-tuning has no LoRA dropout
        tmp_path,
    )
    assert "FSDP was asked for (accelerate config) but is not applied on cpu: training runs as MULTI_CPU" in r.stderr
    res = json.loads((out / "metrics.json").read_text())["resources"]
    assert (res["processes"], res["parallelism"]) == (2, "MULTI_CPU")
