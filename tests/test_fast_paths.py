"""The training fast paths give the results of the simple ones: the LM head at the answer positions only
(same loss, same gradients, same predictions as full-sequence logits), frozen weights stored once in the compute
dtype with fp32 trainable weights, and length-grouped batches (less padding, counted)."""

import json
from contextlib import nullcontext

import pytest
import torch

from biotune.config import validate_experiment
from biotune.train import Experiment, run_experiment
from biotune.trainer import _answer_positions, answer_loss
from test_engine import TINY


def config(tmp_path, name, method="lora", family="causal", params=None, **training):
    return validate_experiment(
        {
            "dataset": "gad",
            "model": dict(TINY[family], family=family),
            "method": {"name": method, "params": params or {}},
            "training": {
                "max_steps": 6,
                "batch_size": 4,
                "train_limit": 24,
                "dev_limit": 4,
                "logging_steps": 1,
                "learning_rate": 5e-3,
                "save_steps": 6,
                "max_length": 192,
                "bf16": False,
                **training,
            },
            "eval": {"limit": 6, "batch_size": 3},
            "output_dir": str(tmp_path / name),
        }
    )


@pytest.mark.parametrize("family", ["causal", "glm"])
def test_answer_logits_give_the_library_loss_and_gradients(tmp_path, family):
    # no LoRA dropout: the two passes below must see the same network
    exp = Experiment(config(tmp_path, family, family=family, params={"dropout": 0.0}), progress=False)
    exp.setup()
    batch = next(iter(exp.trainer.get_train_dataloader()))
    keep = batch.pop("logits_to_keep")
    assert torch.equal(keep, _answer_positions(batch["labels"]))
    assert 0 < len(keep) < batch["input_ids"].shape[1] // 2  # the prompt is most of the sequence
    model = exp.model
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]

    full = model(**batch)  # the library: logits at every position, its own shifted cross-entropy
    full_grads = torch.autograd.grad(full.loss, trainable)
    labels = batch.pop("labels")
    fast_out = model(**batch, logits_to_keep=keep)
    assert fast_out.logits.shape[1] == len(keep)
    fast = answer_loss(fast_out, labels)
    fast_grads = torch.autograd.grad(fast, trainable)
    assert fast.item() == pytest.approx(full.loss.item(), rel=1e-5)
    for a, b in zip(full_grads, fast_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_fast_and_simple_training_paths_give_the_same_predictions(tmp_path, data_dir):
    fast = run_experiment(config(tmp_path, "fast"), progress=False)
    simple = run_experiment(config(tmp_path, "simple", logits_at_answers=False), progress=False)
    a, b = fast["training"]["loss_curve"], simple["training"]["loss_curve"]
    assert [s for s, _ in a] == [s for s, _ in b]
    for (_, x), (_, y) in zip(a, b):
        assert x == pytest.approx(y, rel=1e-4)
    preds = [
        [json.loads(line)["prediction"] for line in (tmp_path / n / "predictions.jsonl").open()]
        for n in ("fast", "simple")
    ]
    assert preds[0] == preds[1] and len(preds[0]) == 6
    assert fast["metrics"]["score"] == simple["metrics"]["score"]


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("family", ["causal", "glm"])
def test_packed_batches_give_the_padded_loss_and_gradients(tmp_path, family, attention):
    """runtime.packing: a batch as one row without padding (position ids restart per example, so attention
    stays inside each example): the padded batch's loss and gradients, through the answer-position loss too."""
    from biotune.trainer import CountingTrainer

    runs = {}
    for packing in (False, True):
        cfg = config(tmp_path, f"{family}-{attention}-{packing}", family=family, params={"dropout": 0.0}, batch_size=4)
        cfg = cfg.model_copy(
            update={
                "runtime": cfg.runtime.model_copy(update={"packing": packing}),
                "model": cfg.model.model_copy(update={"attn_implementation": attention}),
            }
        )
        exp = Experiment(cfg, progress=False)
        exp.setup()
        batch = exp.trainer.data_collator(exp.train_features[:4])
        if packing:
            assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch
            assert (batch["position_ids"] == 0).sum() == 4  # four examples, each from position 0
        else:
            assert batch["input_ids"].shape[0] == 4 and (batch["attention_mask"] == 0).any()
        model = exp.model.train()
        trainable = [q for q in model.parameters() if q.requires_grad]
        loss = CountingTrainer.compute_loss(exp.trainer, model, dict(batch))
        runs[packing] = (loss.item(), torch.autograd.grad(loss, trainable))
    assert runs[True][0] == pytest.approx(runs[False][0], rel=1e-5)
    for a, b in zip(runs[True][1], runs[False][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_packing_is_chosen_where_the_kernel_takes_packed_rows(tmp_path):
    from biotune.trainer import packs

    exp = Experiment(config(tmp_path, "auto"), progress=False)
    exp.setup()
    assert exp.cfg.runtime.packing == "auto" and not packs(
        exp.cfg.runtime.packing, exp.attention, exp.model, exp.method
    )  # CPU: eager attention, padded batches
    exp.attention = "flash_attention_2"
    assert packs(exp.cfg.runtime.packing, exp.attention, exp.model, exp.method)
    soft = Experiment(
        config(tmp_path, "soft", method="prompt_tuning", params={"num_virtual_tokens": 2}), progress=False
    )
    soft.setup()
    soft.attention = "flash_attention_2"
    assert not packs(
        soft.cfg.runtime.packing, soft.attention, soft.model, soft.method
    )  # virtual tokens go before each example


def test_frozen_weights_in_the_compute_dtype_trainable_ones_in_fp32(tmp_path):
    exp = Experiment(config(tmp_path, "bf16", bf16=True), progress=False)
    exp.setup()
    dtypes = {(p.requires_grad, p.dtype) for p in exp.model.parameters()}
    assert dtypes == {(True, torch.float32), (False, torch.bfloat16)}
    fft = Experiment(config(tmp_path, "fft", method="fft", bf16=True), progress=False)
    fft.setup()  # full fine-tuning trains the base: fp32 master weights, bf16 autocast computes
    assert {p.dtype for p in fft.model.parameters()} == {torch.float32}


def test_length_grouping_cuts_padding_and_counts_it(tmp_path, data_dir):
    runs = {}
    for grouped in (True, False):
        cfg = config(tmp_path, f"group-{grouped}", group_by_length=grouped, train_limit=64, max_steps=8, batch_size=8)
        exp = Experiment(cfg, progress=False)
        exp.setup()
        exp.train()
        runs[grouped] = exp.resources
    for r in runs.values():
        assert r["train_padded_tokens"] >= r["train_tokens"] > 0
    assert runs[True]["train_tokens"] == runs[False]["train_tokens"]  # one epoch of the same 64 examples
    assert runs[True]["train_padded_tokens"] < runs[False]["train_padded_tokens"]


def _dropout_statistics(dropped: torch.Tensor, p: float) -> None:
    """`dropped` (a bool matrix) looks like independent Bernoulli(p) draws: the rate, the spread of the counts in
    blocks (binomial), and no correlation between neighbours."""
    n = dropped.numel()
    sigma = (p * (1 - p) / n) ** 0.5
    assert abs(dropped.float().mean().item() - p) < 5 * sigma
    counts = dropped.reshape(-1, 100).sum(dim=1).double()  # blocks of 100: Binomial(100, p)
    assert counts.mean().item() == pytest.approx(100 * p, rel=0.02)
    assert counts.var().item() == pytest.approx(100 * p * (1 - p), rel=0.05)
    flat = dropped.flatten().double()
    both = (flat[1:] * flat[:-1]).mean().item()  # P(two neighbours both dropped) = p^2
    assert abs(both - p * p) < 5 * (p * p * (1 - p * p) / n) ** 0.5


@pytest.mark.parametrize("p", [0.05, 0.3])
def test_fast_dropout_is_dropout(p):
    from biotune.kernels import FastDropout

    drop = FastDropout(p)
    assert drop.p == p  # exactly: no rounding of the probability
    x = torch.ones(1000, 1000, requires_grad=True)
    torch.manual_seed(0)
    y = drop.train()(x)
    dropped = y == 0
    _dropout_statistics(dropped, p)
    assert torch.allclose(y[~dropped], torch.full_like(y[~dropped], 1 / (1 - p)))
    assert abs(y.mean().item() - 1.0) < 5e-3  # unbiased
    assert len({tuple(r.nonzero().flatten()[:20].tolist()) for r in dropped[:50]}) == 50  # no pattern repeated
    y.backward(torch.full_like(y, 2.0))  # the gradient goes through the kept elements only, scaled the same way
    torch.testing.assert_close(x.grad, 2.0 * y.detach())
    assert not torch.equal(drop(x), y)  # a new draw per call
    assert torch.equal(drop.eval()(x), x)
    assert torch.equal(FastDropout(0.0).train()(x), x)
    bf16 = torch.ones(64, 64, dtype=torch.bfloat16)
    assert drop.train()(bf16).dtype == torch.bfloat16
    t = torch.ones(32, 16).t()  # a non-contiguous input: masked as its logical elements
    out = drop(t)
    assert out.shape == t.shape and set(out.unique().tolist()) <= {0.0, torch.tensor(1 / (1 - p)).item()}


def test_drop_positions_in_several_draws_are_the_same_process():
    """The gap draws continue across chunks: a tiny chunk (hundreds of draws for one tensor) gives the same
    statistics as one draw, every position once, in order, inside the tensor."""
    from biotune.kernels import drop_positions

    torch.manual_seed(0)
    n, p = 200_000, 0.1
    for chunk in (None, 37):
        pos = drop_positions(n, p, chunk=chunk)
        assert pos.dtype == torch.int64 and int(pos.min()) >= 0 and int(pos.max()) < n
        assert torch.equal(pos, pos.unique())  # sorted, no position twice
        dropped = torch.zeros(n, dtype=torch.bool)
        dropped[pos] = True
        _dropout_statistics(dropped, p)
    assert drop_positions(0, p).numel() == 0 and drop_positions(10, 0.0).numel() == 0
    assert drop_positions(10, 0.999999).numel() == 10


def test_shared_draw_reuses_a_mask_only_for_the_same_unmodified_tensor():
    from biotune.kernels import FastDropout, SharedDraw

    shared = SharedDraw()
    a, b = FastDropout(0.5, shared).train(), FastDropout(0.5, shared).train()
    x = torch.ones(64, 64)
    y = a(x)
    assert b(x) is y  # the same tensor: one mask
    assert not torch.equal(b(x.clone()), y)  # an equal but other tensor: a new mask
    x.add_(1)  # modified in place since: a new mask
    y2 = b(x)
    assert y2 is not y and a(x) is y2
    with torch.no_grad():  # another grad mode: a new mask
        z = a(x)
    assert z is not y2 and a(x) is not z
    with torch.inference_mode():  # inference tensors have no version counter: masked, never shared
        t = torch.ones(8, 8)
        assert a(t) is not a(t)


@pytest.mark.parametrize("off", ["fast_dropout", "packed_dropout"])  # the earlier name is still read
def test_lora_layers_use_fast_dropout(tmp_path, off):
    from biotune.kernels import FastDropout

    exp = Experiment(config(tmp_path, "fast"), progress=False)
    exp.setup()
    drops = [m for m in exp.model.modules() if isinstance(m, FastDropout)]
    assert len(drops) == 7 * 2  # q, k, v, o, gate, up, down in each of the 2 layers
    assert len({id(d.shared) for d in drops}) == 1 and drops[0].shared is not None  # one SharedDraw, the model's
    plain = Experiment(config(tmp_path, "plain", params={off: False}), progress=False)
    plain.setup()
    assert not any(isinstance(m, FastDropout) for m in plain.model.modules())


def _one_step(tmp_path, name, shared, monkeypatch, draws):
    """Loss and LoRA gradients of one training step (fp32: bf16 would round the gradients' sums in another
    order) on the tiny LLaMA, with a dropout whose mask depends on the input's shape only (the generator is
    reseeded before every draw): then drawing once per input or once per adapter gives the same masks, and the
    two must agree."""
    from biotune import kernels

    real = kernels.drop_positions

    def reseeded(n, *args, **kw):
        draws.append(n)
        torch.manual_seed(1234)
        return real(n, *args, **kw)

    monkeypatch.setattr(kernels, "drop_positions", reseeded)
    exp = Experiment(config(tmp_path, name, params={"dropout": 0.3, "shared_dropout": shared}), progress=False)
    exp.setup()
    batch = dict(next(iter(exp.trainer.get_train_dataloader())))
    labels = batch.pop("labels")
    model = exp.model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:  # LoRA B starts at zero, which would leave A without gradient
        torch.nn.init.normal_(p, std=0.02)
    loss = answer_loss(model(**batch), labels)
    grads = torch.autograd.grad(loss, trainable)
    monkeypatch.undo()  # the real generator again for the next run
    return loss, grads


def test_shared_dropout_draws_once_per_input_and_trains_as_separate_draws_of_that_mask(tmp_path, monkeypatch):
    torch.manual_seed(0)
    separate_draws, shared_draws = [], []
    loss, grads = _one_step(tmp_path, "separate", False, monkeypatch, separate_draws)
    torch.manual_seed(0)
    s_loss, s_grads = _one_step(tmp_path, "shared", True, monkeypatch, shared_draws)
    assert len(separate_draws) == 7 * 2  # one mask per adapter
    assert len(shared_draws) == 4 * 2  # one per input a layer's adapters read: q/k/v, o, gate/up, down
    assert s_loss.item() == pytest.approx(loss.item(), rel=1e-6)
    for a, b in zip(grads, s_grads):  # the shared copy's gradient is the sum of its three (two) readers'
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_shared_dropout_masks_each_input_once_with_probability_p(tmp_path):
    from peft.tuners.lora import LoraLayer

    exp = Experiment(config(tmp_path, "seen", params={"dropout": 0.25}), progress=False)
    exp.setup()
    model = exp.model.train()
    seen = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and name.startswith("base_model.model.model.layers.0."):
            module.lora_dropout["default"].register_forward_hook(  # what each adapter reads
                lambda m, args, out, name=name.rsplit(".", 1)[-1]: seen.__setitem__(name, out)
            )
    batch = dict(next(iter(exp.trainer.get_train_dataloader())))
    batch.pop("labels")
    model(**batch)
    assert seen["q_proj"] is seen["k_proj"] is seen["v_proj"]  # one masked copy of the hidden state
    assert seen["gate_proj"] is seen["up_proj"]
    assert seen["o_proj"] is not seen["q_proj"] and seen["gate_proj"] is not seen["q_proj"]
    x = seen["gate_proj"]
    assert abs((x == 0).float().mean().item() - 0.25) < 0.05
    assert exp.model.base_model.model.model.layers[0].mlp.up_proj.lora_dropout["default"].shared.output is not None
    model.eval()  # evaluation lets go of the last masked tensor and masks nothing
    assert exp.model.base_model.model.model.layers[0].mlp.up_proj.lora_dropout["default"].shared.output is None


@pytest.mark.parametrize("method", ["lora", "dora", "qlora"])
def test_adapters_read_bf16_activations_under_autocast_only_while_training(tmp_path, method, data_dir):
    """biotune's training context turns off peft's per-adapter fp32 copy of the input under autocast: the same
    loss as with the copy (autocast casts back to bf16 for the matmul), and the copy is back for prediction."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    exp = Experiment(config(tmp_path, method, method=method, bf16=True, params={"dropout": 0.0}), progress=False)
    exp.setup()
    layers = [m for m in exp.model.modules() if isinstance(m, BaseTunerLayer)]
    batch = dict(next(iter(exp.trainer.get_train_dataloader())))
    labels = batch.pop("labels")
    losses = []
    for context in (False, True):
        ctx = exp.method.training_context(exp.model, exp.params, autocast=True) if context else nullcontext()
        with ctx, torch.autocast("cpu", torch.bfloat16), torch.no_grad():
            assert all(m.cast_input_dtype_enabled != context for m in layers)
            losses.append(answer_loss(exp.model(**batch), labels).item())
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)
    assert all(m.cast_input_dtype_enabled for m in layers)
    exp.train()  # the whole training loop in the context, then predictions with peft's casting back on
    assert all(m.cast_input_dtype_enabled for m in layers)
    result, rows = exp.predict()
    assert len(rows) == 6


@pytest.mark.parametrize("options", [["yes", "no", "maybe"], ["chemical disease", "chemical gene", "none"]])
def test_shared_prompt_option_scoring_equals_one_pass_per_option(tmp_path, options):
    """Options that share their input (every single-token option) are scored from one pass over the prompt; the
    log-probabilities equal those of a full forward pass per option (log-softmax over every position)."""
    from biotune import inference

    exp = Experiment(config(tmp_path, "score"), progress=False)
    exp.setup()
    model, tok = exp.model.eval(), exp.tokenizer
    requests = [("Does aspirin treat headache? Answer:", options), ("Q: BRCA1 and cancer?\nA:", options)]
    got = inference.option_logprobs(model, tok, requests, batch_size=2, progress=False)
    with torch.no_grad():
        for (prompt, opts), scores in zip(requests, got):
            p = tok(prompt, add_special_tokens=False)["input_ids"]
            for option, score in zip(opts, scores):
                o = tok(option, add_special_tokens=False)["input_ids"]
                logp = torch.log_softmax(model(input_ids=torch.tensor([p + o])).logits[0].float(), dim=-1)
                ref = sum(logp[len(p) + k - 1, t].item() for k, t in enumerate(o))
                assert score == pytest.approx(ref, abs=1e-4)
