"""peft's LoRA linear layer, trained through `biotune.kernels.lora_linear` on CPU: the frozen base layer and the
adapter as one autograd node (measured in benchmarks/). Everything else (evaluation, other devices, merged or
several active adapters, DoRA, a trained base or adapter bias, call arguments) is peft's own forward."""

from __future__ import annotations

import torch
from peft.tuners.lora.layer import Linear
from torch import nn

from biotune.kernels import FastDropout, lora_linear


class FusedLoraLinear(Linear):
    """A peft `lora.Linear` whose training forward on CPU is one `lora_linear` node; the same parameters, state
    dict and outputs."""

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if not args and not kwargs and self.training and torch.is_grad_enabled():
            out = self._fused(x)
            if out is not None:
                return out
        return super().forward(x, *args, **kwargs)

    def _fused(self, x: torch.Tensor) -> torch.Tensor | None:
        if self.disable_adapters or self.merged or len(self.active_adapters) != 1 or x.device.type != "cpu":
            return None
        name = self.active_adapters[0]
        if name not in self.lora_A or name in self.lora_variant:
            return None
        base = self.get_base_layer()
        lora_a, lora_b = self.lora_A[name], self.lora_B[name]
        if (
            type(base) is not nn.Linear
            or base.weight.dtype != x.dtype
            or base.weight.requires_grad
            or (base.bias is not None and base.bias.requires_grad)
            or lora_b.bias is not None
        ):
            return None
        dropout = self.lora_dropout[name]
        if isinstance(dropout, FastDropout):
            xd = dropout(x)
        elif isinstance(dropout, nn.Identity):
            xd = None
        else:
            return None
        return lora_linear(x, xd, base.weight, base.bias, lora_a.weight, lora_b.weight, self.scaling[name])


def fuse_lora_layers(model: nn.Module) -> int:
    """Make every plain peft `lora.Linear` of `model` (a non-quantized base, no DoRA) a FusedLoraLinear.
    Returns how many."""
    count = 0
    for module in model.modules():
        if type(module) is Linear and not module.lora_variant:
            module.__class__ = FusedLoraLinear
            count += 1
    return count
