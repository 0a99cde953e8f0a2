"""LoftQ (Li et al. 2024): QLoRA whose adapters start from the low-rank part of what 4-bit quantization lost,
so the quantized base plus the adapter begins closer to the full-precision model than the quantized base alone.

As peft's `replace_lora_weights_loftq` (the one-step variant: the NF4 base as transformers quantized it, the
adapters from the rank-r SVD of W - dequant(Q(W)), W read from the model's safetensors files), computed here on
the model's own device (peft's helper runs on CUDA/XPU only) and with the adapter's scaling taken into account,
so that Q(W) + scaling * B A is the best rank-r correction."""

from __future__ import annotations

import json
from pathlib import Path

from biotune.errors import BiotuneError

from .base import register
from .qlora import QLora


@register
class LoftQ(QLora):
    name = "loftq"

    def apply(self, model, family, head, params, total_steps=None):
        model = super().apply(model, family, head, params, total_steps)
        loftq_init(model)
        return model


def loftq_init(model, adapter: str = "default") -> int:
    """Sets the LoRA A and B of every 4-bit layer of the peft `model`; returns how many layers."""
    import torch

    with torch.no_grad():
        return _init(model, adapter)


def _init(model, adapter: str) -> int:
    import bitsandbytes as bnb
    import torch
    from peft.tuners.lora.bnb import Linear4bit

    weights = _Weights(model.get_base_model().name_or_path)
    prefix = "base_model.model."
    count = 0
    for name, module in model.named_modules():
        if not isinstance(module, Linear4bit) or adapter not in module.lora_A:
            continue
        base = module.get_base_layer()
        w = weights.get(name.removeprefix(prefix) + ".weight").to(base.weight.device, torch.float32)
        quantized = bnb.functional.dequantize_4bit(base.weight.data, base.weight.quant_state).float()
        u, s, vh = torch.linalg.svd(w - quantized, full_matrices=False)
        r, scaling = module.r[adapter], module.scaling[adapter]
        root = (s[:r] / scaling).sqrt()
        a, b = module.lora_A[adapter].weight, module.lora_B[adapter].weight
        a.data = (root[:, None] * vh[:r]).to(a.dtype)
        b.data = (u[:, :r] * root[None, :]).to(b.dtype)
        count += 1
    if not count:
        raise BiotuneError("loftq: the model has no 4-bit LoRA layer to initialise")
    return count


class _Weights:
    """The unquantized weights by parameter name, from the model folder's safetensors file(s)."""

    def __init__(self, folder: str):
        self.folder = Path(folder)
        index = self.folder / "model.safetensors.index.json"
        if index.is_file():
            self.files = {k: self.folder / v for k, v in json.loads(index.read_text())["weight_map"].items()}
        elif (self.folder / "model.safetensors").is_file():
            self.files = None
        else:
            raise BiotuneError(
                f"loftq: needs the model's full-precision weights as safetensors in {folder} "
                "(model.safetensors or its index); none found"
            )

    def get(self, name: str):
        from safetensors import safe_open

        path = self.files.get(name) if self.files is not None else self.folder / "model.safetensors"
        if path is not None:
            with safe_open(str(path), framework="pt") as f:
                if name in f.keys():
                    return f.get_tensor(name)
        raise BiotuneError(f"loftq: weight {name!r} not found in the safetensors files of {self.folder}")
