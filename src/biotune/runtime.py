"""Device and dtype, chosen at run time: CUDA when present, else CPU; bf16 where the hardware has it."""

from __future__ import annotations

import functools
import os
import platform

import torch

from . import __version__
from .errors import BiotuneError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# torch's own intra-op thread count in this process, before anything set it (OMP_NUM_THREADS, else the cores)
DEFAULT_THREADS = torch.get_num_threads()


def threads_for(requested: int | None) -> int:
    """The intra-op threads a CPU run computes with: `runtime.threads`, else torch's default here. A matmul's sums
    are split by thread, so the count moves bf16 results (a real SmolLM2's answers: tests/test_identity_real.py)."""
    return requested or DEFAULT_THREADS


@functools.cache
def cpu_has_bf16() -> bool:
    """Native bf16 matmul on this CPU (AVX512-BF16 or AMX); without it bf16 is emulated and slow."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def world_size() -> int:
    """Processes in this training job (>1 under `accelerate launch` / torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        # one GPU per process under accelerate launch / torchrun
        return torch.device(f"cuda:{os.environ['LOCAL_RANK']}" if "LOCAL_RANK" in os.environ else "cuda")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise BiotuneError(f"--device {requested}: CUDA is not available on this machine; use --device cpu or auto")
    return torch.device(requested)


def pick_dtype(device: torch.device, requested: str = "auto") -> torch.dtype:
    if requested != "auto":
        if requested not in DTYPES:
            raise BiotuneError(f"unknown dtype {requested!r}; valid: auto, {', '.join(DTYPES)}")
        return DTYPES[requested]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


def bf16_compute(device: torch.device, requested: bool | str = "auto") -> bool:
    """Whether training computes in bf16 (autocast): as requested, or where the hardware has it."""
    if requested != "auto":
        return bool(requested)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def resolved_precision(device: str, bf16: bool | str, dtype: str) -> dict:
    """What `auto` precision settings become on this machine: {'bf16': bool, 'dtype': name}. A bf16 machine and
    an fp32-only one give different results for the same settings, so a result's identity holds these, not
    'auto'. A device that is not here (CUDA asked for on a CPU machine) leaves them as written: such a run fails
    before it computes anything."""
    try:
        dev = pick_device(device)
    except BiotuneError:
        return {"bf16": bf16, "dtype": dtype}
    return {"bf16": bf16_compute(dev, bf16), "dtype": dtype_name(pick_dtype(dev, dtype))}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def attention_for(device: torch.device, training: bool, requested: str = "auto") -> str | None:
    """The attention implementation to load a model with (None: the library's default, SDPA): FlashAttention-2
    on CUDA where the flash-attn package is installed (the architecture without it keeps SDPA: set_attention),
    eager for training on CPU (measured faster there, benchmarks/)."""
    if requested != "auto":
        return requested
    if device.type == "cuda" and flash_attention_available():
        return "flash_attention_2"
    return "eager" if training and device.type == "cpu" else None


def flash_attention_available() -> bool:
    try:
        from transformers.utils import is_flash_attn_2_available
    except ImportError:
        return False
    return bool(is_flash_attn_2_available())


def set_attention(model, implementation: str) -> None:
    """Switch a loaded model (or the base model under a peft wrapper) to another attention implementation."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        base.set_attn_implementation(implementation)
    except (ValueError, ImportError, AttributeError):  # the architecture has no such kernel: keep what it has
        pass


def provenance() -> dict:
    """What a result was computed with, stored beside it and never part of its identity: the libraries' versions
    and the kernels — the instruction set torch's CPU kernels dispatch to, and the GPU when one is present. fp32
    full fine-tuning is not bitwise portable between instruction sets (forcing this AVX512 machine's kernels to
    AVX2 changed the fair study's FFT run from its 10th step), so a reader must be able to see where each came from."""

    import peft
    import transformers

    out = {
        "biotune": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "python": platform.python_version(),
        "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
    }
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name()
    return out
