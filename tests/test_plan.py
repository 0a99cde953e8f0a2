"""The cost planner against values worked out by hand, and against published figures.

Hand-computed shapes (LLaMA-3-8B: hidden 4096, MLP 14336, 32 layers, 32 query and 8 key/value heads of 128,
vocabulary 128256, untied head):
  linear weights per layer  q 4096^2 + k, v 4096 x 1024 each + o 4096^2 + gate, up, down 4096 x 14336 each
                            = 218,103,808; x 32 layers = 6,979,321,856
  LoRA r 64 per layer       r x (in + out) per linear: 2 x 64 x 8192 + 2 x 64 x 5120 + 3 x 64 x 18432 = 5,242,880;
                            x 32 = 167,772,160 (peft's count)
  KV cache per token        2 (K, V) x 32 layers x 1024 x 2 bytes = 131,072 bytes (128 KiB)
"""

from __future__ import annotations

import pytest

from biotune.config import ExperimentConfig, TrainingConfig
from biotune.plan import accelerator, plan_experiment
from biotune.plan import estimate as E
from biotune.plan.architecture import Stack, architecture
from biotune.study.grid import load_study
from conftest import cli_here

LLAMA = "meta-llama/Meta-Llama-3-8B-Instruct"
LINEAR_PER_LAYER = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336
HEAD = 4096 * 128256


def _cfg(method="lora", params=None, path=LLAMA, family="causal", dataset="gad", **training):
    return ExperimentConfig(
        dataset=dataset,
        model={"family": family, "path": path},
        method={"name": method, "params": params or {}},
        training=training,
    )


def test_nf4_bytes_by_hand():
    # 4 bits per weight + an fp32 absmax per 64 weights; double quantization: an 8-bit absmax per 64 weights and
    # an fp32 constant per 256 of those
    assert E.nf4_bytes(1_000_000, double_quant=False) == 1_000_000 * (0.5 + 4 / 64)
    assert E.nf4_bytes(1_000_000) == pytest.approx(1_000_000 * (0.5 + 1 / 64 + 4 / (64 * 256)))
    # the QLoRA paper (section 3): double quantization takes the constants from 0.5 to 0.127 bits per weight
    assert (E.nf4_bytes(8 * 64 * 256) / (64 * 256) - 4) == pytest.approx(0.127, abs=1e-3)


def test_llama_3_8b_shapes_and_lora_count():
    a = architecture(_cfg(params={"r": 64, "alpha": 16}))
    assert a.total_params == 8_030_261_248  # LLaMA-3-8B's published parameter count
    assert a.decoder.linear_params == a.quantizable_params == 32 * LINEAR_PER_LAYER == 6_979_321_856
    assert a.head_params == HEAD
    assert a.trainable_params == 32 * (2 * 64 * 8192 + 2 * 64 * 5120 + 3 * 64 * 18432) == 167_772_160
    d = a.decoder
    assert (d.layers, d.hidden, d.q_dim, d.kv_dim, d.intermediate, d.glu, d.causal) == (
        32,
        4096,
        4096,
        1024,
        14336,
        True,
        True,
    )


@pytest.mark.parametrize(
    "path, family, total",
    [
        ("google/flan-t5-xl", "seq2seq", 2_783_959_040),  # 2.85 B on the hub counts the shared embedding twice
        ("google/flan-ul2", "seq2seq", 19_459_613_696),
        ("THUDM/glm-4-9b-chat-hf", "glm", 9_399_951_360),
    ],
)
def test_known_models_parameter_counts(path, family, total):
    assert architecture(_cfg("fft", path=path, family=family)).total_params == total


def test_the_packaged_models_table_entry_has_its_shapes():
    """SmolLM2-135M's entry (for machines without the package: benchmarks/gpu_check.py) counts what the packaged
    model counts."""
    table = architecture(_cfg("fft", path="HuggingFaceTB/SmolLM2-135M-Instruct"))
    packaged = architecture(_cfg("fft", path="smollm2-135m"))
    assert table.total_params == packaged.total_params == 134_515_008
    assert table.decoder == packaged.decoder and table.head_params == packaged.head_params


def test_weights_and_state_by_hand():
    lora = architecture(_cfg(params={"r": 64}))
    bf16 = E.Regime(compute_bytes=2, trains=True, trains_base=False, quantized=False)
    assert E.weight_bytes(lora, bf16) == 8_030_261_248 * 2 + 167_772_160 * 4
    assert E.training_state_bytes(lora, bf16) == 167_772_160 * 12  # fp32 gradient + AdamW's two moments
    q = E.Regime(compute_bytes=2, trains=True, trains_base=False, quantized=True)
    assert E.weight_bytes(lora, q) == pytest.approx(
        6_979_321_856 * (0.5 + 1 / 64 + 4 / (64 * 256)) + (8_030_261_248 - 6_979_321_856) * 2 + 167_772_160 * 4
    )
    fft = architecture(_cfg("fft"))
    full = E.Regime(compute_bytes=2, trains=True, trains_base=True, quantized=False, autocast=True)
    assert E.weight_bytes(fft, full) == 8_030_261_248 * 4
    # gradients + moments of every weight, and autocast's bf16 copy of each linear weight
    assert E.training_state_bytes(fft, full) == 8_030_261_248 * 12 + (6_979_321_856 + HEAD) * 2
    icl = E.Regime(compute_bytes=2, trains=False, trains_base=False, quantized=False)
    assert E.weight_bytes(fft, icl) == 8_030_261_248 * 2 and E.training_state_bytes(fft, icl) == 0


def test_activations_by_hand():
    s = Stack(layers=2, hidden=4, heads=2, q_dim=4, kv_dim=2, intermediate=8, glu=True, causal=True, linear_params=0)
    arch = type(
        "A",
        (),
        {
            "encoder": None,
            "decoder": s,
            "stacks": [s],
            "hidden_dropout": 0.0,
            "token_head": True,
            "attention_dropout": 0.0,
            "adapter_per_token_params": 0,
            "position_bias": False,
        },
    )()
    r = E.Regime(compute_bytes=2, trains=True, trains_base=False, quantized=False)
    # per token and layer: norms 4h + q + 2 kv + attention output twice 2q + MLP 4i = 16 + 4 + 4 + 8 + 32 = 64
    assert E.saved_per_token(s, arch, r, 10) == 64 * 2
    # batch 1 x 10 tokens: 2 layers x 10 x 128 bytes + the final norm (10 x 2h x 2 bytes)
    assert E.activation_bytes(arch, r, 1, 10, 1) == 2 * 10 * 128 + 10 * 8 * 2
    ckpt = E.Regime(compute_bytes=2, trains=True, trains_base=False, quantized=False, gradient_checkpointing=True)
    # checkpointing: one hidden state per layer, one layer recomputed, the final norm
    assert E.activation_bytes(arch, ckpt, 1, 10, 1) == 2 * 10 * 4 * 2 + 10 * 128 + 10 * 8 * 2
    eager = E.Regime(compute_bytes=4, trains=True, trains_base=False, quantized=False, eager_attention=True)
    # eager attention keeps the heads x context scores (fp32: 4 bytes)
    assert E.saved_per_token(s, arch, eager, 10) == 64 * 4 + 2 * 10 * 4


def test_kv_cache_and_flops_by_hand():
    a = architecture(_cfg("zero_shot"))
    r = E.Regime(compute_bytes=2, trains=False, trains_base=False, quantized=False)
    assert E.kv_cache_bytes(a, r, 1, 999, 1) == 1000 * 131_072  # 128 KiB per token
    # one token's forward: 2 FLOPs per weight it passes (the 7.0 B linear weights and the head) + attention
    one = 2 * (6_979_321_856 + HEAD) + 4 * 4096 * 32 * 1 * 1
    assert E.forward_flops(a, 1, 0, 1) == one == 15_009_841_152
    # 2,048 tokens, causal: each attends to (n + 1) / 2 on average; the head at every position
    n = 2048
    assert E.forward_flops(a, n, 0, n) == 2 * HEAD * n + n * 2 * 6_979_321_856 + 4 * 4096 * 32 * n * (n + 1) / 2
    # greedy generation of 3 tokens after a 5-token prompt: prefill (head once), then 2 single-token steps
    gen = (
        5 * 2 * 6_979_321_856
        + 4 * 4096 * 32 * 5 * 6 / 2
        + 2 * HEAD
        + 2 * 2 * (6_979_321_856 + HEAD)
        + 4 * 4096 * 32 * (6 + 7)
    )
    assert E.generation_flops(a, 5, 3) == gen
    assert E.training_multiplier(E.Regime(2, True, True, False)) == 3
    assert E.training_multiplier(E.Regime(2, True, False, False, gradient_checkpointing=True)) == 3
    # optimizer steps as the Trainer runs them (TrainingConfig.schedule, which train.py sets the Trainer up with)
    assert TrainingConfig(batch_size=8, grad_accum=2, epochs=3).schedule(1000)[0] == 3 * 63
    assert TrainingConfig(batch_size=8, max_steps=20).schedule(1000)[0] == 20


def test_qlora_paper_llama_65b():
    """QLoRA (Dettmers et al. 2023): LLaMA-65B in 4-bit NF4 with double quantization takes about 4.127 bits per
    weight (33-35 GB), and fine-tunes on one 48 GB GPU with bf16 adapters and a paged optimizer; regular 16-bit
    fine-tuning needs more than 780 GB. biotune keeps adapters in fp32 with torch's AdamW (12.8 GB for 0.8 B
    trainable weights at r 64), which the plan says puts it just over a 48 GB card."""
    gpu = accelerator(memory_gb=48, tflops=150)
    cfg = _cfg(
        "qlora",
        {"r": 64, "alpha": 16},
        path="huggyllama/llama-65b",
        batch_size=1,
        max_length=512,
        gradient_checkpointing=True,
        train_limit=16,
        dev_limit=8,
    )
    qlora = plan_experiment(cfg, gpu)
    a = architecture(cfg)
    base = qlora.weights_bytes - a.trainable_params * 4
    assert 33e9 < base < 35e9
    assert a.trainable_params == 80 * (4 * 64 * (8192 + 8192) + 3 * 64 * (8192 + 22016)) == 799_539_200
    assert qlora.state_bytes == a.trainable_params * 12
    assert 44e9 < qlora.peak_bytes < 52e9 and not qlora.fits
    assert qlora.suggestions == ["FSDP over 2 GPUs"]
    fft = plan_experiment(
        _cfg(
            "fft",
            path="huggyllama/llama-65b",
            batch_size=1,
            max_length=512,
            gradient_checkpointing=True,
            train_limit=16,
            dev_limit=8,
        ),
        gpu,
        suggest=False,
    )
    assert not fft.fits and fft.weights_bytes + fft.state_bytes > 780e9


def test_plan_suggests_what_fits():
    gpu = accelerator("a100-80gb")
    full = plan_experiment(_cfg("fft", batch_size=4, max_length=1024, train_limit=64, dev_limit=16), gpu)
    assert not full.fits
    assert any(s.startswith(("QLoRA", "FSDP")) for s in full.suggestions), full.suggestions
    small = accelerator("rtx-4090")
    lora = plan_experiment(_cfg(params={"r": 16}, batch_size=8, max_length=1024, train_limit=64, dev_limit=16), small)
    if not lora.fits:
        assert lora.suggestions and "none of" not in lora.suggestions[0]
    zero = plan_experiment(_cfg("zero_shot"), gpu)
    assert zero.fits and zero.train_flops == 0 and zero.eval_flops > 0


def test_plan_counts_real_tokens():
    """FLOPs follow the data the cell reads: twice the training examples, twice the training FLOPs."""
    gpu = accelerator("h100-sxm")
    small = plan_experiment(_cfg("lora", path="smollm2-135m", train_limit=100, dev_limit=20, epochs=1), gpu)
    large = plan_experiment(_cfg("lora", path="smollm2-135m", train_limit=200, dev_limit=20, epochs=1), gpu)
    assert small.train_tokens > 100 * 20  # GAD sentences, prompted: tens of tokens each
    ratio = (large.train_flops - small.train_flops) / small.train_flops
    assert 0.5 < ratio < 1.5
    assert small.notes == [] or all("proxy" not in n for n in small.notes)  # SmolLM2's own tokenizer


def test_a_decoding_step_reads_at_the_rate_measured_for_its_rows():
    """A machine whose weight-read rates were measured (this CPU: machine.weight_read_rates) reads a step of r rows
    at its time per byte interpolated between the measured batch sizes, extended beyond them; a table GPU at
    BANDWIDTH_EFFICIENCY of its bandwidth; a GPU described without a bandwidth, not at all (compute only)."""
    from biotune.plan.gpus import BANDWIDTH_EFFICIENCY, Accelerator

    cpu = Accelerator("cpu", 24e9, None, 0.144, device_type="cpu", read_gbs=((1, 20.0), (8, 8.0), (32, 4.0)))
    assert cpu.read_bytes_per_s(1) == pytest.approx(20e9) and cpu.read_bytes_per_s(8) == pytest.approx(8e9)
    assert cpu.read_bytes_per_s(32) == pytest.approx(4e9)
    # 20 rows, halfway from 8 to 32: halfway between 1/8 and 1/4 ns a byte
    assert cpu.read_bytes_per_s(20) == pytest.approx(1e9 / ((1 / 8 + 1 / 4) / 2))
    # 56 rows: the step's time per byte grows on as it did from 8 to 32 rows (1/8 ns more a byte per 24 rows)
    assert cpu.read_bytes_per_s(56) == pytest.approx(1e9 / (1 / 8 + 2 / 8))
    assert accelerator("h100-sxm").read_bytes_per_s(8) == pytest.approx(3.35e12 * BANDWIDTH_EFFICIENCY)
    assert accelerator(None, 24, 100).read_bytes_per_s(8) is None


def test_the_plan_sees_what_the_generation_batch_does():
    """A batch pads its prompts to its longest (biotune.inference): zero-shot PubMedQA (an abstract each, of varied
    length) plans slower 32 at a time than 8 on any machine. At read rates like this CPU's (a step of 32 rows reads
    4.3/6.3 as many bytes a second as a step of 8: machine.weight_read_rates), zero-shot NCBI-disease's decoding
    plans slower than its compute, less so 32 rows at a time. (The planner counts the answers' gold lengths, a few
    tokens there, so its decoding steps are a small part of this plan; an untrained model writing up to its budget
    makes them most of the real time: the calibration learns that per model, method and dataset.)"""
    from biotune.plan.gpus import Accelerator

    cpu = Accelerator("cpu", 24e9, None, 0.144, device_type="cpu", read_gbs=((1, 24.3), (8, 6.3), (32, 4.3)))
    flat = Accelerator("cpu", 24e9, None, 0.144, device_type="cpu")

    def seconds(acc, batch, dataset="ncbi-disease"):
        cfg = ExperimentConfig(
            dataset=dataset,
            model={"family": "causal", "path": "smollm2-135m", "dtype": "float32"},
            method={"name": "zero_shot"},
            eval={"limit": 64},
            runtime={"eval_batch_size": batch},
        )
        return plan_experiment(cfg, acc, suggest=False).eval_seconds

    for acc in (flat, accelerator("h100-sxm")):
        assert seconds(acc, 32, "pubmedqa") > 1.2 * seconds(acc, 8, "pubmedqa")
    assert seconds(cpu, 8) > seconds(flat, 8) and seconds(cpu, 32) > seconds(flat, 32)
    assert seconds(cpu, 32) - seconds(flat, 32) < seconds(cpu, 8) - seconds(flat, 8)


def test_a_sample_of_a_split_pads_as_the_split_would():
    """A split measured on a sample (plan.tokens.SAMPLE) is batched as its length quantiles: 100 of PubMedQA's 500
    test prompts pad a batch of 32 as the 500 do (about 5 % here), not as 32 prompts five times further apart in
    length would (about 26 %)."""
    from biotune.plan import tokens

    gpu = accelerator("h100-sxm")
    cfg = ExperimentConfig(
        dataset="pubmedqa",
        model={"family": "causal", "path": "smollm2-135m"},
        method={"name": "zero_shot"},
        eval={"limit": 500},
        runtime={"eval_batch_size": 32},
    )
    before = tokens.SAMPLE
    try:
        tokens.SAMPLE = 500
        whole = plan_experiment(cfg, gpu, suggest=False)
        tokens.SAMPLE = 100
        sampled = plan_experiment(cfg, gpu, suggest=False)
    finally:
        tokens.SAMPLE = before
    assert sampled.eval_flops == pytest.approx(whole.eval_flops, rel=0.05)
    assert sampled.eval_seconds == pytest.approx(whole.eval_seconds, rel=0.05)


def test_unknown_gpu_is_one_line():
    from biotune.errors import BiotuneError

    with pytest.raises(BiotuneError, match="not in biotune's GPU table; valid: a100-40gb"):
        accelerator("b300")
    with pytest.raises(BiotuneError, match="--gpu NAME"):
        accelerator()


# -- the command, as a user runs it -------------------------------------------------------------------------------


def _biotune(*args, sample: int = 10):
    """`biotune ARGS` in this process (a plan loads no model: a fresh process would add only its imports), with
    `sample` examples measured per split."""
    from biotune.plan import tokens

    before, tokens.SAMPLE = tokens.SAMPLE, sample
    try:
        return cli_here(*args, env={"COLUMNS": "200"})
    finally:
        tokens.SAMPLE = before


def test_plan_paper_grid_on_one_80gb_gpu():
    """The paper's grid before it runs: every cell planned (but the EBM PICO ones that need its missing train
    split), the 8-20 B full fine-tunes do not fit one 80 GB GPU and are told what would."""
    r = _biotune("study", "configs/studies/paper.yaml", "--plan", "--gpu", "a100-80gb")
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    total = out.strip().splitlines()[-1]
    # 910 cells to run now (candidates on the search seed, cells without a search) and each search's winner on
    # the 3 reported seeds (234 searches), its candidates counted at the share of the budget halving gives them
    assert total.startswith("1612 cells: ") and "GPU-hours in all" in total, total
    assert "counted at the share of their budget halving runs" in total
    assert "120 cannot be planned" in total  # EBM PICO's training cells (and its few-shot cells' shots)
    assert "need FSDP over" in total
    for model in ("llama-3-8b", "flan-t5-xl", "glm-4-9b", "flan-ul2", "pubmedbert", "bioclinicalbert"):
        assert model in out
    assert "tokens counted with a proxy" in out  # no hub here: the proxy tokenizers are named
    rows = [line for line in out.splitlines() if "llama-3-8b__fft" in line]
    assert len(rows) > 20 and all(" NO " in line or "cannot count" in line for line in rows)
    # by dataset, in the study's order, with the running total (how far a slice of so many hours gets): the last
    # running total is the study's total
    table = out[out.index("by dataset, in the study's order") :]
    rows = [[c.strip() for c in line.strip("│ ").split("│")] for line in table.splitlines() if line.startswith("│")]
    study, _, _ = load_study("configs/studies/paper.yaml")  # the tests run from the repository root
    assert [row[0] for row in rows] == study.dataset_names(), rows
    hours = total.split("; ")[1].split(" GPU-hours in all")[0]
    assert rows[-1][3] == hours
    assert sum(float(row[2].replace(",", "")) for row in rows) == pytest.approx(float(hours.replace(",", "")), rel=0.01)


def test_plan_demo_and_one_experiment():
    r = _biotune("study", "configs/demo.yaml", "--plan", "--gpu", "l4", sample=50)
    assert r.returncode == 0, r.stderr[-2000:]
    total = r.stdout.strip().splitlines()[-1]
    assert "0 do not" in total and "cannot be planned" not in total, total
    r = _biotune("run", "configs/causal/smollm2-135m_lora.yaml", "--plan", "--gpu-memory", "24", "--gpu-tflops", "100")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "plan for custom (24 GB, 100 TFLOP/s bf16" in r.stdout and "yes" in r.stdout


def test_plan_without_a_gpu_named_is_for_this_machine_its_peak_measured_once(tmp_path, monkeypatch):
    """No GPU here: `--plan` alone plans `study` and `run` for this CPU, its matmul peak measured the first time
    and read from the cache after (the second plan measures nothing)."""
    import json

    from biotune.plan import machine

    monkeypatch.delenv("BIOTUNE_PEAK_FILE")  # the default place: the cache folder
    monkeypatch.setenv("BIOTUNE_CACHE", str(tmp_path))
    machine.this_machine.cache_clear()
    r = _biotune("study", "configs/demo.yaml", "--plan", sample=50)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "plan for this CPU (" in r.stdout and "matmul peak measured here" in r.stdout
    total = r.stdout.strip().splitlines()[-1]
    assert "0 do not" in total and "cannot be planned" not in total, total
    assert "reading every weight and the KV cache at the rate measured here for a decoding step's matmuls" in r.stdout
    peaks = json.loads((tmp_path / machine.PEAK_FILE).read_text())
    ((key, peak),) = peaks.items()
    assert key.startswith(f"cpu|{machine.cpu_name()}|") and peak["fp32_tflops"] > 0
    assert [int(r) for r in peak["read_gbs"]] == list(machine.READ_ROWS) and min(peak["read_gbs"].values()) > 0
    # a peak cached before the read rates were measured gains them, its matmul peak not measured again
    del peak["read_gbs"]
    (tmp_path / machine.PEAK_FILE).write_text(json.dumps(peaks))

    def measured_again(*a, **k):
        raise AssertionError("the peak is measured once per machine")

    monkeypatch.setattr(machine, "matmul_peak", measured_again)
    machine.this_machine.cache_clear()
    r = _biotune("run", "configs/causal/smollm2-135m_lora.yaml", "--plan")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "plan for this CPU (" in r.stdout and "yes" in r.stdout
    assert set(json.loads((tmp_path / machine.PEAK_FILE).read_text())[key]["read_gbs"]) == set(
        map(str, machine.READ_ROWS)
    )
    monkeypatch.setattr(machine, "weight_read_rates", measured_again)  # now both are cached
    machine.this_machine.cache_clear()
    assert _biotune("run", "configs/causal/smollm2-135m_lora.yaml", "--plan").returncode == 0
    machine.this_machine.cache_clear()


def test_halving_s_expected_share_of_the_budget():
    from biotune.plan.planner import expected_share

    # 3 candidates to a quarter, where the best one is kept alone: chosen there, none trains on (3 x 0.25 / 3)
    assert expected_share([0.25, 1.0], 0.34, 3) == pytest.approx(0.25)
    # 9 candidates, rungs at 1/9, 1/3, 1 keeping a third: 9 x 1/9 + 3 x 2/9 over 9 (the one kept at 1/3 is chosen)
    assert expected_share([1 / 9, 1 / 3, 1.0], 1 / 3, 9) == pytest.approx((1 + 2 / 3) / 9)
    # as halving keeps them: a third of 5 rounds down to 1 (chosen at the first rung); half of 5 to 2, on to the end
    assert expected_share([0.5, 1.0], 1 / 3, 5) == pytest.approx(0.5)
    assert expected_share([0.5, 1.0], 0.5, 5) == pytest.approx((5 * 0.5 + 2 * 0.5) / 5)
    # 6 at a quarter, 3 to a half, 1 of them kept: chosen at the half
    assert expected_share([0.25, 0.5, 1.0], 0.5, 6) == pytest.approx((6 * 0.25 + 3 * 0.25) / 6)
    assert expected_share([1.0], 0.5, 4) == 1.0  # one rung: every candidate its whole budget


def test_a_gpu_is_found_in_the_table_by_the_name_cuda_gives_it():
    from biotune.plan.machine import table_gpu

    assert table_gpu("NVIDIA H100 80GB HBM3", 85e9) == "h100-sxm"
    assert table_gpu("NVIDIA H100 PCIe", 85e9) == "h100-pcie"
    assert table_gpu("NVIDIA A100-SXM4-40GB", 42e9) == "a100-40gb"
    assert table_gpu("NVIDIA A100-SXM4-80GB", 85e9) == "a100-80gb"
    assert table_gpu("NVIDIA GeForce RTX 4090", 25e9) == "rtx-4090"
    assert table_gpu("NVIDIA L4", 24e9) == "l4" and table_gpu("NVIDIA L40S", 48e9) == "l40s"
    assert table_gpu("NVIDIA B300", 280e9) is None  # measured instead


def test_a_run_says_its_plan_before_it_starts_and_its_time_against_the_plan_when_it_ends(tmp_path):
    import re

    on = {"BIOTUNE_ESTIMATE": "1"}
    r = cli_here("run", "configs/causal/tiny-llama_lora.yaml", "-o", tmp_path / "run", "--no-progress", env=on)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    before = next(i for i, line in enumerate(lines) if line.startswith("plan on this CPU ("))
    assert re.search(r"about \d+ s \(training \d+ s, prediction \d+ s\), [0-9.]+ GB peak memory", lines[before])
    after = lines[-1]
    assert re.fullmatch(
        r"planned \d+ s, took \d+ s \([+-]\d+ %: training \d+ s → \d+ s, prediction \d+ s → \d+ s\)", after
    ), after
    # a finished run is not planned again: it only reads its result
    again = cli_here("run", "configs/causal/tiny-llama_lora.yaml", "-o", tmp_path / "run", "--no-progress", env=on)
    assert "plan on" not in again.stdout and "planned" not in again.stdout


@pytest.mark.parametrize(
    "path, family, dataset, method",
    [
        (LLAMA, "causal", "gad", "lora"),
        (LLAMA, "causal", "gad", "prefix"),
        (LLAMA, "causal", "gad", "vera"),
        ("google/flan-t5-xl", "seq2seq", "gad", "dora"),
        ("google/flan-t5-xl", "seq2seq", "gad", "ptuning"),
        ("THUDM/glm-4-9b-chat-hf", "glm", "gad", "adalora"),
        ("microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract", "encoder", "ncbi-disease", "lora"),
    ],
)
def test_counts_from_1_2_and_3_layers_equal_the_whole_models(path, family, dataset, method):
    """The planner measures a deep model on copies of 1, 2 and 3 layers and extrapolates: on the real widths at
    depth 6 (so the whole model is cheap to build here), every count equals the whole model's."""
    from biotune.data import get_spec
    from biotune.methods import METHODS
    from biotune.models import FAMILIES
    from biotune.plan.architecture import _extrapolated, _measure, model_config

    cfg = _cfg(method, path=path, family=family, dataset=dataset)
    fam, meth, spec = FAMILIES.get(family), METHODS.get(method), get_spec(dataset)
    head = fam.head_for(spec.task)
    config = model_config(cfg.model)
    for k, v in {**fam.head_kwargs(head, spec), "num_hidden_layers": 6, "num_layers": 6}.items():
        setattr(config, k, v)
    if getattr(config, "num_decoder_layers", None):
        config.num_decoder_layers = 6
    params = meth.params_model(**cfg.method.params)
    whole = _measure(config, fam, meth, head, params)
    assert whole["trainable"] > 0
    assert _extrapolated(config, fam, meth, head, params) == whole
    config.num_decoder_layers = 5  # stacks of different depths: measured whole
    assert family != "seq2seq" or _extrapolated(config, fam, meth, head, params) is None
