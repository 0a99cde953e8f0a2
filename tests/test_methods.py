"""What each PEFT method beyond plain LoRA does differently, checked on tiny random-init models of the real
architectures: AdaLoRA's budget reallocation and regulariser, LoRA+'s two learning rates, PiSSA / OLoRA's
exact init and the plain-LoRA adapter they leave, LoftQ's smaller quantization error, VeRA's shared frozen
matrices, rsLoRA's scaling. (That every method trains and predicts on every family: test_engine.py.)"""

import math

import pytest
import torch

from biotune.train import Experiment
from test_engine import experiment_config


def _setup(family, method, tmp_path, params=None, **training):
    exp = Experiment(experiment_config(family, method, tmp_path, params=params, **training), progress=False)
    exp.setup()
    return exp


def _batch(exp, n=4):
    batch = exp.trainer.data_collator([exp.train_features[i] for i in range(n)])
    batch.pop("logits_to_keep", None)
    return batch


def test_adalora_reallocates_its_budget_and_adds_its_regulariser(tmp_path, data_dir):
    # dev evaluations (and checkpoints) at steps 5 and 10: the one at 5 is from before the final budget
    exp = _setup("causal", "adalora", tmp_path, max_steps=10, eval_steps=5, save_steps=5)
    config = exp.model.peft_config["default"]
    # the schedule comes from the run's length: 10 steps, 10 % warm-up, the last 30 % at the final budget
    assert (config.total_step, config.tinit, config.tfinal) == (10, 1, 3)
    assert exp.trainer.compute_loss_func is None  # the model's own loss, which carries the regulariser
    batch = _batch(exp)
    exp.model.train()
    with torch.no_grad():
        out = exp.model(**batch)
        logits = out.logits[:, :-1].float()
        plain = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1), ignore_index=-100
        )
    assert out.loss > plain + 1e-4  # the orthogonality term (0.5 x the mean distance of P^T P, Q Q^T from I)
    assert config.rank_pattern is None
    exp.train()
    # reallocated: a rank pattern was set and the budget shrank from init_r to about target_r per matrix
    pattern = config.rank_pattern
    assert pattern, "AdaLoRA's budget was never reallocated"
    kept = sum(sum(mask) for mask in pattern.values())
    assert kept < len(pattern) * exp.params.init_r
    assert abs(kept - len(pattern) * exp.params.target_r) <= len(pattern)
    assert exp.train_info["steps"] == 10
    # the final (pruned) model is the one kept and scored: an earlier checkpoint does not load into it
    curve = exp.train_info["dev_score_curve"]
    assert [s for s, _ in curve] == [5, 10] and exp.train_info["best_dev_score"] == curve[-1][1]


def test_adalora_on_a_bf16_base_trains_what_it_trains_on_an_fp32_one(tmp_path, data_dir):
    """With bf16 compute the frozen base is stored in bf16 and peft upcasts the adapter to fp32, re-wrapping each
    of its tensors in a new Parameter: AdaLoRA's rank counts (`ranknum`) must not come out of that trainable."""
    from test_engine import _base, expected_trainable

    exp = _setup("causal", "adalora", tmp_path, bf16=True)
    ranknum = [q for n, q in exp.model.named_parameters() if ".ranknum." in n]
    assert ranknum and not any(q.requires_grad for q in ranknum)
    assert exp.resources["trainable_params"] == expected_trainable(exp, _base(exp))


def test_loraplus_trains_b_faster_than_a(tmp_path, data_dir):
    exp = _setup("causal", "loraplus", tmp_path, learning_rate=1e-3)
    names = {id(q): n for n, q in exp.model.named_parameters()}
    rates = {}
    for group in exp.trainer.optimizer.param_groups:  # the method's optimizer, given to the Trainer
        for q in group["params"]:
            rates[names[id(q)]] = group["lr"]
    a = {r for n, r in rates.items() if "lora_A" in n}
    b = {r for n, r in rates.items() if "lora_B" in n}
    assert a == {1e-3} and len(b) == 1 and b.pop() == pytest.approx(16e-3)
    assert len(rates) == sum(1 for q in exp.model.parameters() if q.requires_grad)  # everything that trains
    exp.train()
    assert exp.train_info["steps"] == 8


@pytest.mark.parametrize("method", ["pissa", "olora"])
@pytest.mark.parametrize("family", ["causal", "encoder"])
def test_weight_derived_init_is_exact_and_leaves_a_plain_lora_adapter(method, family, tmp_path, data_dir):
    """The init moves part of each weight into the adapter without changing the model's outputs; after
    training, final/ holds a plain LoRA adapter (rank 2r) that on the unchanged base model gives the trained
    model's outputs (a task head included). In fp32 on every machine kind: exactness is the claim (a bf16 machine
    would store the frozen residual base in bf16)."""
    from peft import PeftModel

    exp = _setup(family, method, tmp_path, bf16=False)
    batch = _batch(exp)
    batch.pop("labels")
    base, _ = exp.family.load(exp.cfg.model, exp.spec, exp.head, exp.device, torch.float32, None, exp.cfg.seed)
    if exp.cfg.model.head_bias == "prior":  # the run's new head starts at the training labels' prior
        exp.family.init_head(base, exp.head, [f["labels"] for f in exp.train_features])
    base.eval()
    exp.model.eval()
    with torch.no_grad():
        with exp.model.disable_adapter():  # the residual base alone differs from the base
            assert not torch.allclose(exp.model(**batch).logits, base(**batch).logits, atol=1e-3)
    layer = next(m for m in exp.model.modules() if hasattr(m, "lora_A") and "default" in m.lora_A)
    assert layer.lora_B["default"].weight.abs().sum() > 0  # not LoRA's zero init
    with torch.no_grad():
        torch.testing.assert_close(exp.model(**batch).logits, base(**batch).logits, atol=2e-4, rtol=1e-4)
    exp.train()
    exp.model.eval()
    with torch.no_grad():
        trained = exp.model(**batch).logits
    final = exp.out / "final"
    import json

    saved = json.loads((final / "adapter_config.json").read_text())
    assert saved["r"] == 2 * exp.params.r and saved["init_lora_weights"] is True
    fresh, _ = exp.family.load(exp.cfg.model, exp.spec, exp.head, exp.device, torch.float32, None, exp.cfg.seed)
    loaded = PeftModel.from_pretrained(fresh, str(final)).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, trained, atol=2e-4, rtol=1e-4)


def test_loftq_starts_closer_to_the_full_precision_model(tmp_path, data_dir):
    import bitsandbytes as bnb
    from safetensors.torch import load_file

    exp = _setup("causal", "loftq", tmp_path)
    weights = load_file(f"{exp.model.get_base_model().name_or_path}/model.safetensors")
    n = 0
    for name, module in exp.model.named_modules():
        if not isinstance(module, bnb.nn.Linear4bit):
            continue
        lora = exp.model.get_submodule(name.removesuffix(".base_layer"))
        w = weights[name.removeprefix("base_model.model.").removesuffix(".base_layer") + ".weight"].float()
        q = bnb.functional.dequantize_4bit(module.weight.data, module.weight.quant_state).float()
        delta = lora.scaling["default"] * lora.lora_B["default"].weight @ lora.lora_A["default"].weight
        # the adapter is the best rank-r correction of the quantization error
        assert torch.linalg.norm(w - q - delta) < 0.9 * torch.linalg.norm(w - q)
        n += 1
    assert n == 14  # 2 layers x 7 linear layers
    exp.train()
    assert math.isfinite(exp.train_info["loss_curve"][-1][1])


def test_vera_shares_one_frozen_pair_of_random_matrices(tmp_path, data_dir):
    exp = _setup("causal", "vera", tmp_path, params={"r": 16})
    layers = [m for m in exp.model.modules() if hasattr(m, "vera_A") and "default" in getattr(m, "vera_lambda_d", {})]
    assert len(layers) == 14
    shared = {id(m.vera_A["default"]) for m in layers}
    assert len(shared) == 1 and not layers[0].vera_A["default"].requires_grad
    assert all(m.vera_lambda_d["default"].requires_grad and m.vera_lambda_b["default"].requires_grad for m in layers)


@pytest.mark.parametrize("rslora", [False, True])
def test_rslora_scales_by_the_square_root_of_the_rank(rslora, tmp_path, data_dir):
    exp = _setup("causal", "lora", tmp_path, params={"r": 4, "alpha": 16, "use_rslora": rslora})
    layer = next(
        m for m in exp.model.modules() if isinstance(getattr(m, "scaling", None), dict) and "default" in m.scaling
    )
    assert layer.scaling["default"] == pytest.approx(16 / math.sqrt(4) if rslora else 16 / 4)
