"""The accelerator a plan is made for: memory, peak TFLOP/s in the dtype the run computes in, and memory
bandwidth; from the shipped table (gpus.yaml) or given by hand."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from biotune.errors import BiotuneError

GiB = 1024**3
# what a CUDA process holds outside torch's allocator (the CUDA context, cuBLAS / cuDNN workspaces): the planner's
# estimates are of torch's peak allocation, which must fit in what is left, less the allocator's fragmentation
RESERVED_BYTES = 1 * GiB
FRAGMENTATION = 0.95
# the share of a table GPU's nominal memory bandwidth a decoding step's reads reach (a planner assumption)
BANDWIDTH_EFFICIENCY = 0.6


@dataclass(frozen=True)
class Accelerator:
    name: str
    memory_bytes: float
    bf16_tflops: float | None  # None: no bf16 (the run computes in fp32)
    fp32_tflops: float
    bandwidth_tbs: float | None = None  # nominal; None: generation counted as compute-bound only (unless read_gbs)
    device_type: str = "cuda"  # cpu: this machine (training attention is eager there, as biotune runs it)
    here: bool = False  # the machine this process runs on (its plans learn from the runs that finish here)
    # (rows, GB/s): the rate a decoding step of that many rows reads weights at, measured here
    # (machine.weight_read_rates); used as measured, where a nominal bandwidth is taken at BANDWIDTH_EFFICIENCY
    read_gbs: tuple[tuple[int, float], ...] = ()

    @property
    def bf16(self) -> bool:
        return self.bf16_tflops is not None

    def peak_flops(self, bf16: bool) -> float:
        """FLOP/s in the dtype the run computes in."""
        return 1e12 * (self.bf16_tflops if bf16 and self.bf16 else self.fp32_tflops)

    def read_bytes_per_s(self, rows: int) -> float | None:
        """How fast a decoding step of `rows` rows reads the weights and the KV cache: from the rates measured here
        (a step's time per byte interpolated in the rows between the measured batch sizes, extended along the last
        two beyond them), else the nominal bandwidth at BANDWIDTH_EFFICIENCY; None where neither is known
        (generation then counts its compute only)."""
        if self.read_gbs:
            points = [(r, 1 / (g * 1e9)) for r, g in self.read_gbs]  # (rows, seconds a byte)
            if rows <= points[0][0] or len(points) == 1:
                return 1 / points[0][1]
            i = next((i for i in range(1, len(points)) if rows <= points[i][0]), len(points) - 1)
            (r0, s0), (r1, s1) = points[i - 1], points[i]
            return 1 / max(s0, s0 + (s1 - s0) * (rows - r0) / (r1 - r0))
        return self.bandwidth_tbs * 1e12 * BANDWIDTH_EFFICIENCY if self.bandwidth_tbs else None

    @property
    def usable_bytes(self) -> float:
        """What torch may allocate: the memory less the CUDA context, less fragmentation."""
        return max(0.0, (self.memory_bytes - RESERVED_BYTES) * FRAGMENTATION)


@cache
def gpu_table() -> dict[str, dict]:
    return yaml.safe_load(resources.files("biotune.plan").joinpath("gpus.yaml").read_text(encoding="utf-8"))


def accelerator(
    name: str | None = None,
    memory_gb: float | None = None,
    tflops: float | None = None,
    bandwidth_tbs: float | None = None,
) -> Accelerator:
    """A GPU of the table by name, or one described by hand (memory in GB, dense bf16 TFLOP/s)."""
    if name:
        table = gpu_table()
        key = name.lower()
        if key not in table:
            raise BiotuneError(
                f"--gpu {name!r}: not in biotune's GPU table; valid: {', '.join(table)}; or describe "
                "it with --gpu-memory GB --gpu-tflops T"
            )
        row = table[key]
        return Accelerator(key, row["memory_gb"] * 1e9, row["bf16_tflops"], row["fp32_tflops"], row["bandwidth_tbs"])
    if memory_gb is None or tflops is None:
        raise BiotuneError("--plan needs a GPU: --gpu NAME (e.g. --gpu a100-80gb) or --gpu-memory GB --gpu-tflops T")
    return Accelerator("custom", memory_gb * 1e9, tflops, tflops, bandwidth_tbs)
