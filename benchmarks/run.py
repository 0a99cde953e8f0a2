"""biotune's speed, side by side with what users would run instead. One command:

    python benchmarks/run.py                 # all sections (about 30 minutes on 2 CPU cores)
    python benchmarks/run.py --quick         # smaller sizes, a few minutes: checks the benchmark runs
    python benchmarks/run.py --only train,memory

Each comparison runs both sides in this one invocation, on this machine, with the packaged SmolLM2-135M, the
same data and seed, each side in its own process (peak RSS polled from outside, every 20 ms, the same way
for both), and reports the ratio. Results: benchmarks/results/<machine>.json, and the table in BENCHMARKS.md
(rendered from every JSON file in benchmarks/results/). Runs unchanged on a CUDA machine (device chosen at run
time; peak memory is then CUDA max allocated as well as RSS).

Sections
  peak    bf16 and fp32 matmul peak of this machine (large torch.matmul loop)
  train   LoRA training: `biotune run` vs benchmarks/baseline_lora.py (HF Trainer + PEFT, fp32 defaults) on the
          same GAD examples, one epoch, batch 8, each side with seeds 0 and 1: real and padded tokens/s, peak
          RSS, training loss, and the answer loss of every trained adapter on the same 256 held-out GAD dev
          examples (how "equal or better loss" is checked: the means, against the seed-to-seed spread);
          MFU = 4 * N * real tokens/s / the measured matmul peak of the dtype the side computes in
  eval    zero-shot PubMedQA, the 500 test questions: `biotune eval` vs lm-evaluation-harness's own `pubmedqa`
          task (HF backend, batch 8) pointed at the same questions: examples/s (evaluation only, model loading
          timed apart) and accuracy
  memory  LoRA vs QLoRA vs FFT training on the same batch: weight bytes (parameters and buffers as stored,
          counted from the tensors) and peak RSS of the training process; the lowest QLoRA/LoRA ratio the
          model allows with its embedding in bf16; then LoRA vs QLoRA on a larger model of the same family
          (SmolLM2-360M's shapes, random init: no larger real model is packaged), where the embedding is a
          smaller share
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


# -- the machine ----------------------------------------------------------------------------------------
def machine() -> dict:
    import torch

    cpu = platform.processor()
    try:
        text = Path("/proc/cpuinfo").read_text()
        cpu = re.search(r"model name\s*:\s*(.+)", text).group(1).strip()
        flags = re.search(r"flags\s*:\s*(.+)", text).group(1).split()
    except (OSError, AttributeError):
        flags = []
    versions = {}
    for lib in ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "datasets", "lm_eval"):
        try:
            versions[lib] = __import__(lib).__version__
        except Exception:  # noqa: BLE001
            versions[lib] = None
    import biotune

    return {
        "cpu": cpu,
        "cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "avx2": "avx2" in flags,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "versions": {"biotune": biotune.__version__, **versions},
        "commit": _commit(),
    }


def _commit() -> str | None:
    """The biotune commit measured ("+" when the tree had uncommitted changes); None outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+" if dirty else "")


def machine_kind(info: dict) -> str:
    """What decides the compute dtype and its peak: the GPU, or the CPU's bf16 support (AVX512-BF16 / AMX;
    without it biotune computes in fp32: bf16 matmuls are emulated there, far below the fp32 peak)."""
    if info["gpu"]:
        return "cuda"
    return "avx512bf16" if info["avx512_bf16"] or info["amx_bf16"] else "avx2" if info.get("avx2") else "cpu"


def machine_slug(info: dict) -> str:
    """One results file per machine kind: the same CPU name comes with and without bf16 support."""
    name = info["gpu"] or info["cpu"]
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] + f"-{info['cores']}c"
    return slug if info["gpu"] else f"{slug}-{machine_kind(info)}"


# -- running a side in its own process, peak RSS polled from outside ------------------------------------
def run_measured(cmd: list[str], log: Path, env: dict | None = None) -> dict:
    """Run `cmd`, polling the RSS of its whole process tree every 20 ms. Returns wall seconds and peak RSS."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})})
        peak = 0
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.02)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd[:4]))} ... failed (exit {proc.returncode}); see {log}")
    return {"wall_seconds": round(seconds, 2), "peak_rss_bytes": peak}


# -- peak matmul throughput -----------------------------------------------------------------------------
def matmul_peak(seconds: float = 5.0, n: int = 2048) -> dict:
    """This machine's dense matmul peak (biotune.plan.machine.matmul_peak, the planner's own measurement), longer
    and on larger matrices than the planner's, bf16 measured on a small matrix even where it is emulated."""
    import torch

    from biotune.plan.machine import matmul_peak as measure

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return measure(device, seconds, None if device == "cuda" else n, slow_bf16=True)


# -- LoRA training ---------------------------------------------------------------------------------------
def model_dir() -> str:
    """The packaged SmolLM2 as a plain HF folder (biotune's de-quantized cache), so both sides load the same
    weights with from_pretrained."""
    from biotune.models import resolve
    from biotune.models.gguf import materialize

    return materialize(resolve("smollm2-135m"))


def gad_texts(n: int, split: str, path: Path) -> list[dict]:
    """GAD examples as (prompt, completion) texts, exactly what biotune trains on: the same examples (n spread
    evenly over the split), the same chat-template prompt, the answer and the end-of-turn token."""
    from transformers import AutoTokenizer

    from biotune.data import get_spec, load_split
    from biotune.evaluate import subset_indices
    from biotune.prompting import PromptBuilder
    from biotune.tasks import task_for

    tok = AutoTokenizer.from_pretrained(model_dir())
    task = task_for(get_spec("gad"))
    ds = load_split("gad", split)
    builder = PromptBuilder(tok, 512)
    rows = []
    for i in subset_indices(len(ds), n):
        ex = ds[i]
        target = task.target(ex)
        reserve = len(tok(target, add_special_tokens=False)["input_ids"]) + 1
        prompt = builder.build(task.instruction(), [], task.render_input(ex), reserve=reserve)
        rows.append({"prompt": prompt.text, "completion": target + tok.eos_token})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def biotune_experiment(path: Path, out: Path, method: str, n: int, steps: int, extra: dict | None = None) -> None:
    import yaml

    exp = {
        "name": f"bench-{method}",
        "dataset": "gad",
        "output_dir": str(out),
        "model": {"family": "causal", "path": "smollm2-135m"},
        "method": {"name": method, "params": {}},
        "training": {
            "max_steps": steps,
            "batch_size": 8,
            "train_limit": n,
            "dev_limit": 8,
            "max_length": 512,
            "learning_rate": 2e-4,
            "save_steps": steps,
            "logging_steps": 1,
        },
        "eval": {"limit": 8},
        "seed": 0,
    }
    for key, value in (extra or {}).items():
        exp[key] = {**exp[key], **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(exp, sort_keys=False))


def answer_loss(adapter_dir: Path, data: Path, out: Path) -> float:
    """Mean loss on the answer tokens of `data` for the base model + a trained LoRA adapter, computed the same
    way (fp32, one example at a time) for both sides' adapters."""
    code = r"""
import json, sys, torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
base, adapter, data, out = sys.argv[1:5]
tok = AutoTokenizer.from_pretrained(base)
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter).eval()
total, count = 0.0, 0
with torch.no_grad():
    for line in open(data):
        row = json.loads(line)
        p = tok(row["prompt"], add_special_tokens=False)["input_ids"]
        a = tok(row["completion"], add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p + a])
        logits = model(input_ids=ids).logits[0, len(p) - 1 : -1].float()
        total += torch.nn.functional.cross_entropy(logits, torch.tensor(a), reduction="sum").item()
        count += len(a)
json.dump({"answer_loss": total / count, "answer_tokens": count}, open(out, "w"))
"""
    subprocess.run(
        [sys.executable, "-c", code, model_dir(), str(adapter_dir), str(data), str(out)],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    return json.loads(out.read_text())["answer_loss"]


def _baseline_side(work: Path, data: Path, dev: Path, seed: int) -> dict:
    out = work / f"baseline_s{seed}"
    run = run_measured(
        [sys.executable, "benchmarks/baseline_lora.py", model_dir(), str(data), str(out), str(seed)],
        work / f"baseline_s{seed}.log",
    )
    base = json.loads((out / "result.json").read_text())
    return {
        "seed": seed,
        "real_tokens": base["real_tokens"],
        "padded_tokens": base["padded_tokens"],
        "train_seconds": round(base["train_seconds"], 2),
        "peak_rss_bytes": run["peak_rss_bytes"],
        "steps": base["steps"],
        "final_train_loss": base["loss_curve"][-1][1],
        "mean_train_loss_last_quarter": _tail_mean(base["loss_curve"]),
        "heldout_answer_loss": answer_loss(out / "adapter", dev, work / f"baseline_s{seed}_dev.json"),
        "dtype": base["dtype"],
    }


def _biotune_side(
    work: Path, n: int, steps: int, dev: Path, seed: int, extra: dict | None = None, name: str = "biotune"
) -> tuple[dict, dict]:
    """`biotune run` LoRA with `extra` experiment overrides (default: none, every lever on), held-out loss too."""
    exp, out = work / f"{name}_s{seed}.yaml", work / f"{name}_s{seed}"
    biotune_experiment(exp, out, "lora", n, steps, {**(extra or {}), "seed": seed})
    run = run_measured(
        [sys.executable, "-m", "biotune", "run", str(exp), "--no-progress"], work / f"{name}_s{seed}.log"
    )
    bio = json.loads((out / "metrics.json").read_text())
    r = bio["resources"]
    return {
        "seed": seed,
        "real_tokens": r["train_tokens"],
        "padded_tokens": r.get("train_padded_tokens"),
        "train_seconds": round(r["train_seconds"] - r["dev_eval_seconds"], 2),
        "peak_rss_bytes": run["peak_rss_bytes"],
        "steps": bio["training"]["steps"],
        "final_train_loss": bio["training"]["loss_curve"][-1][1],
        "mean_train_loss_last_quarter": _tail_mean(bio["training"]["loss_curve"]),
        "heldout_answer_loss": answer_loss(out / "final", dev, work / f"{name}_s{seed}_dev.json"),
        "dtype": bio["compute_dtype"],
    }, r


def _summary(runs: list[dict]) -> dict:
    """One side over its seeds: tokens/s from the summed tokens and seconds; losses as means (and per seed)."""
    seconds = sum(x["train_seconds"] for x in runs)
    real = sum(x["real_tokens"] for x in runs)
    padded = sum(x["padded_tokens"] for x in runs) if all(x["padded_tokens"] for x in runs) else None
    heldout = [x["heldout_answer_loss"] for x in runs]
    return {
        "real_tokens": runs[0]["real_tokens"],
        "padded_tokens": runs[0]["padded_tokens"],
        "train_seconds": round(seconds / len(runs), 2),
        "real_tokens_per_s": round(real / seconds, 1),
        "padded_tokens_per_s": round(padded / seconds, 1) if padded else None,
        "peak_rss_bytes": max(x["peak_rss_bytes"] for x in runs),
        "steps": runs[0]["steps"],
        "final_train_loss": round(sum(x["final_train_loss"] for x in runs) / len(runs), 4),
        "mean_train_loss_last_quarter": round(sum(x["mean_train_loss_last_quarter"] for x in runs) / len(runs), 4),
        "heldout_answer_loss": round(sum(heldout) / len(heldout), 4),
        "heldout_seed_range": round(max(heldout) - min(heldout), 4),
        "dtype": runs[0]["dtype"],
        "per_seed": runs,
    }


def train_section(work: Path, n: int, dev_n: int, seeds: list[int], peak: dict) -> dict:
    """Both sides once per seed (the seed sets the LoRA initialisation, the data order and dropout): tokens/s
    over all of them, and the held-out answer loss as a mean over seeds — one seed's loss moves by about as much
    as the two tools differ, so "equal or better" is judged against that spread."""
    data, dev = work / "gad_train.jsonl", work / "gad_dev.jsonl"
    gad_texts(n, "train", data)
    gad_texts(dev_n, "dev", dev)
    steps = n // 8
    base_runs, bio_runs = [], []
    for seed in seeds:
        base_runs.append(_baseline_side(work, data, dev, seed))
        side, resources = _biotune_side(work, n, steps, dev, seed)
        bio_runs.append(side)
    sides = {"baseline": _summary(base_runs), "biotune": _summary(bio_runs)}
    # N: the base model's parameters (the frozen weights every token goes through); the adapters add ~2 %
    n_params = resources["total_params"] - resources["trainable_params"]
    for side in sides.values():
        side["mfu_bf16"] = round(4 * n_params * side["real_tokens_per_s"] / (peak["bf16_tflops"] * 1e12), 4)
        side["mfu_fp32"] = round(4 * n_params * side["real_tokens_per_s"] / (peak["fp32_tflops"] * 1e12), 4)
        # MFU proper: against the peak of the dtype this side computes in (a bf16 peak measured where bf16 is
        # emulated, on a CPU without AVX512-BF16, is no ceiling of an fp32 run)
        side["mfu"] = side["mfu_bf16"] if side["dtype"] in ("bfloat16", "torch.bfloat16") else side["mfu_fp32"]
    b, s = sides["biotune"], sides["baseline"]
    # equal: within what changing the seed does to either side (at least 0.5 %)
    tolerance = max(b["heldout_seed_range"], s["heldout_seed_range"], 0.005 * s["heldout_answer_loss"])
    return {
        "examples": n,
        "steps": steps,
        "batch_size": 8,
        "heldout_examples": dev_n,
        "seeds": seeds,
        "params": n_params,
        "same_real_tokens": all(x["real_tokens"] == y["real_tokens"] for x, y in zip(base_runs, bio_runs)),
        "sides": sides,
        "ratio_real_tokens_per_s": round(b["real_tokens_per_s"] / s["real_tokens_per_s"], 2),
        "ratio_peak_rss": round(b["peak_rss_bytes"] / s["peak_rss_bytes"], 2),
        "heldout_loss_difference": round(b["heldout_answer_loss"] - s["heldout_answer_loss"], 4),
        "heldout_loss_tolerance": round(tolerance, 4),
        "loss_equal_or_better": b["heldout_answer_loss"] <= s["heldout_answer_loss"] + tolerance,
    }


def _tail_mean(curve: list) -> float:
    tail = [loss for _, loss in curve[-max(1, len(curve) // 4) :]]
    return round(sum(tail) / len(tail), 4)


# -- evaluation -------------------------------------------------------------------------------------------
def pubmedqa_local(path: Path, n: int) -> list[str]:
    """The BLURB PubMedQA test questions (n spread evenly; 500 = all) in the fields lm-eval's task reads."""
    from biotune.data import load_split
    from biotune.data.location import resolve_data_dir
    from biotune.evaluate import subset_indices

    ds = load_split("pubmedqa", "test")
    ids = [ds[i]["id"] for i in subset_indices(len(ds), n)]
    raw = json.loads((Path(resolve_data_dir(None)) / "pubmedqa" / "ori_pqal.json").read_text())
    path.write_text(
        "".join(
            json.dumps(
                {
                    "QUESTION": raw[i]["QUESTION"],
                    "CONTEXTS": raw[i]["CONTEXTS"],
                    "final_decision": raw[i]["final_decision"],
                    "pubid": i,
                }
            )
            + "\n"
            for i in ids
        )
    )
    return ids


LM_EVAL = r"""
import json, sys, time
from pathlib import Path
import torch
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
model_dir, data, out, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
# lm-eval's own pubmedqa task (its prompt, choices and metric, by `include`), its dataset pointed at the local
# questions
manager = TaskManager()
own = manager.task_index["pubmedqa"].yaml_path
task_yaml = Path(out).with_suffix(".task.yaml")
task_yaml.write_text(json.dumps({
    "include": str(own), "task": "pubmedqa_local", "dataset_path": "json", "dataset_name": None,
    "dataset_kwargs": {"data_files": {"test": data}}, "training_split": None, "validation_split": None,
    "test_split": "test"}))
start = time.perf_counter()
lm = HFLM(pretrained=model_dir, batch_size=batch, device="cuda" if torch.cuda.is_available() else "cpu")
load_s = time.perf_counter() - start
start = time.perf_counter()
res = simple_evaluate(model=lm, tasks=[str(task_yaml)], batch_size=batch, log_samples=False)
eval_s = time.perf_counter() - start
r = res["results"]["pubmedqa_local"]
json.dump({"accuracy": r["acc,none"], "n": res["n-samples"]["pubmedqa_local"]["effective"], "eval_seconds": eval_s,
           "load_seconds": load_s, "dtype": str(lm.model.dtype), "task_yaml": str(own)}, open(out, "w"))
"""


def eval_section(work: Path, n: int, scorings: list[str]) -> dict:
    data = work / "pubmedqa_test.jsonl"
    pubmedqa_local(data, n)
    lm_out = work / "lm_eval.json"
    lm_run = run_measured(
        [sys.executable, "-c", LM_EVAL, model_dir(), str(data), str(lm_out), "8"], work / "lm_eval.log"
    )
    lm = json.loads(lm_out.read_text())
    result = {
        "questions": n,
        "lm_eval": {
            **lm,
            "examples_per_s": round(lm["n"] / lm["eval_seconds"], 3),
            "peak_rss_bytes": lm_run["peak_rss_bytes"],
        },
    }
    for scoring in scorings:
        out = work / f"biotune_eval_{scoring}"
        run = run_measured(
            [
                sys.executable,
                "-m",
                "biotune",
                "eval",
                "--model",
                "smollm2-135m",
                "--datasets",
                "pubmedqa",
                "--shots",
                "0",
                "--limit",
                str(n),
                "--batch-size",
                "8",
                "--scoring",
                scoring,
                "--output-dir",
                str(out),
                "--no-progress",
            ],
            work / f"biotune_eval_{scoring}.log",
        )
        m = json.loads((out / "metrics.json").read_text())
        d = m["datasets"]["pubmedqa"]
        side = {
            "accuracy": d["score"] / 100,
            "n": d["n"],
            "n_unparsed": d.get("n_unparsed"),
            "eval_seconds": d["eval_seconds"],
            "examples_per_s": round(d["n"] / d["eval_seconds"], 3),
            "dtype": m["settings"]["dtype"],
            "peak_rss_bytes": run["peak_rss_bytes"],
        }
        side["ratio_examples_per_s"] = round(side["examples_per_s"] / result["lm_eval"]["examples_per_s"], 2)
        side["accuracy_equal_or_better"] = side["accuracy"] >= result["lm_eval"]["accuracy"]
        result[f"biotune_{scoring}"] = side
    return result


# -- memory -------------------------------------------------------------------------------------------------
# A larger model of the same family, for the QLoRA ratio: SmolLM2-135M's tied 49,152 x 576 embedding is 21 % of
# its parameters and stays bf16, which keeps its ratio above 0.4 however the linear layers are stored. No larger
# real model is packaged here, so this is a LLaMA with SmolLM2-360M's published shapes, random init (the bytes
# of a weight do not depend on its values), built by biotune's `random_init` with the real SmolLM2 tokenizer.
LARGER = {
    "name": "SmolLM2-360M's shapes, random init",
    "random_init": {
        "hidden_size": 960,
        "intermediate_size": 2560,
        "num_hidden_layers": 32,
        "num_attention_heads": 15,
        "num_key_value_heads": 5,
        "tie_word_embeddings": True,
        "rms_norm_eps": 1e-5,
    },
}


def memory_section(work: Path, methods: list[str], larger: bool = True) -> dict:
    out = _memory_runs(work, methods, "mem")
    if larger:
        print(f"memory: LoRA, QLoRA on {LARGER['name']} ...", flush=True)
        out["larger"] = {
            "model": LARGER["name"],
            "random_init": LARGER["random_init"],
            **_memory_runs(work, ["lora", "qlora"], "mem_larger", LARGER["random_init"]),
        }
    return out


def _memory_runs(work: Path, methods: list[str], prefix: str, random_init: dict | None = None) -> dict:
    out = {}
    extra = {"training": {"learning_rate": None}}
    if random_init:
        extra["model"] = {"random_init": random_init}
    for method in methods:
        exp, run_dir = work / f"{prefix}_{method}.yaml", work / f"{prefix}_{method}"
        biotune_experiment(exp, run_dir, method, 8, 2, extra)
        run = run_measured(
            [sys.executable, "-m", "biotune", "run", str(exp), "--no-progress"], work / f"{prefix}_{method}.log"
        )
        m = json.loads((run_dir / "metrics.json").read_text())
        r = m["resources"]
        out[method] = {
            "weight_bytes": r["weight_bytes"],
            "train_peak_rss_bytes": r["train_peak_memory_bytes"],
            "process_peak_rss_bytes": run["peak_rss_bytes"],
            "trainable_params": r["trainable_params"],
            "total_params": r["total_params"],
        }
    if "qlora" in out and "lora" in out:
        out["ratio_qlora_lora_weights"] = round(out["qlora"]["weight_bytes"] / out["lora"]["weight_bytes"], 3)
        out["qlora_floor"] = qlora_floor(random_init)
    return out


def qlora_floor(random_init: dict | None = None) -> dict:
    """The lowest QLoRA / bf16-LoRA weight ratio a model allows while its embeddings (and norms) stay bf16:
    every linear layer at exactly 4 bits, no quantization constants at all. A model whose embedding is a large
    share of its parameters (SmolLM2-135M: a 49,152 x 576 tied embedding, 21 %) cannot go below it. The packaged
    SmolLM2, or a LLaMA built from `random_init` fields (as the memory section builds it)."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig

    config = AutoConfig.from_pretrained(model_dir())  # outside init_empty_weights: it may build the model folder
    if random_init:
        config = LlamaConfig(**{"vocab_size": config.vocab_size, **random_init})
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    tied = getattr(config, "tie_word_embeddings", False)
    linear = {
        id(m.weight)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and not name.endswith("lm_head")
    }
    params = {
        id(p): p
        for name, p in model.named_parameters()  # a tied LM head is the embedding: once
        if not (tied and name.startswith("lm_head"))
    }
    quantized = sum(p.numel() for i, p in params.items() if i in linear)
    kept = sum(p.numel() for i, p in params.items() if i not in linear)
    return {
        "quantized_params": quantized,
        "bf16_params": kept,
        "floor_ratio": round((kept * 2 + quantized * 0.5) / ((kept + quantized) * 2), 3),
    }


SECTIONS = ("peak", "train", "eval", "memory")
# the results of the other benchmark scripts, each rendered in its own section of BENCHMARKS.md (not the main table)
OWN_SECTIONS = ("levers-", "loss-ablation-", "plan-check-", "plan-calibration-", "report-open-", "generation-batch-")


# -- the table ------------------------------------------------------------------------------------------------
def render_markdown() -> str:
    head_path = ROOT / "benchmarks" / "BENCHMARKS.head.md"
    head = head_path.read_text() if head_path.exists() else "# Benchmarks\n\nLEVERS\n"
    lever_rows = []
    for path in sorted(RESULTS.glob("levers-*.json")):
        res = json.loads(path.read_text())
        where = res["machine"]["gpu"] or res["machine"]["cpu"]
        for r in res["rows"]:
            runs = r.get("real_tokens_per_s_runs", [])
            each = f"; runs: {' / '.join(str(v) for v in runs)}" if len(runs) > 1 else ""
            lever_rows.append(
                f"| {r['lever']} | {where} | {r['real_tokens_per_s']} real tokens/s "
                f"({r['speedup_vs_fp32']}x the fp32 row; {r['padded_tokens_per_s']} padded{each}) |"
            )
    head = head.replace("LEVERS", "\n".join(lever_rows) or "| (run benchmarks/levers.py) | | |")
    loss_rows = []
    for path in sorted(RESULTS.glob("loss-ablation-*.json")):
        res = json.loads(path.read_text())
        where = res["machine"]["gpu"] or res["machine"]["cpu"]
        if res["machine"].get("commit"):
            where += f", commit {res['machine']['commit']}"
        for name, losses in res["heldout_answer_loss"].items():
            values = list(losses.values())
            loss_rows.append(
                f"| {name} | {where} | {sum(values) / len(values):.4f} | "
                + " / ".join(f"{v:.4f}" for v in values)
                + " |"
            )
    head = head.replace("LOSSES", "\n".join(loss_rows) or "| (run benchmarks/loss_ablation.py) | | | |")
    head = head.replace(
        "PLANNER",
        "\n\n".join(_plan_rows(json.loads(p.read_text()), p.name) for p in sorted(RESULTS.glob("plan-check-*.json")))
        or "(run benchmarks/plan_check.py)",
    )
    head = head.replace(
        "CALIBRATION",
        "\n\n".join(
            _calibration_rows(json.loads(p.read_text()), p.name)
            for p in sorted(RESULTS.glob("plan-calibration-*.json"))
        )
        or "(run benchmarks/plan_calibration.py)",
    )
    head = head.replace(
        "GENERATION",
        "\n\n".join(_generation_rows(json.loads(p.read_text()), p.name) for p in _committed("generation-batch-*.json"))
        or "(run benchmarks/generation_batch.py)",
    )
    rows = [
        _table(json.loads(p.read_text()), p.name) for p in _committed("*.json") if not p.name.startswith(OWN_SECTIONS)
    ]
    return head + "\n".join(rows)


def _committed(pattern: str) -> list[Path]:
    """The results files matching `pattern`, without the --quick runs' (checks that a script runs, not committed)."""
    return [p for p in sorted(RESULTS.glob(pattern)) if not p.stem.endswith("-quick")]


def _generation_rows(res: dict, name: str) -> str:
    """benchmarks/generation_batch.py: per case and generation batch, time, the speed against the first batch size,
    the padding, whether the answers changed, and the planner's time for it (now and by compute alone)."""
    m = res["machine"]
    planner = res.get("planner") or {}
    rates = ", ".join(f"{r} rows {g}" for r, g in (planner.get("read_gbs") or {}).items())
    rate = f"; the planner's weight-read rates measured here (GB/s): {rates}" if rates else ""
    lines = [
        f"*{m['cpu']} ({m['cores']} cores, {machine_kind(m)}), {res['model']}, `{res['command']}`{rate} — "
        f"`benchmarks/results/{name}`*",
        "",
        "| case | examples | prompt tokens (min / mean / max) | answer tokens (mean / max) | batch | seconds | "
        "speed vs the first | padded prompt tokens / real | answers changed | planned s (compute alone) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in res["cases"]:
        p, a = c["prompt_tokens"], c["answer_tokens"]
        for r in c["rows"]:
            planned = (
                f"{r['planned_seconds']} ({r['planned_compute_bound_seconds']})" if "planned_seconds" in r else "-"
            )
            lines.append(
                f"| {c['case']} | {c['examples']} | {p['min']} / {p['mean']} / {p['max']} | {a['mean']} / {a['max']} "
                f"| {r['batch']} | {r['seconds']} | {r['speedup_vs_first']}x | {r['padded_prompt_ratio']} | "
                f"{r['answers_differing_from_first']} | {planned} |"
            )
    return "\n".join(lines)


def _calibration_rows(res: dict, name: str) -> str:
    """The plan corrected by a machine's own finished runs (benchmarks/plan_calibration.py): per model, method and
    part, how far the planner's time and the corrected time were from the time taken (a factor: x1.5 is 1.5 times
    too long or too short)."""
    m = res["machine"]
    x = lambda e: f"x{2**e:.2f}" if e is not None else "-"  # noqa: E731
    lines = [
        f"*{m['cpu']} ({m['cores']} cores, {machine_kind(m)}), study `{res['study']}`, `{res['command']}` — "
        f"`benchmarks/results/{name}`*",
        "",
        "| model / method / part | cells | took / planned (median) | planner off by (median) | cells corrected | "
        "corrected off by (median) | worst |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, r in res["summary"].items():
        lines.append(
            f"| {key} | {r['cells']} | {r['plan_median_x']} | {x(r['plan_median_abs_log2'])} | {r['corrected_cells']} | "
            f"{x(r['corrected_median_abs_log2'])} | {x(r['corrected_worst_abs_log2'])} |"
        )
    a = res["all"]
    lines += [
        "",
        f"Over the {a['parts']} parts that had earlier runs to learn from: the planner alone off by "
        f"{x(a['plan_median_abs_log2'])} (median), corrected {x(a['corrected_median_abs_log2'])}.",
    ]
    return "\n".join(lines)


def _plan_rows(res: dict, name: str) -> str:
    """The planner check of one machine: FLOPs against FlopCounterMode, memory and time against real runs."""
    m = res["machine"]
    kind = machine_kind(m)
    where = (
        f"{m['gpu'] or m['cpu']} ({m['cores']} cores, "
        + ("AVX512-BF16: bf16" if kind == "avx512bf16" else "AVX2 only, no bf16: fp32" if kind == "avx2" else kind)
        + f"), commit {m.get('commit')}, `{res.get('command')}` — `benchmarks/results/{name}`"
    )
    out = [f"*{where}*", ""]
    pct = lambda v: "-" if v is None else f"{v:+.1f} %"
    if res.get("flops"):
        out += [
            "| family / method | trainable (peft = planner) | train-step FLOPs measured | planned | error | "
            "generation FLOPs measured | planned | error |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for case, r in res["flops"].items():
            t, g = r.get("train_step") or {}, r.get("generation") or {}
            same = "yes" if r["trainable_params"] == r["planned_trainable"] else f"NO ({r['planned_trainable']:,})"
            out.append(
                f"| {case} | {r['trainable_params']:,} {same} | "
                + (
                    f"{t['measured_flops']:.3e} | {t['planned_flops']:.3e} | {pct(t['error_pct'])} | "
                    if t
                    else "- | - | - | "
                )
                + (
                    f"{g['measured_flops']:.3e} | {g['planned_flops']:.3e} | {pct(g['error_pct'])} |"
                    if g
                    else "- | - | - |"
                )
            )
        out.append("")
    if res.get("runs"):
        peak = res["peak"]
        out += [
            f"Matmul peak measured here: {peak['fp32_tflops']} TFLOP/s fp32, {peak['bf16_tflops']} bf16; planner "
            f"utilisation {res['utilization']:.0%}; RSS with nothing loaded "
            f"{res['baseline_rss_bytes'] / 2**20:,.0f} MiB.",
            "",
            "| family / method | peak RSS measured | planned (+ baseline) | error | train steps s measured | "
            "planned | error | test s measured | planned | error | train tokens error |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        implied = {"train": [], "test": []}
        for case, r in res["runs"].items():
            me, pl, e = r["measured"], r["planned"], r["error_pct"]
            out.append(
                f"| {case} | {_mb(me['peak_rss_bytes'])} | {_mb(pl['peak_plus_baseline_bytes'])} | "
                f"{pct(e['peak_memory'])} | {_s(me['train_step_seconds'])} | "
                f"{_s(pl['train_seconds'] or None)} | "
                f"{pct(e['train_time'])} | {me['test_seconds']:.1f} | {pl['test_seconds']:.1f} | "
                f"{pct(e['test_time'])} | {pct(e['train_tokens'])} |"
            )
            for part, key in (("train", "train_time"), ("test", "test_time")):
                if e[key] is not None:  # the utilisation at which the planned time equals the measured one
                    implied[part].append(res["utilization"] * (1 + e[key] / 100))
        spans = {k: f"{min(v):.0%}-{max(v):.0%}" for k, v in implied.items() if v}
        if spans:
            out += [
                "",
                "The utilisation that would make each planned time the measured one: training "
                f"{spans.get('train', '-')}, test prediction {spans.get('test', '-')} of this CPU's matmul peak "
                "(the planner's time is FLOPs / (peak x utilisation): its FLOPs are checked above, the "
                "utilisation is what a machine reaches).",
            ]
    return "\n".join(out)


def _s(seconds):
    return "-" if seconds is None else f"{seconds:.1f}"


def _mb(b):
    return f"{b / 2**20:,.0f} MiB" if b else "-"


def _memory_rows(mem: dict) -> list[str]:
    """The memory table of one model: a row per method it ran."""
    return [
        "| method | weight bytes | peak RSS (training) | trainable params |",
        "|---|---|---|---|",
        *(
            f"| {k} | {_mb(mem[k]['weight_bytes'])} | {_mb(mem[k]['train_peak_rss_bytes'])} | "
            f"{mem[k]['trainable_params']:,} |"
            for k in ("lora", "qlora", "fft")
            if k in mem
        ),
    ]


def _mfu(side: dict) -> str:
    peak = "bf16" if side["dtype"] in ("bfloat16", "torch.bfloat16") else "fp32"
    return f"{side.get('mfu', side[f'mfu_{peak}']):.1%} of the {peak} peak"


def _table(res: dict, name: str) -> str:
    m = res["machine"]
    kind = (
        {"avx512bf16": "AVX512-BF16: bf16", "avx2": "AVX2 only, no bf16: fp32", "cuda": "CUDA", "cpu": "no AVX2"}[
            machine_kind({"avx2": "avx2" in m, **m})
        ]
        if "avx512_bf16" in m
        else ""
    )
    lines = [
        f"## {m['gpu'] or m['cpu']} ({m['cores']} cores{', ' + kind if kind else ''}) — `benchmarks/results/{name}`",
        "",
        f"{res['finished_at']}{' · biotune commit ' + m['commit'] if m.get('commit') else ''}"
        f" · torch {m['versions']['torch']} · transformers {m['versions']['transformers']}"
        f" · peft {m['versions']['peft']} · lm-eval {m['versions'].get('lm_eval')} · command: `{res['command']}`",
        "",
    ]

    def other_run(key: str) -> list[str]:
        m = res[key].get("measured")
        if not m or m.get("commit") == res["machine"].get("commit") and m.get("command") == res["command"]:
            return []
        return [
            f"(measured by an earlier run: {m['at']} · biotune commit {m['commit']} · command: `{m['command']}`)",
            "",
        ]

    if "peak" in res:
        lines += other_run("peak")
        p = res["peak"]
        bf16, fp32 = p["bf16_tflops"] * 1000, p["fp32_tflops"] * 1000
        note = " (emulated: this CPU has no bf16, so biotune computes in fp32)" if bf16 < 0.01 * fp32 else ""
        lines += [
            f"Measured matmul peak ({p['n']}x{p['n']}): bf16 {bf16:.{1 if bf16 < 10 else 0}f} GFLOP/s{note}, "
            f"fp32 {fp32:.0f} GFLOP/s.",
            "",
        ]
    if "train" in res:
        t = res["train"]
        b, s = t["sides"]["biotune"], t["sides"]["baseline"]
        seeds = f", over seeds {', '.join(map(str, t['seeds']))}" if len(t.get("seeds", [])) > 1 else ""

        def rate(side):
            runs = side.get("per_seed", [])
            return (
                "(" + " / ".join(f"{x['real_tokens'] / x['train_seconds']:.1f}" for x in runs) + ")"
                if len(runs) > 1
                else ""
            )

        def per(side):
            runs = side.get("per_seed", [])
            return "(" + " / ".join(f"{x['heldout_answer_loss']:.4f}" for x in runs) + ")" if len(runs) > 1 else ""

        lines += other_run("train")
        lines += [
            f"**LoRA training**, GAD, {t['examples']} examples, {t['steps']} steps of batch 8, same real "
            f"tokens on both sides: {t['same_real_tokens']}",
            "",
            "| | baseline (Trainer + PEFT) | biotune | ratio |",
            "|---|---|---|---|",
            f"| real tokens/s{seeds} | {s['real_tokens_per_s']} {rate(s)} | {b['real_tokens_per_s']} {rate(b)} | **{t['ratio_real_tokens_per_s']}x** |",
            f"| padded tokens/s | {s['padded_tokens_per_s']} | {b['padded_tokens_per_s']} | |",
            f"| real / padded tokens | {s['real_tokens']} / {s['padded_tokens']} | {b['real_tokens']} / {b['padded_tokens']} | |",
            f"| peak RSS | {_mb(s['peak_rss_bytes'])} | {_mb(b['peak_rss_bytes'])} | {t['ratio_peak_rss']}x |",
            f"| final training loss (last quarter mean){seeds} | {s['final_train_loss']:.4f} ({s['mean_train_loss_last_quarter']}) | {b['final_train_loss']:.4f} ({b['mean_train_loss_last_quarter']}) | |",
            f"| held-out answer loss ({t['heldout_examples']} GAD dev){seeds} | {s['heldout_answer_loss']:.4f} {per(s)} | {b['heldout_answer_loss']:.4f} {per(b)} | difference {t.get('heldout_loss_difference', 0):+.4f}, seed spread {t.get('heldout_loss_tolerance', 0):.4f}: equal or better: {t['loss_equal_or_better']} |",
            f"| MFU (4·N·tokens/s ÷ the matmul peak of its compute dtype) | {_mfu(s)} | {_mfu(b)} | |",
            f"| compute dtype | {s['dtype']} | {b['dtype']} | |",
            "",
        ]
    if "eval" in res:
        e = res["eval"]
        lm = e["lm_eval"]
        lines += other_run("eval")
        lines += [
            f"**Zero-shot PubMedQA**, {e['questions']} test questions, batch 8",
            "",
            "| | examples/s | accuracy | eval seconds | dtype | ratio (examples/s) |",
            "|---|---|---|---|---|---|",
            f"| lm-eval `pubmedqa` (HF) | {lm['examples_per_s']} | {lm['accuracy']:.3f} | {lm['eval_seconds']:.1f} | {lm['dtype']} | 1 |",
        ]
        for k in ("biotune_likelihood", "biotune_generate"):
            if k in e:
                x = e[k]
                lines.append(
                    f"| biotune eval `--scoring {k.split('_')[1]}` | {x['examples_per_s']} | {x['accuracy']:.3f} "
                    f"| {x['eval_seconds']:.1f} | {x['dtype']} | **{x['ratio_examples_per_s']}x** |"
                )
        lines.append("")
    if "memory" in res:
        mem = res["memory"]
        lines += other_run("memory")
        lines += ["**Training memory**, the same batch (8 GAD examples, 2 steps)", "", *_memory_rows(mem)]
        if "ratio_qlora_lora_weights" in mem:
            lines += ["", f"QLoRA / LoRA weight bytes: **{mem['ratio_qlora_lora_weights']}x**"]
        if "qlora_floor" in mem:
            f = mem["qlora_floor"]
            lines += [
                "",
                f"Lowest ratio this model allows with its embedding and norms in bf16 (every linear layer "
                f"at exactly 4 bits, no quantization constants): {f['floor_ratio']}x "
                f"({f['bf16_params']:,} bf16 parameters, {f['quantized_params']:,} quantizable)",
            ]
        if "larger" in mem:
            big, f = mem["larger"], mem["larger"]["qlora_floor"]
            lines += [
                "",
                f"**LoRA vs QLoRA on a larger model of the same family**: a LLaMA with "
                f"{big['model']} ({(f['bf16_params'] + f['quantized_params']) / 1e6:.1f} M parameters, "
                f"{f['bf16_params']:,} of them in the embedding and norms), the same batch",
                "",
                *_memory_rows(big),
            ]
            lines += [
                "",
                f"QLoRA / LoRA weight bytes: **{big['ratio_qlora_lora_weights']}x** (lowest this model "
                f"allows: {f['floor_ratio']}x)",
            ]
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="peak,train,eval,memory")
    ap.add_argument("--quick", action="store_true", help="small sizes: checks that everything runs")
    ap.add_argument("--out", default=None, help="result JSON (default benchmarks/results/<machine>.json)")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args()
    sections = args.only.split(",")
    info = machine()
    out = Path(args.out) if args.out else RESULTS / f"{machine_slug(info)}{'-quick' if args.quick else ''}.json"
    work = Path(args.work or tempfile.mkdtemp(prefix="biotune-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    result = json.loads(out.read_text()) if out.exists() else {}
    # sections this run does not measure (--only) keep the stamp of the run that measured them
    for key in SECTIONS:
        if key in result and "measured" not in result[key]:
            result[key]["measured"] = {
                "commit": result["machine"].get("commit"),
                "at": result.get("finished_at"),
                "command": result.get("command"),
            }
    command = " ".join(["python", "benchmarks/run.py", *sys.argv[1:]])
    result.update(machine=info, command=command)

    def stamp(key: str) -> None:
        result[key]["measured"] = {
            "commit": info["commit"],
            "command": command,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    if "peak" in sections or "train" in sections:
        print("matmul peak ...", flush=True)
        result["peak"] = matmul_peak(2.0 if args.quick else 5.0)
        stamp("peak")
        print(result["peak"], flush=True)
    if "train" in sections:
        print("LoRA training: baseline, then biotune ...", flush=True)
        result["train"] = train_section(
            work, 32 if args.quick else 256, 16 if args.quick else 256, [0] if args.quick else [0, 1], result["peak"]
        )
        stamp("train")
        print(json.dumps(result["train"], indent=1), flush=True)
    if "eval" in sections:
        print("PubMedQA zero-shot: lm-eval, then biotune ...", flush=True)
        result["eval"] = eval_section(work, 24 if args.quick else 500, ["likelihood", "generate"])
        stamp("eval")
        print(json.dumps(result["eval"], indent=1), flush=True)
    if "memory" in sections:
        print("memory: LoRA, QLoRA, FFT ...", flush=True)
        result["memory"] = memory_section(work, ["lora", "qlora", "fft"], larger=not args.quick)
        stamp("memory")
        print(json.dumps(result["memory"], indent=1), flush=True)
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out)
    if not args.quick:
        (ROOT / "BENCHMARKS.md").write_text(render_markdown())
    print(f"results: {out}" + ("" if args.quick else " and BENCHMARKS.md"))


if __name__ == "__main__":
    main()
