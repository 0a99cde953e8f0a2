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

`lora_linear`: a frozen linear layer plus its LoRA adapter, y = x W^T + b + s * (dropout(x) A^T) B^T, as one
autograd node: the adapter's output is accumulated into the base output inside the matmul (no scaled copy and
no separate addition of an out-wide tensor, forward or backward), the scaling is applied to the rank-r tensors,
and backward runs only the matmuls the trainable inputs need.

`rms_norm`: LLaMA-style RMSNorm, weight * (x * rsqrt(mean(x^2) + eps)).to(x.dtype), as one autograd node that
keeps x in its own dtype (the library's composite form makes fp32 copies of x and of each intermediate, forward
and backward). The same forward, the same gradient up to fp32 rounding.
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
        if (
            out is not None
            and self.source is not None
            and self.source() is x
            and self.version == x._version
            and self.key == (p, torch.is_grad_enabled())
            and self.output_version == out._version
        ):
            return out
        return None

    def store(self, x: torch.Tensor, p: float, out: torch.Tensor) -> None:
        self.source, self.version = weakref.ref(x), x._version
        self.key = (p, torch.is_grad_enabled())
        self.output, self.output_version = out, out._version

    def clear(self) -> None:
        self.source, self.output = None, None


def drop_positions(
    n: int, p: float, device: torch.device | str | None = None, chunk: int | None = None
) -> torch.Tensor:
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


class _LoraLinear(torch.autograd.Function):
    """y = x W^T + b + scaling * (xd A^T) B^T with W, b frozen; A (r x in) and B (out x r) cast to x's dtype for
    the compute, their gradients returned in their own dtype. `xd` None: the adapter reads x itself (no dropout)."""

    @staticmethod
    def forward(ctx, x, xd, weight, bias, lora_a, lora_b, scaling):
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        xd2 = x2 if xd is None else xd.reshape(-1, shape[-1])
        a, b = lora_a.to(x.dtype), lora_b.to(x.dtype)
        y = nn.functional.linear(x2, weight, bias)
        h = xd2 @ a.t()  # (tokens, r)
        y.addmm_(h, b.t(), alpha=scaling)
        ctx.save_for_backward(weight, xd2, a, b, h)
        ctx.scaling, ctx.shape, ctx.reads_x = scaling, shape, xd is None
        ctx.dtypes = (lora_a.dtype, lora_b.dtype)
        return y.view(*shape[:-1], y.shape[-1])

    @staticmethod
    def backward(ctx, grad):
        weight, xd2, a, b, h = ctx.saved_tensors
        need_x, need_xd, _, _, need_a, need_b, _ = ctx.needs_input_grad
        g2 = grad.reshape(-1, grad.shape[-1])
        gh = (g2 @ b).mul_(ctx.scaling)  # the gradient of xd A^T, (tokens, r)
        grad_a = (gh.t() @ xd2).to(ctx.dtypes[0]) if need_a else None
        grad_b = (g2.t() @ h).mul_(ctx.scaling).to(ctx.dtypes[1]) if need_b else None
        grad_x = grad_xd = None
        if need_x:
            grad_x = g2 @ weight
            if ctx.reads_x:
                grad_x.addmm_(gh, a)
            grad_x = grad_x.view(ctx.shape)
        if need_xd and not ctx.reads_x:
            grad_xd = (gh @ a).view(ctx.shape)
        return grad_x, grad_xd, None, None, grad_a, grad_b, None


def lora_linear(
    x: torch.Tensor,
    xd: torch.Tensor | None,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    lora_a: torch.Tensor,
    lora_b: torch.Tensor,
    scaling: float,
) -> torch.Tensor:
    """A frozen linear layer (weight, bias in x's dtype) plus a LoRA adapter that reads `xd` (x after the adapter's
    dropout; None: x itself), as one autograd node. See the module's docstring."""
    return _LoraLinear.apply(x, xd, weight, bias, lora_a, lora_b, scaling)


class _RMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps):
        d = x.shape[-1]
        # 1 / sqrt(mean(x^2) + eps) in fp32, from one pass over x in its own dtype
        rstd = torch.linalg.vector_norm(x, dim=-1, keepdim=True, dtype=torch.float32).square_().div_(d).add_(eps)
        rstd.rsqrt_()
        normed = torch.empty_like(x)
        torch.mul(x, rstd, out=normed)  # computed in fp32, rounded once to x's dtype, as the library does
        ctx.save_for_backward(x, rstd, weight)
        return weight * normed

    @staticmethod
    def backward(ctx, grad):
        x, rstd, weight = ctx.saved_tensors
        d = x.shape[-1]
        grad_normed = grad * weight  # in the output's dtype, as the library's product backward
        grad_weight = None
        if ctx.needs_input_grad[1]:
            normed = torch.empty_like(x)
            torch.mul(x, rstd, out=normed)
            grad_weight = (grad * normed).reshape(-1, d).sum(0, dtype=torch.float32).to(weight.dtype)
        grad_x = None
        if ctx.needs_input_grad[0]:
            # d/dx of x * rstd(x): rstd * g - x * rstd^3 * mean(g * x), in fp32
            g32, x32 = grad_normed.float(), x.float()
            coef = torch.linalg.vecdot(g32, x32).unsqueeze(-1).mul_(rstd.pow(3)).div_(d)
            grad_x = torch.empty_like(x)
            torch.sub(g32.mul_(rstd), x32.mul_(coef), out=grad_x)
        return grad_x, grad_weight, None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """weight * (x * rsqrt(mean(x^2, -1) + eps)).to(x.dtype), the statistics in fp32 (LLaMA's RMSNorm)."""
    return _RMSNorm.apply(x, weight, eps)


def _rms_norm_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
    return rms_norm(hidden_states, self.weight, self.variance_epsilon)


def fast_rms_norms(model: nn.Module) -> int:
    """Point the forward of every LLaMA-style RMSNorm in `model` (a `weight` vector and `variance_epsilon`, whose
    output on a probe input equals `rms_norm`'s) at `rms_norm`. Norms of other formulas (Gemma's 1 + weight, T5's
    cast to the weight's dtype, ...) fail the probe and keep their own forward. Returns how many."""
    count = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        eps = getattr(module, "variance_epsilon", None)
        if (
            not isinstance(weight, torch.Tensor)
            or weight.dim() != 1
            or not isinstance(eps, float)
            or "forward" in vars(module)
            or not _same_as_rms_norm(module, weight, eps)
        ):
            continue
        module.forward = _rms_norm_forward.__get__(module)
        count += 1
    return count


def _same_as_rms_norm(module: nn.Module, weight: torch.Tensor, eps: float) -> bool:
    generator = torch.Generator().manual_seed(0)
    for dtype in {torch.float32, weight.dtype}:
        probe = (torch.randn(2, 3, weight.shape[0], generator=generator) * 3).to(weight.device, dtype)
        with torch.no_grad():
            try:
                expected = module(probe)
            except Exception:  # noqa: BLE001  (not a norm that takes one tensor)
                return False
            ours = rms_norm(probe, weight, eps)
        if (
            not isinstance(expected, torch.Tensor)
            or expected.dtype != ours.dtype
            or not torch.allclose(
                expected.float(), ours.float(), rtol=1e-2 if dtype != torch.float32 else 1e-5, atol=1e-5
            )
        ):
            return False
    return True
