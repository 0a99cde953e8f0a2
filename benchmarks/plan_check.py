"""The cost planner (biotune.plan) against measurement on this machine, every family x method on the packaged
models (SmolLM2-135M, MiniLM) and on tiny random-init T5 / GLM-4 (no real ones are packaged):

  flops  one training step per example (batch 1: no padding) of real training features, counted by torch's
         FlopCounterMode (every matmul, attention included, forward and backward), beside the planner's count for
         the same example; and one greedy generation of 4 tokens
  runs   a short real `biotune run` per case (GAD, 64 training examples, 16 steps of batch 4, 48 test examples),
         measured by biotune itself (metrics.json: peak RSS of training and of prediction, seconds of training
         steps, of dev evaluation and of test prediction), beside the planner's estimate for this CPU: its
         matmul peak (measured here) at the planner's default utilisation; memory estimates are of tensors, so
         the process's RSS with nothing loaded (imports only, measured here) is added

    python benchmarks/plan_check.py                # about 20 minutes on 2 CPU cores
    python benchmarks/plan_check.py --only flops   # a few minutes

Results: benchmarks/results/plan-check-<machine>.json and the planner table of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import RESULTS, machine, machine_slug, matmul_peak, render_markdown  # noqa: E402

T5 = {"d_model": 256, "d_ff": 512, "num_layers": 4, "num_decoder_layers": 4, "num_heads": 4, "d_kv": 64}
GLM4 = {
    "variant": "glm4",
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "max_position_embeddings": 1024,
}
SMOL = {"family": "causal", "path": "smollm2-135m"}
CASES = {
    "causal/zero_shot": (SMOL, {"name": "zero_shot"}),
    "causal/few_shot": (SMOL, {"name": "few_shot", "params": {"shots": 3}}),
    "causal/lora": (SMOL, {"name": "lora"}),
    "causal/dora": (SMOL, {"name": "dora"}),
    "causal/qlora": (SMOL, {"name": "qlora"}),
    "causal/fft": (SMOL, {"name": "fft"}),
    "causal/ia3": (SMOL, {"name": "ia3"}),
    "causal/ptuning": (SMOL, {"name": "ptuning"}),
    "causal/prompt_tuning": (SMOL, {"name": "prompt_tuning"}),
    "causal/prefix": (SMOL, {"name": "prefix"}),
    "encoder/fft": ({"family": "encoder", "path": "minilm"}, {"name": "fft"}),
    "encoder/lora": ({"family": "encoder", "path": "minilm"}, {"name": "lora"}),
    "seq2seq/lora": ({"family": "seq2seq", "path": "smollm2-135m", "random_init": T5}, {"name": "lora"}),
    "seq2seq/fft": ({"family": "seq2seq", "path": "smollm2-135m", "random_init": T5}, {"name": "fft"}),
    "seq2seq/zero_shot": ({"family": "seq2seq", "path": "smollm2-135m", "random_init": T5}, {"name": "zero_shot"}),
    "glm/lora": ({"family": "glm", "path": "smollm2-135m", "random_init": GLM4}, {"name": "lora"}),
    "glm/fft": ({"family": "glm", "path": "smollm2-135m", "random_init": GLM4}, {"name": "fft"}),
}
FEATURES = 2  # training examples counted per case (FlopCounterMode dispatches every op in Python: slow on a CPU)
NEW_TOKENS = 4  # tokens generated in the generation count
TRAINING = {
    "max_steps": 16,
    "batch_size": 4,
    "train_limit": 64,
    "dev_limit": 16,
    "max_length": 256,
    "eval_steps": 16,
    "save_steps": 16,
    "learning_rate": 1e-4,
}


def experiment(name: str, out: Path) -> dict:
    model, method = CASES[name]
    return {
        "dataset": "gad",
        "model": model,
        "method": method,
        "training": TRAINING,
        "eval": {"limit": 48},
        "runtime": {"eval_batch_size": 8},
        "output_dir": str(out),
        "keep": "none",
    }


def cpu_accelerator(peak: dict):
    import psutil

    from biotune.plan.gpus import Accelerator

    bf16 = peak.get("bf16_tflops") if peak.get("bf16_tflops", 0) > peak["fp32_tflops"] else None
    return Accelerator("this CPU", psutil.virtual_memory().total, bf16, peak["fp32_tflops"], None, "cpu")


# -- FLOPs: FlopCounterMode against the planner ---------------------------------------------------------
def flops_section(work: Path, names: list[str], acc, save, rows: dict) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from biotune.config import validate_experiment
    from biotune.inference import decode
    from biotune.plan.architecture import architecture
    from biotune.plan.estimate import generation_flops
    from biotune.plan.planner import _train_flops, regime
    from biotune.train import Experiment

    for name in names:
        if name in rows:  # measured by an earlier invocation (the section resumes)
            continue
        cfg = validate_experiment(experiment(name, work / name.replace("/", "-")))
        exp = Experiment(cfg, progress=False)
        exp.setup()
        arch = architecture(cfg)
        r = regime(cfg, acc)
        row = {"trainable_params": exp.resources["trainable_params"], "planned_trainable": arch.trainable_params}
        if exp.method.trains:
            measured = planned = 0.0
            exp.model.train()
            for feature in exp.train_features[:FEATURES]:
                batch = exp.trainer.data_collator([feature])
                batch = {k: v.to(exp.device) if hasattr(v, "to") else v for k, v in batch.items()}
                with FlopCounterMode(display=False) as counter:
                    loss = exp.trainer.compute_loss(exp.model, batch)
                    loss.backward()
                exp.model.zero_grad(set_to_none=True)
                measured += counter.get_total_flops()
                answer = sum(1 for t in feature["labels"] if t != -100) if exp.family.generative else 0
                if not exp.family.generative:
                    planned += _train_flops(arch, r, len(feature["input_ids"]), 0)
                elif exp.model.config.is_encoder_decoder:
                    planned += _train_flops(arch, r, len(feature["input_ids"]), len(feature["labels"]))
                else:
                    planned += _train_flops(arch, r, len(feature["input_ids"]) - answer, answer)
            row["train_step"] = {
                "measured_flops": measured,
                "planned_flops": planned,
                "error_pct": round(100 * (planned - measured) / measured, 2),
            }
        if exp.family.generative:
            exp.model.eval()
            prompt = exp.tokenizer("Does BRCA1 cause breast cancer? Answer yes or no.", return_tensors="pt")
            ids = prompt["input_ids"].to(exp.device)
            new = NEW_TOKENS
            exp.model.eval()
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                # biotune's own decoding (inference.decode), without stop tokens: exactly `new` tokens
                decode(exp.model, ids, torch.ones_like(ids), [ids.shape[1]], new, [], exp.tokenizer.pad_token_id)
            measured = counter.get_total_flops()
            planned = generation_flops(arch, ids.shape[1], new)
            row["generation"] = {
                "prompt_tokens": int(ids.shape[1]),
                "new_tokens": new,
                "measured_flops": measured,
                "planned_flops": planned,
                "error_pct": round(100 * (planned - measured) / measured, 2),
            }
        rows[name] = row
        save()
        print(name, json.dumps({k: v.get("error_pct") for k, v in row.items() if isinstance(v, dict)}), flush=True)
        del exp
    return rows


# -- real runs: memory and time ------------------------------------------------------------------------
def baseline_rss(work: Path) -> int:
    """RSS of a process that imported what a run imports and loaded nothing."""
    code = (
        "import psutil, torch, transformers, peft, datasets, biotune.train, biotune.evaluate; "
        "print(psutil.Process().memory_info().rss)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return int(out.stdout.strip().splitlines()[-1])


def runs_section(work: Path, names: list[str], acc, utilization: float, baseline: int, save, rows: dict) -> dict:
    from biotune.config import validate_experiment
    from biotune.plan import plan_experiment

    for name in names:
        if name in rows:
            continue
        out = work / "runs" / name.replace("/", "-")
        exp = experiment(name, out)
        path = work / f"{name.replace('/', '-')}.yaml"
        path.write_text(yaml.safe_dump(exp))
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "biotune", "run", str(path), "--no-progress", "--force"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{name}: biotune run failed:\n{proc.stderr[-3000:]}")
        wall = time.perf_counter() - start
        res = json.loads((out / "metrics.json").read_text())["resources"]
        plan = plan_experiment(validate_experiment(exp), acc, 1, utilization)
        measured_peak = max(res.get("train_peak_memory_bytes") or 0, res.get("eval_peak_memory_bytes") or 0)
        # training steps alone (without the dev evaluations); nothing for in-context methods
        steps = res["train_seconds"] - (res.get("dev_eval_seconds") or 0) if res.get("train_tokens") else None
        row = {
            "measured": {
                "peak_rss_bytes": measured_peak,
                "train_step_seconds": None if steps is None else round(steps, 2),
                "dev_seconds": res.get("dev_eval_seconds"),
                "test_seconds": res.get("eval_seconds"),
                "train_tokens": res.get("train_tokens"),
                "wall_seconds": round(wall, 1),
            },
            "planned": {
                "peak_bytes": plan.peak_bytes,
                "peak_plus_baseline_bytes": plan.peak_bytes + baseline,
                "train_seconds": plan.train_seconds,
                "dev_seconds": plan.dev_seconds,
                "test_seconds": plan.eval_seconds,
                "train_tokens": plan.train_tokens,
            },
        }
        m, p = row["measured"], row["planned"]
        row["error_pct"] = {
            "peak_memory": round(100 * (p["peak_plus_baseline_bytes"] - m["peak_rss_bytes"]) / m["peak_rss_bytes"], 1),
            "train_time": (
                round(100 * (p["train_seconds"] - m["train_step_seconds"]) / m["train_step_seconds"], 1)
                if m["train_step_seconds"]
                else None
            ),
            "test_time": round(100 * (p["test_seconds"] - m["test_seconds"]) / m["test_seconds"], 1),
            "train_tokens": (
                round(100 * (p["train_tokens"] - m["train_tokens"]) / m["train_tokens"], 1)
                if m["train_tokens"]
                else None
            ),
        }
        rows[name] = row
        save()
        print(name, json.dumps(row["error_pct"]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="flops,runs", help="sections: flops, runs")
    ap.add_argument("--cases", default=",".join(CASES), help="family/method cases, comma-separated")
    ap.add_argument("--utilization", type=float, default=0.4, help="the planner's utilisation (its default)")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument(
        "--fresh",
        action="store_true",
        help="measure every case again (default: keep the cases "
        "already in the results file, so an interrupted check resumes)",
    )
    args = ap.parse_args()
    sections = set(args.only.split(","))
    names = [n for n in args.cases.split(",") if n]
    work = Path(args.work or tempfile.mkdtemp(prefix="plan-check-"))
    info = machine()
    peak = matmul_peak()
    out = RESULTS / f"plan-check-{machine_slug(info)}.json"
    result = json.loads(out.read_text()) if out.exists() and not args.fresh else {}
    result.update(
        {
            "machine": info,
            "utilization": args.utilization,
            "command": "python benchmarks/plan_check.py " + " ".join(sys.argv[1:]),
        }
    )
    result.setdefault("peak", peak)  # the peak the kept rows were planned with
    acc = cpu_accelerator(result["peak"])
    RESULTS.mkdir(parents=True, exist_ok=True)

    def save():
        result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        tmp = out.with_suffix(".part")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(out)

    if "flops" in sections:
        flops_section(work, names, acc, save, result.setdefault("flops", {}))
    if "runs" in sections:
        result.setdefault("baseline_rss_bytes", baseline_rss(work))
        runs_section(
            work, names, acc, args.utilization, result["baseline_rss_bytes"], save, result.setdefault("runs", {})
        )
    save()
    (ROOT / "BENCHMARKS.md").write_text(render_markdown())
    print(f"results: {out} and BENCHMARKS.md")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
