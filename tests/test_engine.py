"""The adaptation engine over every valid (model family x method) pair, on tiny random-init models of the real
transformers architectures (LLaMA, T5, GLM, BERT) trained on real BLURB examples."""

import math
import re

import pytest
import torch
from torch import nn

from biotune.config import validate_experiment
from biotune.methods import METHODS
from biotune.models import FAMILIES, tiny
from biotune.train import Experiment
from conftest import TINY_BERT_INIT, TINY_LLAMA_INIT

TINY = {
    "causal": {"path": "smollm2-135m", "random_init": TINY_LLAMA_INIT},
    "seq2seq": {"path": "smollm2-135m", "random_init": tiny.T5},
    "glm": {"path": "smollm2-135m", "random_init": tiny.GLM},
    # head_bias zero: these tests check that a method's parameters lower the training loss in 8 steps; a head that
    # starts at the label prior (the default, tested in test_heads.py) already starts at the loss they would reach
    "encoder": {
        "path": "minilm",
        "head_bias": "zero",
        "random_init": TINY_BERT_INIT,
    },
}
DATASET = {"causal": "gad", "seq2seq": "gad", "glm": "gad", "encoder": "gad"}
SMALL_PARAMS = {
    "ptuning": {"num_virtual_tokens": 4, "encoder_hidden_size": 16},
    "prompt_tuning": {"num_virtual_tokens": 4},
    "prefix": {"num_virtual_tokens": 4},
    "few_shot": {"shots": 1},
}

PAIRS = [
    (f, m) for f, fam in FAMILIES.items() for m, meth in METHODS.items() if meth.fits(fam, fam.head_for("relation"))
]


def experiment_config(family, method, tmp_path, dataset=None, head=None, params=None, **training):
    model = dict(TINY[family], family=family)
    if head:
        model["head"] = head
    meth = METHODS.get(method)
    lr = min(3e-2, 10 * meth.default_lr)  # tiny random models need a push to move in a few steps
    return validate_experiment(
        {
            "dataset": dataset or DATASET[family],
            "model": model,
            "method": {"name": method, "params": {**SMALL_PARAMS.get(method, {}), **(params or {})}},
            "training": {
                "max_steps": 8,
                "batch_size": 4,
                "train_limit": 8,
                "dev_limit": 4,
                "logging_steps": 1,
                "learning_rate": lr,
                "save_steps": 8,
                "max_length": 128,
                **training,
            },
            "eval": {"limit": 2, "batch_size": 2},
            "output_dir": str(tmp_path / f"{family}-{method}"),
        }
    )


# --- the trainable-parameter count, computed from the base architecture and the method's definition -------

IA3_TARGETS = {
    "llama": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "glm": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "t5": (["k", "v", "wo"], ["wo"]),
    "bert": (["key", "value", "output.dense"], ["output.dense"]),
}
HEAD_NAMES = ("lm_head", "classifier", "score")


def _ends(name, targets):
    return any(name == t or name.endswith("." + t) for t in targets)


# trainable parameters per adapted linear layer of (in, out) features, one row per method of that kind
PER_ADAPTED_LINEAR = {
    "lora": lambda p, i, o: p.r * (i + o),
    "dora": lambda p, i, o: p.r * (i + o) + o,  # and the magnitude vector
    "adalora": lambda p, i, o: p.init_r * (i + o) + p.init_r,  # P, Q and the singular values E
    "vera": lambda p, i, o: p.r + o,  # the scaling vectors d and b (the random matrices are shared and frozen)
}
for _same in ("qlora", "loraplus", "pissa", "olora", "loftq"):
    PER_ADAPTED_LINEAR[_same] = PER_ADAPTED_LINEAR["lora"]


def expected_trainable(exp, base) -> int:
    cfg = base.config
    method, p = exp.method.name, exp.params
    linears = {n: m for n, m in base.named_modules() if isinstance(m, nn.Linear) and n.split(".")[0] not in HEAD_NAMES}
    head = sum(q.numel() for n, q in base.named_parameters() if n.split(".")[0] in ("classifier", "score"))
    if exp.family.name != "encoder":
        head = 0
    unique = {id(q): q for q in base.parameters()}
    if method == "fft":
        return sum(q.numel() for q in unique.values())
    if method in PER_ADAPTED_LINEAR:
        return head + sum(PER_ADAPTED_LINEAR[method](p, m.in_features, m.out_features) for m in linears.values())
    if method == "ia3":
        targets, ff = IA3_TARGETS[cfg.model_type]
        return head + sum(
            m.in_features if _ends(n, ff) else m.out_features for n, m in linears.items() if _ends(n, targets)
        )
    d = getattr(cfg, "hidden_size", None) or cfg.d_model
    subs = 2 if cfg.is_encoder_decoder else 1
    n_virtual = p.num_virtual_tokens * subs
    if method == "prompt_tuning":
        return head + n_virtual * d
    if method == "ptuning":
        h = p.encoder_hidden_size
        return head + n_virtual * d + (d * h + h) + (h * h + h) + (h * d + d)
    if method == "prefix":
        layers = getattr(cfg, "num_hidden_layers", None) or cfg.num_layers
        heads = cfg.num_attention_heads if hasattr(cfg, "num_attention_heads") else cfg.num_heads
        kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
        head_dim = getattr(cfg, "head_dim", None) or d // heads
        return head + p.num_virtual_tokens * layers * 2 * kv_heads * head_dim
    raise AssertionError(method)


_BASES: dict = {}


def _base(exp):
    """The model before the method (its shapes only are read): one per family and head, not one per method."""
    key = (exp.family.name, exp.head)
    if key not in _BASES:
        _BASES[key], _ = exp.family.load(
            exp.cfg.model, exp.spec, exp.head, exp.device, torch.float32, None, exp.cfg.seed
        )
    return _BASES[key]


def _train_loss(exp) -> float:
    return exp.trainer.evaluate(exp.trainer.train_dataset, metric_key_prefix="probe")["probe_loss"]


@pytest.mark.parametrize("family,method", PAIRS, ids=[f"{f}-{m}" for f, m in PAIRS])
def test_family_method_trains_and_predicts(family, method, tmp_path, data_dir):
    exp = Experiment(experiment_config(family, method, tmp_path), progress=False)
    exp.setup()
    if exp.method.trains:
        assert exp.resources["trainable_params"] == expected_trainable(exp, _base(exp))
        frozen = {n: q.detach().clone() for n, q in exp.model.named_parameters() if not q.requires_grad}
        before = _train_loss(exp)
        exp.train()
        after = _train_loss(exp)
        assert after < before, (before, after)
        for n, q in exp.model.named_parameters():
            if n in frozen:
                assert torch.equal(q.detach(), frozen[n]), f"frozen parameter {n} changed"
        assert exp.resources["train_tokens"] > 0 and exp.resources["adapter_bytes"] > 0
    else:
        assert exp.resources["trainable_params"] == 0 or not exp.method.trains
    summary = exp.write(*exp.predict())
    assert summary["metrics"]["n"] == 2
    assert math.isfinite(summary["metrics"]["score"])
    assert (exp.out / "metrics.json").is_file() and (exp.out / "predictions.jsonl").is_file()


@pytest.mark.parametrize("method", ["fft", "lora"])
@pytest.mark.parametrize(
    "dataset,head",
    [
        ("ncbi-disease", "token_classification"),
        ("gad", "sequence_classification"),
        ("bioasq", "sequence_classification"),
        ("hoc", "multi_label"),
        ("biosses", "regression"),
    ],
)
def test_encoder_heads(dataset, head, method, tmp_path, data_dir):
    exp = Experiment(experiment_config("encoder", method, tmp_path, dataset=dataset, head=head), progress=False)
    exp.setup()
    before = _train_loss(exp)
    exp.train()
    assert _train_loss(exp) < before
    result, rows = exp.predict()
    assert result["n"] == 2 and math.isfinite(result["score"])
    assert all(type(r["prediction"]) is type(r["gold"]) for r in rows)


@pytest.mark.parametrize("method", ["prefix", "ptuning", "prompt_tuning"])
def test_soft_prompt_generation_decodes_what_the_model_predicts(method, tmp_path, data_dir):
    """peft 0.21 + transformers 5 `generate` drops a learned prefix and drifts from the forward pass with
    virtual tokens; biotune's generation must equal greedy decoding by the trained model's forward pass."""
    from biotune import inference

    exp = Experiment(experiment_config("causal", method, tmp_path), progress=False)
    exp.setup()
    torch.manual_seed(0)
    with torch.no_grad():
        for q in exp.model.parameters():
            if q.requires_grad:
                q.normal_(0, 2)
    exp.model.eval()
    tok = exp.tokenizer
    prompts = ["Is aspirin a drug?", "Name a gene that is linked to breast cancer.", "Dose?"]
    got = inference.generate(exp.model, tok, prompts, 8, progress=False)  # one batch, left-padded
    for prompt, text in zip(prompts, got):  # reference: one prompt at a time, full forward pass per token
        ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        new = []
        stops = set(inference.stop_token_ids(tok))
        with torch.no_grad():
            for _ in range(8):
                nxt = int(exp.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, -1].argmax())
                new.append(nxt)
                if nxt in stops:
                    break
                ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
        assert text == tok.decode(new, skip_special_tokens=True)
    with exp.model.disable_adapter():
        assert inference.generate(exp.model, tok, prompts, 8, progress=False) != got  # the soft prompt matters


def test_without_progress_bars_training_and_prediction_say_a_plain_line_a_minute(tmp_path, monkeypatch, capfd):
    """`--no-progress` (a log file): no bars, but training and test prediction each print plain lines (here every
    step, the minute shortened) with the count done, the rate and the time left, so a log shows the run is alive."""
    from biotune import progress

    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)
    exp = Experiment(experiment_config("causal", "lora", tmp_path), progress=False)
    exp.setup()
    exp.train()
    exp.predict()
    err = capfd.readouterr().err
    assert re.search(r"training: step \d+/8 \(\d+ %\), [0-9.]+ steps/s, about \d+ s left", err), err[-2000:]
    assert re.search(r"gad: \d+/\d+ ex \(\d+ %\), [0-9.]+ ex/s, about \d+ s left", err), err[-2000:]  # dev scoring
    assert "it/s]" not in err  # no tqdm bar
