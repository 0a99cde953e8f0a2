"""Every setting kept out of a result's identity leaves the real model's predictions equal, example by example:
SmolLM2-135M (the packaged checkpoint), LoRA-trained and 3-shot, in the precision this machine computes in (bf16
where the CPU has it) and in fp32. A setting that changed a loss or an answer moved into the identity: the
prediction batch (padded batched generation in bf16 is not batch-invariant), peft's LoRA forward instead of the
fused kernel (`runtime.fused_lora: false`: this test's dev loss 2.765 -> 2.818 and one of its 6 answers, bf16), the
LM head over every position (`logits_at_answers: false`: the dev loss 2.765 -> 2.796 in bf16, 2.6232388 -> 2.6232419
in fp32; the rounding trains other weights) and the CPU thread count where set (`runtime.threads: 1` against torch's
2 here: one answer of 6, bf16; torch's default is not keyed, so a study and its cells agree on an identity).
A 3-shot cell reads nothing of the training block but its precision, dev examples and train split name
(identity.UNTRAINED_READS): another learning rate, step count, batch or length leaves its answers equal.
Measured on an Intel Xeon with AVX512-BF16. Free-text NER answers, so a different rounding anywhere shows in the
generated text."""

import json

import pytest

from biotune.config import validate_experiment
from biotune.identity import identity_hash
from biotune.runtime import cpu_has_bf16
from biotune.train import evaluate_experiment, run_experiment

BASE = {
    "dataset": "ncbi-disease",
    "model": {"family": "causal", "path": "smollm2-135m"},
    # 6 steps of 2 sentences at a rate that moves the answers; one dev evaluation, at the end
    "training": {
        "max_steps": 6,
        "batch_size": 2,
        "train_limit": 12,
        "dev_limit": 2,
        "max_length": 128,
        "learning_rate": 1.0e-3,
        "eval_steps": 6,
        "save_steps": 6,
    },
    "eval": {"limit": 6, "max_new_tokens": 24},
}
# the runtime settings outside the identity, each away from its default
FREE = [{"fast_norms": False}]
# those the identity keys away from their defaults
KEYED = [{"fused_lora": False}, {"logits_at_answers": False}, {"eval_batch_size": 3}, {"threads": 1}]
PRECISIONS = {"machine": {}, "fp32": {"model.dtype": "float32", "training.bf16": False}}


def _config(tmp_path, name, method, precision, runtime=None):
    data = json.loads(json.dumps(BASE))
    data.update(method=method, output_dir=str(tmp_path / name), runtime=runtime or {})
    for dotted, value in PRECISIONS[precision].items():
        block, leaf = dotted.split(".")
        data.setdefault(block, {})[leaf] = value
    return validate_experiment(data)


def _answers(tmp_path, name) -> list[tuple]:
    rows = [json.loads(line) for line in (tmp_path / name / "predictions.jsonl").read_text().splitlines()]
    return [(r["id"], r["raw_output"], json.dumps(r["prediction"])) for r in rows]


@pytest.mark.xdist_group("real_smollm2")
@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_runtime_settings_outside_the_identity_leave_a_lora_trained_smollm2s_answers_equal(tmp_path, precision):
    if precision == "machine" and not cpu_has_bf16():
        pytest.skip("this CPU computes in fp32 (no AVX512-BF16): the fp32 case is its machine precision")
    lora = {"name": "lora"}
    base = run_experiment(_config(tmp_path, "base", lora, precision), progress=False)
    assert base["compute_dtype"] == ("bfloat16" if cpu_has_bf16() and precision == "machine" else "float32")
    want = _answers(tmp_path, "base")
    assert len({a for _, a, _ in want}) > 1  # the answers differ from sentence to sentence: text, not a constant
    for i, switch in enumerate(FREE):
        cfg = _config(tmp_path, f"free{i}", lora, precision, switch)
        assert identity_hash(cfg) == base["identity_hash"], switch
        other = run_experiment(cfg, progress=False)
        assert _answers(tmp_path, f"free{i}") == want, switch
        assert other["metrics"] == base["metrics"] and other["dev"] == base["dev"], switch
        assert other["training"]["dev_loss_curve"] == base["training"]["dev_loss_curve"], switch
    for switch in KEYED:
        assert identity_hash(_config(tmp_path, "keyed", lora, precision, switch)) != base["identity_hash"], switch


@pytest.mark.xdist_group("real_smollm2")
def test_runtime_settings_outside_the_identity_leave_smollm2s_3_shot_answers_equal(tmp_path):
    shots = {"name": "few_shot", "params": {"shots": 3}}
    base, _ = evaluate_experiment(_config(tmp_path, "base", shots, "machine"), progress=False)
    want = _answers(tmp_path, "base")
    every = {k: v for switch in FREE for k, v in switch.items()}  # none of them acts on an in-context cell
    cfg = _config(tmp_path, "free", shots, "machine", every)
    assert identity_hash(cfg) == base["identity_hash"]
    evaluate_experiment(cfg, progress=False)
    assert _answers(tmp_path, "free") == want
    # nor does any training setting it never reads (identity.UNTRAINED_READS): out of its identity
    untrained = _config(tmp_path, "untrained", shots, "machine")
    untrained = untrained.model_copy(
        update={
            "training": untrained.training.model_copy(
                update={"learning_rate": 0.3, "max_steps": 40, "batch_size": 1, "max_length": 64, "warmup_steps": 5}
            )
        }
    )
    assert identity_hash(untrained) == base["identity_hash"]
    evaluate_experiment(untrained, progress=False)
    assert _answers(tmp_path, "untrained") == want
    for switch in KEYED:
        assert identity_hash(_config(tmp_path, "keyed", shots, "machine", switch)) != base["identity_hash"], switch
