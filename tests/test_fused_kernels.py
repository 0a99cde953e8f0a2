"""The fused training kernels give what the library's layers give: a LoRA linear layer as one autograd node
(biotune.kernels.lora_linear via methods/lora_layer.py) trains as peft's layer does (same loss, same gradients, the
same dropout masks), and LLaMA-style RMSNorm as one node (biotune.kernels.rms_norm) computes the library's output
and gradient."""

import pytest
import torch

from biotune.train import Experiment
from biotune.trainer import answer_loss
from test_fast_paths import config


def _step(tmp_path, name, family="causal", bf16=False, monkeypatch=None, **params):
    """Loss and gradients of one training step on a tiny model, with the LoRA weights drawn at random (B starts at
    zero) and, with `monkeypatch`, a dropout whose mask depends on the input's shape only; also the autograd node
    that produced the first q_proj's output."""
    from biotune import kernels

    if monkeypatch is not None:
        real = kernels.drop_positions

        def reseeded(n, *args, **kw):
            torch.manual_seed(1234)
            return real(n, *args, **kw)

        monkeypatch.setattr(kernels, "drop_positions", reseeded)
    exp = Experiment(config(tmp_path, name, family=family, params=params, bf16=bf16), progress=False)
    exp.setup()
    batch = dict(next(iter(exp.trainer.get_train_dataloader())))
    labels = batch.pop("labels")
    model = exp.model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    torch.manual_seed(5)
    for p in trainable:
        torch.nn.init.normal_(p, std=0.02)
    nodes = []
    q_proj = model.base_model.model.model.layers[1].self_attn.q_proj
    q_proj.register_forward_hook(lambda m, a, out: nodes.append(type(out.grad_fn).__name__))
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        loss = answer_loss(model(**batch), labels)
    grads = torch.autograd.grad(loss, trainable)
    if monkeypatch is not None:
        monkeypatch.undo()
    return loss, grads, nodes[0], exp


@pytest.mark.parametrize("family", ["causal", "glm"])  # GLM's q/k/v layers have a (frozen) bias
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_fused_lora_layer_trains_as_the_peft_layer(tmp_path, monkeypatch, family, dropout):
    loss, grads, node, _ = _step(tmp_path, "peft", family, monkeypatch=monkeypatch, dropout=dropout, fused=False)
    f_loss, f_grads, f_node, exp = _step(tmp_path, "fused", family, monkeypatch=monkeypatch, dropout=dropout)
    assert f_node == "_LoraLinearBackward" and node != f_node  # the fused node ran, and only where asked
    assert f_loss.item() == pytest.approx(loss.item(), rel=1e-6)
    for a, b in zip(grads, f_grads):  # every LoRA A and B, fp32
        assert a.abs().max() > 0
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-7)
        assert b.dtype == torch.float32


def test_fused_lora_layer_under_bf16_autocast(tmp_path, monkeypatch):
    loss, grads, _, _ = _step(tmp_path, "peft", bf16=True, monkeypatch=monkeypatch, dropout=0.3, fused=False)
    f_loss, f_grads, node, _ = _step(tmp_path, "fused", bf16=True, monkeypatch=monkeypatch, dropout=0.3)
    assert node == "_LoraLinearBackward"
    assert f_loss.item() == pytest.approx(loss.item(), rel=1e-3)
    for a, b in zip(grads, f_grads):  # bf16 rounds the two orders of summation differently
        assert torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0) > 0.999


def test_fused_lora_layer_keeps_peft_forward_outside_training(tmp_path):
    from biotune.methods.lora_layer import FusedLoraLinear

    exp = Experiment(config(tmp_path, "f"), progress=False)
    exp.setup()
    layers = [m for m in exp.model.modules() if isinstance(m, FusedLoraLinear)]
    assert len(layers) == 7 * 2  # q, k, v, o, gate, up, down in each of the 2 layers
    plain = Experiment(config(tmp_path, "p", params={"fused": False}), progress=False)
    plain.setup()
    assert not any(isinstance(m, FusedLoraLinear) for m in plain.model.modules())
    assert exp.model.state_dict().keys() == plain.model.state_dict().keys()  # the same adapter as saved
    layer = layers[0]
    torch.nn.init.normal_(layer.lora_B["default"].weight, std=0.1)
    x = torch.randn(2, 5, layer.in_features, requires_grad=True)
    layer.eval()  # evaluation: peft's forward, and the same output as the fused one
    out = layer(x)
    assert type(out.grad_fn).__name__ != "_LoraLinearBackward"
    layer.train()
    layer.lora_dropout["default"].p = 0.0
    fused = layer(x)
    assert type(fused.grad_fn).__name__ == "_LoraLinearBackward"
    torch.testing.assert_close(fused, out)
    with torch.no_grad():
        assert layer(x).grad_fn is None


@pytest.mark.parametrize("method", ["dora", "qlora"])
def test_other_lora_layers_are_not_fused(tmp_path, method):
    from biotune.methods.lora_layer import FusedLoraLinear

    exp = Experiment(config(tmp_path, method, method=method, bf16=True), progress=False)
    exp.setup()
    assert not any(isinstance(m, FusedLoraLinear) for m in exp.model.modules())


def _llama_norm(dim, dtype):
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    norm = LlamaRMSNorm(dim, eps=1e-5)
    with torch.no_grad():
        norm.weight.normal_(1.0, 0.1)
    return norm.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rms_norm_computes_the_llama_norm(dtype):
    from biotune.kernels import rms_norm

    torch.manual_seed(0)
    norm = _llama_norm(96, dtype)
    x = (torch.randn(4, 7, 96, dtype=torch.float64) * 3).to(dtype).requires_grad_(True)
    grad = torch.randn(4, 7, 96, dtype=torch.float64).to(dtype)
    expected, ours = norm(x), rms_norm(x, norm.weight, norm.variance_epsilon)
    assert ours.dtype == expected.dtype == dtype
    torch.testing.assert_close(
        ours, expected, rtol=1e-6 if dtype == torch.float32 else 0, atol=1e-6 if dtype == torch.float32 else 0
    )  # bf16: the same bits
    # the input gradient: as close to the exact (float64) one as the library's
    x64 = x.detach().double().requires_grad_(True)
    w64 = norm.weight.detach().double()
    exact = torch.autograd.grad(
        w64 * (x64 * torch.rsqrt(x64.pow(2).mean(-1, keepdim=True) + 1e-5)), x64, grad.double()
    )[0]
    lib_error = (torch.autograd.grad(expected, x, grad)[0].double() - exact).norm() / exact.norm()
    our_error = (torch.autograd.grad(ours, x, grad)[0].double() - exact).norm() / exact.norm()
    assert our_error <= lib_error * 1.05 + 1e-7


def test_rms_norm_trains_its_weight_as_the_library_does():
    from biotune.kernels import rms_norm

    torch.manual_seed(0)
    norm = _llama_norm(32, torch.float32)
    x = torch.randn(3, 5, 32, requires_grad=True)
    grad = torch.randn(3, 5, 32)
    expected = torch.autograd.grad(norm(x), (x, norm.weight), grad)
    ours = torch.autograd.grad(rms_norm(x, norm.weight, norm.variance_epsilon), (x, norm.weight), grad)
    for a, b in zip(expected, ours):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_fast_rms_norms_takes_llama_norms_only(tmp_path):
    from transformers.models.gemma.modeling_gemma import GemmaRMSNorm
    from transformers.models.t5.modeling_t5 import T5LayerNorm

    from biotune.kernels import fast_rms_norms

    exp = Experiment(config(tmp_path, "on"), progress=False)
    exp.setup()
    norms = [m for m in exp.model.modules() if type(m).__name__.endswith("RMSNorm")]
    assert len(norms) == 2 * 2 + 1 and all("forward" in vars(m) for m in norms)  # 2 per layer + the final one
    assert fast_rms_norms(exp.model) == 0  # once only
    off = Experiment(config(tmp_path, "off", fast_norms=False), progress=False)
    off.setup()
    assert not any("forward" in vars(m) for m in off.model.modules())
    # other formulas keep their own forward: T5 rounds to its (bf16) weight's dtype; Gemma scales by 1 + weight
    t5 = T5LayerNorm(16).to(torch.bfloat16)

    class OnePlusWeight(torch.nn.Module):  # Gemma's formula under LLaMA's attribute names
        def __init__(self):
            super().__init__()
            self.weight, self.variance_epsilon = torch.nn.Parameter(torch.zeros(16)), 1e-6

        def forward(self, x):
            return (1 + self.weight) * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)

    assert fast_rms_norms(torch.nn.ModuleList([t5, OnePlusWeight(), GemmaRMSNorm(16)])) == 0
    assert fast_rms_norms(torch.nn.ModuleList([_llama_norm(16, torch.bfloat16)])) == 1
