"""Faster drop-in versions of small ops that dominate CPU training time of small models (measured in benchmarks/).

`FastDropout`: LoRA applies dropout to the input of every adapted layer (210 layers in SmolLM2-135M), and on
CPU torch draws each element's keep/drop decision from its own random number, one at a time from a serial
generator: about a quarter of a LoRA training step. At LoRA's small drop probabilities nearly every one of those
draws says "keep". This dropout draws the gaps between dropped elements instead: in a sequence of independent
drops with probability p, the distance to the next drop is geometric, so p * n uniform numbers (each turned into
a gap by the inverse of the geometric distribution) give exactly the positions plain dropout would drop, with
the same distribution, and the output is the input times 1 / (1 - p) with those positions set to zero. Only on
CPU: elsewhere it is torch's own (fused) dropout.

`SharedDraw`: several adapted layers read the same tensor (a decoder layer's q/k/v projections read one hidden
state, its gate/up projections another). peft gives each adapter its own dropout, so that tensor is masked three
(two) times. With a `SharedDraw` the adapters that read the same tensor share one mask and one masked copy, as
in the LoRA authors' reference code (loralib), where GPT-2's fused q/k/v layer applies one dropout to its input
for all three adapters. Each element is still dropped with probability p; the masks of different inputs and
different steps stay independent.
"""

from __future__ import annotations

import math
import weakref

import torch
from torch import nn


class SharedDraw:
    """The last tensor a group of FastDropouts masked and its masked copy: a dropout called again on the same,
    unmodified tensor (same object, same version, same p, same grad mode) returns that copy instead of drawing
    a new mask. Holds the input by weak reference, so a freed tensor never matches."""

    __slots__ = ("source", "version", "key", "output", "output_version")

    def __init__(self):
        self.source = None
        self.version = self.output_version = -1
        self.key = None
        self.output = None

    def lookup(self, x: torch.Tensor, p: float) -> torch.Tensor | None:
        out = self.output
        if (out is not None and self.source is not None and self.source() is x and self.version == x._version
                and self.key == (p, torch.is_grad_enabled()) and self.output_version == out._version):
            return out
        return None

    def store(self, x: torch.Tensor, p: float, out: torch.Tensor) -> None:
        self.source, self.version = weakref.ref(x), x._version
        self.key = (p, torch.is_grad_enabled())
        self.output, self.output_version = out, out._version

    def clear(self) -> None:
        self.source, self.output = None, None


def drop_positions(n: int, p: float, device: torch.device | str | None = None,
                   chunk: int | None = None) -> torch.Tensor:
    """The positions (sorted int64) that independent Bernoulli(p) trials over 0..n-1 drop, drawn as geometric
    gaps: with U uniform on (0, 1], floor(log U / log(1 - p)) + 1 is the distance to the next drop. Draws `chunk`
    gaps at a time (by default the expected count plus six standard deviations, so one draw nearly always
    reaches n) until the positions pass n."""
    if p <= 0 or n == 0:
        return torch.empty(0, dtype=torch.int64, device=device)
    log_keep = math.log1p(-p)
    mean = n * p
    chunk = chunk or int(mean + 6 * math.sqrt(mean) + 16)
    parts, start = [], 0.0
    while True:
        u = torch.rand(chunk, dtype=torch.float64, device=device)  # [0, 1): 1 - u is in (0, 1]
        pos = torch.log1p(-u).div_(log_keep).floor_().add_(1).cumsum_(0).add_(start - 1)  # exact below 2**53
        last = pos[-1].item()
        if last >= n:
            parts.append(pos[: int(torch.searchsorted(pos, float(n)))])
            break
        parts.append(pos)
        start = last + 1
    return (parts[0] if len(parts) == 1 else torch.cat(parts)).long()


class _ZeroAt(torch.autograd.Function):
    """x * scale with the (flat, contiguous-layout) positions set to zero; the gradient is masked the same way.
    Saves the positions only (p * n int64), not a mask."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, positions: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(positions)
        ctx.scale = scale
        return _scaled_zeroed(x, positions, scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (positions,) = ctx.saved_tensors
        return _scaled_zeroed(grad, positions, ctx.scale), None, None


def _scaled_zeroed(x: torch.Tensor, positions: torch.Tensor, scale: float) -> torch.Tensor:
    out = x.mul(scale).contiguous()
    out.view(-1).index_fill_(0, positions, 0)
    return out


class FastDropout(nn.Module):
    """Dropout (each element dropped independently with probability p, the kept ones scaled by 1 / (1 - p)) that
    draws only the dropped positions on CPU; torch's dropout on other devices. See the module's docstring."""

    def __init__(self, p: float, shared: SharedDraw | None = None):
        super().__init__()
        self.p = float(p)
        self.shared = shared  # a plain attribute: not a submodule, not in the state dict

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        shared = self.shared if self.shared is not None and not x.is_inference() else None  # (no version counter)
        if shared is not None and (out := shared.lookup(x, self.p)) is not None:
            return out
        if x.device.type == "cpu":
            out = _ZeroAt.apply(x, drop_positions(x.numel(), self.p, x.device), 1.0 / (1.0 - self.p))
        else:
            out = nn.functional.dropout(x, self.p, training=True)
        if shared is not None:
            shared.store(x, self.p, out)
        return out

    def train(self, mode: bool = True):
        if not mode and self.shared is not None:
            self.shared.clear()  # let go of the last training step's masked tensor
        return super().train(mode)

    def extra_repr(self) -> str:
        return f"p={self.p}, shared={self.shared is not None}"


def fast_dropouts(model: nn.Module, name: str = "lora_dropout", share: bool = True) -> int:
    """Replace the nn.Dropout modules peft puts in `<layer>.<name>[adapter]` by FastDropout; with `share`, the
    adapters that read the same tensor share one mask (one SharedDraw for the model). Returns how many."""
    shared = SharedDraw() if share else None
    count = 0
    for module in model.modules():
        holder = getattr(module, name, None)
        if isinstance(holder, nn.ModuleDict):
            for key, drop in list(holder.items()):
                if isinstance(drop, nn.Dropout) and 0 < drop.p < 1:
                    holder[key] = FastDropout(drop.p, shared)
                    count += 1
    return count
