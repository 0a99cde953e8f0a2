"""Faster drop-in versions of small ops that dominate CPU training time of small models (measured in benchmarks/).

`PackedDropout`: LoRA applies dropout to the input of every adapted layer (210 layers in SmolLM2-135M), and on
CPU torch draws each element's keep/drop decision from its own 32-bit random number: about a quarter of a LoRA
training step. This dropout draws 64-bit random integers and reads them as four 16-bit numbers each, so it
needs a quarter of the random draws: the same dropout (each element dropped independently, kept ones scaled
by 1 / keep probability), with the drop probability rounded to a multiple of 1/65536 (0.05 -> 0.0500031).

`SharedDraw`: several adapted layers read the same tensor (a decoder layer's q/k/v projections read one hidden
state, its gate/up projections another). peft gives each adapter its own dropout, so that tensor is masked three
(two) times. With a `SharedDraw` the adapters that read the same tensor share one mask and one masked copy, as
in the LoRA authors' reference code (loralib), where GPT-2's fused q/k/v layer applies one dropout to its input
for all three adapters. Each element is still dropped with probability p; the masks of different inputs and
different steps stay independent.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn

_LEVELS = 1 << 16


class SharedDraw:
    """The last tensor a group of PackedDropouts masked and its masked copy: a dropout called again on the same,
    unmodified tensor (same object, same version, same p, same grad mode) returns that copy instead of drawing
    a new mask. Holds the input by weak reference, so a freed tensor never matches."""

    __slots__ = ("source", "version", "key", "output", "output_version")

    def __init__(self):
        self.source = None
        self.version = self.output_version = -1
        self.key = None
        self.output = None

    def lookup(self, x: torch.Tensor, threshold: int) -> torch.Tensor | None:
        out = self.output
        if (out is not None and self.source is not None and self.source() is x and self.version == x._version
                and self.key == (threshold, torch.is_grad_enabled()) and self.output_version == out._version):
            return out
        return None

    def store(self, x: torch.Tensor, threshold: int, out: torch.Tensor) -> None:
        self.source, self.version = weakref.ref(x), x._version
        self.key = (threshold, torch.is_grad_enabled())
        self.output, self.output_version = out, out._version

    def clear(self) -> None:
        self.source, self.output = None, None


class PackedDropout(nn.Module):
    def __init__(self, p: float, shared: SharedDraw | None = None):
        super().__init__()
        self.threshold = round(p * _LEVELS)  # drop when the 16-bit draw (as 0..65535) is below this
        self.p = self.threshold / _LEVELS
        self.shared = shared  # a plain attribute: not a submodule, not in the state dict

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        shared = self.shared if self.shared is not None and not x.is_inference() else None  # (no version counter)
        if shared is not None and (out := shared.lookup(x, self.threshold)) is not None:
            return out
        n = x.numel()
        draws = torch.randint(-(1 << 63), (1 << 63) - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
        bits = draws.view(torch.int16)[:n].view(x.shape)  # -32768..32767
        keep = bits >= self.threshold - (1 << 15)
        out = x * keep.to(x.dtype) * (1.0 / (1.0 - self.p))
        if shared is not None:
            shared.store(x, self.threshold, out)
        return out

    def train(self, mode: bool = True):
        if not mode and self.shared is not None:
            self.shared.clear()  # let go of the last training step's masked tensor
        return super().train(mode)

    def extra_repr(self) -> str:
        return f"p={self.p:.7f}, shared={self.shared is not None}"


def pack_dropouts(model: nn.Module, name: str = "lora_dropout", share: bool = True) -> int:
    """Replace the nn.Dropout modules peft puts in `<layer>.<name>[adapter]` by PackedDropout; with `share`, the
    adapters that read the same tensor share one mask (one SharedDraw for the model). Returns how many."""
    shared = SharedDraw() if share else None
    count = 0
    for module in model.modules():
        holder = getattr(module, name, None)
        if isinstance(holder, nn.ModuleDict):
            for key, drop in list(holder.items()):
                if isinstance(drop, nn.Dropout) and drop.p > 0:
                    holder[key] = PackedDropout(drop.p, shared)
                    count += 1
    return count
