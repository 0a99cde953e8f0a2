"""The machine a plan is made for when no GPU is named (`--plan` alone, and the estimate `biotune run` and
`biotune study` print before they start): the visible GPU — from the GPU table where its name is there, else
measured — or this CPU, its matmul peak and the rate a decoding step reads weights at measured once and cached
(`$BIOTUNE_CACHE/machine-peak.json`, keyed by processor, threads and torch version: a new torch or another thread
count measures again; `$BIOTUNE_PEAK_FILE` names another file)."""

from __future__ import annotations

import json
import math
import os
import re
import time
from functools import cache
from pathlib import Path

import psutil
import torch

from biotune.data.location import cache_dir
from biotune.io import atomic_write_json
from biotune.runtime import cpu_has_bf16

from .gpus import Accelerator, gpu_table

PEAK_FILE = "machine-peak.json"
PEAK_SECONDS = 1.0  # per dtype: enough for a steady rate of 1024-square matmuls on a small CPU
# a decoding step as the planner counts it: a batch of rows through every weight matrix once, the matrices together
# far larger than a CPU's caches, so each is read from memory; timed at several batch sizes, since a CPU's matmul of
# a few rows reaches neither its peak nor its memory bandwidth (the time per step grows with the rows)
READ_ROWS = (1, 4, 8, 16, 32, 64)
READ_SECONDS = 0.4  # per batch size
READ_SHAPE = (2048, 8192)  # 64 MiB a matrix in fp32, about a 1B model's MLP projection
READ_MATRICES = 4


def matmul_peak(device: str = "cpu", seconds: float = PEAK_SECONDS, n: int | None = None, slow_bf16: bool = False):
    """Dense matmul TFLOP/s in fp32 and bf16 on `device` (square matrices of side `n`): {'device', 'n',
    'fp32_tflops', 'bf16_tflops'}. A CPU without native bf16 emulates it about 1000x slower: no ceiling there
    (None), unless `slow_bf16` measures it on a small matrix (`bf16_n`)."""
    n = n or (8192 if device == "cuda" else 1024)
    out: dict = {"device": device, "n": n}
    emulated = device == "cpu" and not cpu_has_bf16()
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        if name == "bf16" and emulated and not slow_bf16:
            out["bf16_tflops"] = None
            continue
        side = 512 if name == "bf16" and emulated else n
        a, b = (torch.randn(side, side, dtype=dtype, device=device) for _ in range(2))
        for _ in range(3):  # warm-up
            torch.matmul(a, b)
        out[f"{name}_tflops"] = round(
            2 * side**3 * _calls_per_s(lambda _, a=a, b=b: torch.matmul(a, b), device, seconds) / 1e12, 4
        )
        if side != n:
            out[f"{name}_n"] = side
    return out


def weight_read_rates(device: str = "cpu", seconds: float = READ_SECONDS, rows=READ_ROWS) -> dict[str, float]:
    """GB/s of fp32 weights a decoding step reads on `device` for each batch size of `rows` ({'8': GB/s, ...}):
    that many activation rows times READ_MATRICES weight matrices in turn, as a step runs through a model's layers,
    timed over `seconds` each. On a CPU a step is bound by this, not by the matmul peak (the generation benchmark's
    SmolLM2 steps: BENCHMARKS.md)."""
    weights = [torch.full(READ_SHAPE, 0.5, device=device) for _ in range(READ_MATRICES)]  # written: real pages
    out = {}
    for r in rows:
        x = torch.full((r, READ_SHAPE[0]), 0.5, device=device)
        for w in weights:  # warm-up
            torch.matmul(x, w)
        calls = _calls_per_s(lambda i, x=x: torch.matmul(x, weights[i % len(weights)]), device, seconds, len(weights))
        out[str(r)] = round(calls * weights[0].numel() * 4 / 1e9, 2)
    return out


def _calls_per_s(call, device: str, seconds: float, at_least: int = 1) -> float:
    """How many times a second `call(i)` (i: 0, 1, ...) runs on `device`, timed over `seconds` and at least
    `at_least` calls (a GPU synchronised every 10 calls, so that its queue stays short, and at the end)."""
    _sync(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or count < at_least:
        call(count)
        count += 1
        if device == "cuda" and count % 10 == 0:
            _sync(device)
    _sync(device)
    return count / (time.perf_counter() - start)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def cpu_name() -> str:
    """The processor's model name (/proc/cpuinfo), else what the platform says."""
    try:
        with open("/proc/cpuinfo") as f:
            found = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
        if found:
            return found.group(1).strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def measured_peak(device: str, name: str) -> dict:
    """This device's matmul peak and weight-read rates ('read_gbs': weight_read_rates), measured the first time and
    then read from the cache (a peak cached before the rates were measured gains them, measured once)."""
    key = f"{device}|{name}|{torch.get_num_threads()} threads|torch {torch.__version__}"
    path = Path(os.environ.get("BIOTUNE_PEAK_FILE") or cache_dir() / PEAK_FILE)
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    entry = known.get(key)
    if entry is None or not isinstance(entry.get("read_gbs"), dict):
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        entry = {**matmul_peak(device), "measured_at": now} if entry is None else {**entry, "read_measured_at": now}
        entry["read_gbs"] = weight_read_rates(device)
        known[key] = entry
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, known)
    return entry


def _rates(peak: dict) -> tuple[tuple[int, float], ...]:
    """The cached weight-read rates as the Accelerator holds them: (rows, GB/s), fewest rows first."""
    return tuple(sorted((int(r), float(g)) for r, g in peak["read_gbs"].items()))


def table_gpu(name: str, memory_bytes: float) -> str | None:
    """The GPU table's key for a device named `name` (as CUDA names it, e.g. 'NVIDIA H100 80GB HBM3'): the rows
    whose model (a100, h100, l40s, 4090, ...) is a word of the name, PCIe or not as the name says, the nearest
    in memory; None where no row is that model."""
    words = set(re.findall(r"[a-z0-9]+", name.lower()))
    rows = [(k, row) for k, row in gpu_table().items() if k.removeprefix("rtx-").split("-")[0] in words]
    if not rows:
        return None
    pcie = "pcie" in words
    rows.sort(key=lambda kr: (("pcie" in kr[0]) != pcie, abs(kr[1]["memory_gb"] * 1e9 - memory_bytes)))
    return rows[0][0]


def estimates_on() -> bool:
    """Whether `biotune run` and `biotune study` plan before they start (`BIOTUNE_ESTIMATE=0`: they do not, e.g. in
    a test suite of many short runs); `--plan` always plans."""
    return os.environ.get("BIOTUNE_ESTIMATE", "1") != "0"


@cache
def this_machine() -> Accelerator:
    """What this process would run on: the first visible GPU, else this CPU (memory: its RAM)."""
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        key = table_gpu(props.name, props.total_memory)
        if key is not None:
            row = gpu_table()[key]
            return Accelerator(
                f"this GPU ({props.name}: {key} of the table)",
                props.total_memory,
                row["bf16_tflops"],
                row["fp32_tflops"],
                row["bandwidth_tbs"],
                here=True,
            )
        peak = measured_peak("cuda", props.name)
        bf16 = peak["bf16_tflops"] if torch.cuda.is_bf16_supported() else None
        return Accelerator(
            f"this GPU ({props.name}, measured)",
            props.total_memory,
            bf16,
            peak["fp32_tflops"],
            here=True,
            read_gbs=_rates(peak),
        )
    name = cpu_name()
    peak = measured_peak("cpu", name)
    # bf16 only where the CPU computes it natively and faster than fp32 (else biotune trains in fp32 there)
    bf16 = peak.get("bf16_tflops")
    bf16 = bf16 if bf16 and cpu_has_bf16() and bf16 > peak["fp32_tflops"] else None
    return Accelerator(
        f"this CPU ({name}, {torch.get_num_threads()} threads)",
        psutil.virtual_memory().total,
        bf16,
        peak["fp32_tflops"],
        None,
        "cpu",
        here=True,
        read_gbs=_rates(peak),
    )


def took(planned: float, seconds: float) -> str:
    """'+14 %' — how far the time taken is from the time planned."""
    if planned <= 0 or not math.isfinite(planned):
        return "no plan"
    return f"{100 * (seconds - planned) / planned:+.0f} %"
