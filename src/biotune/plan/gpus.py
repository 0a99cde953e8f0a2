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


@dataclass(frozen=True)
class Accelerator:
    name: str
    memory_bytes: float
    bf16_tflops: float | None  # None: no bf16 (the run computes in fp32)
    fp32_tflops: float
    bandwidth_tbs: float | None = None  # None: generation counted as compute-bound only
    device_type: str = "cuda"  # cpu: this machine (training attention is eager there, as biotune runs it)
    here: bool = False  # the machine this process runs on (its plans learn from the runs that finish here)

    @property
    def bf16(self) -> bool:
        return self.bf16_tflops is not None

    def peak_flops(self, bf16: bool) -> float:
        """FLOP/s in the dtype the run computes in."""
        return 1e12 * (self.bf16_tflops if bf16 and self.bf16 else self.fp32_tflops)

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
