"""Resource accounting: parameters (4-bit weights counted by their real element count), weight memory, peak
memory (CUDA max allocated, or peak RSS sampled on CPU), wall time, and size on disk."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil
import torch


def real_numel(p: torch.Tensor) -> int:
    """Elements a parameter stands for. bitsandbytes packs two 4-bit weights per uint8 element (numel()
    halves), and peft's own count then undercounts; the quantization state knows the real shape."""
    state = getattr(p, "quant_state", None)
    if state is not None and getattr(state, "shape", None) is not None:
        return int(torch.Size(state.shape).numel())
    return p.numel()


def count_parameters(model) -> dict[str, int]:
    trainable = total = 0
    seen = set()
    for p in model.parameters():
        if id(p) in seen:  # tied weights count once
            continue
        seen.add(id(p))
        n = real_numel(p)
        total += n
        if p.requires_grad:
            trainable += n
    return {"trainable_params": trainable, "total_params": total}


def weight_bytes(model) -> int:
    """Bytes the model's parameters and buffers occupy as stored (4-bit packed weights as packed, plus their
    quantization constants)."""
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) in seen:
            continue
        seen.add(id(t))
        total += t.numel() * t.element_size()
        state = getattr(t, "quant_state", None)
        if state is not None:
            for attr in ("absmax", "code"):
                v = getattr(state, attr, None)
                if isinstance(v, torch.Tensor):
                    total += v.numel() * v.element_size()
            nested = getattr(state, "state2", None)
            if nested is not None and isinstance(getattr(nested, "absmax", None), torch.Tensor):
                total += nested.absmax.numel() * nested.absmax.element_size()
    return total


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


def dir_size(path: str | Path, weights_only: bool = False) -> int:
    """Bytes under `path`; `weights_only`: just the weight files (adapter or model), not tokenizer files."""
    return sum(
        f.stat().st_size
        for f in Path(path).rglob("*")
        if f.is_file() and (not weights_only or f.suffix in WEIGHT_SUFFIXES)
    )


class PeakMemory:
    """Peak memory over a block: CUDA max allocated on a GPU; on CPU the process RSS, sampled every 20 ms."""

    def __init__(self, device: torch.device, interval: float = 0.02):
        self.device, self.interval = device, interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._proc = psutil.Process(os.getpid())

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.peak_bytes = self._proc.memory_info().rss
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(self.interval):
            self.peak_bytes = max(self.peak_bytes, self._proc.memory_info().rss)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self.peak_bytes = max(self.peak_bytes, self._proc.memory_info().rss)
        return False

    @property
    def kind(self) -> str:
        return "cuda_max_allocated" if self.device.type == "cuda" else "cpu_peak_rss"


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False
