"""The GPU check: proves biotune's CUDA path on one GPU in a few minutes, and measures it beside the planner.

    python benchmarks/gpu_check.py --kit          # here, before: the data and tokenizer files that must travel
    bash benchmarks/gpu_check.sh                  # on the GPU machine (under 8 minutes on one H200, by design)
    python benchmarks/gpu_check.py --small        # the same steps at tiny shapes, on any device (a test runs it)

Steps
  packages  which of biotune's libraries import here (the GPU machine this is designed for has torch, transformers,
            peft and accelerate but not datasets, seqeval, bitsandbytes or gguf: biotune needs none of them for
            this check; without bitsandbytes QLoRA is skipped, said so)
  tests     the suite's CUDA-marked tests (`pytest -m cuda`, tests/test_cuda.py)
  train     LoRA, QLoRA and full fine-tuning, a few steps each on GAD, through `biotune run`, on models of
            SmolLM2-135M's and of LLaMA-3-8B's shapes (random init in bf16 through biotune's `random_init`, the
            SmolLM2 tokenizer: weights' values change neither speed nor memory): seconds, tokens/s and peak CUDA
            memory of training, beside the planner's estimate of the same experiment on this GPU; a case the
            planner says does not fit is not run, its estimate kept

The kit (`--kit`, written to benchmarks/gpu_kit/, ignored by git: name it in the device tool's `carry`; about 3
MB): the GAD files and the packaged SmolLM2 tokenizer (its weights, 94 MB, stay here: only shapes travel). On a
CPU (`--small` without a GPU) the planner's errors are not computed: RSS counts the interpreter too
(benchmarks/plan_check.py validates the planner on a CPU).
Results: benchmarks/results/gpu-check-<machine>.json (resumable: a case already there is kept; --fresh).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / "benchmarks" / "gpu_kit"
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

from run import RESULTS, machine, machine_slug  # noqa: E402

PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "pydantic",
    "typer",
    "rich",
    "yaml",
    "sqlalchemy",
    "sklearn",
    "scipy",
    "numpy",
    "pandas",
    "psutil",
    "datasets",
    "seqeval",
    "bitsandbytes",
    "gguf",
    "flash_attn",
    "vllm",
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "generation_config.json",
)


def _shapes(name: str) -> dict:
    """A model's shapes from the planner's table (biotune.plan's known_models.yaml: one home), in bf16."""
    from biotune.plan.architecture import known_models

    fields = {k: v for k, v in known_models()[name].items() if k != "model_type"}
    return {**fields, "dtype": "bfloat16"}


SHAPES = {
    "smollm2-135m": lambda: _shapes("HuggingFaceTB/SmolLM2-135M-Instruct"),
    "llama-3-8b": lambda: _shapes("meta-llama/Meta-Llama-3-8B-Instruct"),
    "tiny": lambda: dict(importlib.import_module("biotune.models.tiny").LLAMA),  # the test suite's shape
}
METHODS = ("lora", "qlora", "fft")


def write_kit(kit: Path) -> Path:
    """The files the check reads that the GPU machine lacks: GAD and the SmolLM2 tokenizer."""
    from biotune.data import resolve_data_dir
    from biotune.models.aliases import resolve
    from biotune.models.gguf import materialize

    data = Path(resolve_data_dir()) / "GAD"
    (kit / "blurb" / "GAD").mkdir(parents=True, exist_ok=True)
    for f in ("train.tsv", "dev.tsv", "test.tsv"):
        shutil.copy2(data / f, kit / "blurb" / "GAD" / f)
    source = Path(materialize(resolve("smollm2-135m")))
    (kit / "tokenizer").mkdir(parents=True, exist_ok=True)
    for f in TOKENIZER_FILES:
        if (source / f).is_file():
            shutil.copy2(source / f, kit / "tokenizer" / f)
    size = sum(p.stat().st_size for p in kit.rglob("*") if p.is_file())
    print(f"kit: {kit} ({size / 1e6:.1f} MB)")
    return kit


def packages() -> dict:
    return {name: importlib.util.find_spec(name) is not None for name in PACKAGES}


def cuda_tests(work: Path, data_dir: str | None) -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA GPU"}
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **({"BIOTUNE_DATA": data_dir} if data_dir else {})}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    (work / "cuda-tests.log").write_text(proc.stdout + proc.stderr)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    return {"exit_code": proc.returncode, "summary": tail, "seconds": round(time.perf_counter() - start, 1)}


def experiment(shapes: str, method: str, out: Path, steps: int, tokenizer: str, data_dir: str | None) -> dict:
    exp = {
        "dataset": "gad",
        "model": {"family": "causal", "path": tokenizer, "random_init": SHAPES[shapes]()},
        "method": {"name": method},
        # batch 4 of at most 256 tokens, a dev score and a checkpoint only at the end, 16 test sentences
        "training": {
            "max_steps": steps,
            "batch_size": 4,
            "train_limit": 4 * steps,
            "dev_limit": 8,
            "max_length": 256,
            "learning_rate": 1e-4,
            "eval_steps": steps,
            "save_steps": steps,
        },
        "eval": {"limit": 16, "max_new_tokens": 8},
        "output_dir": str(out),
        "keep": "none",
    }
    if data_dir:
        exp["data_dir"] = data_dir
    return exp


def accelerator_here():
    """The planner's entry for this GPU (by its name), or one described from what torch reports."""
    import torch

    from biotune.plan.gpus import Accelerator, accelerator, gpu_table

    if not torch.cuda.is_available():
        return Accelerator("this CPU", 0, None, 1.0, None, "cpu")
    name, props = torch.cuda.get_device_name().lower(), torch.cuda.get_device_properties(0)
    table = gpu_table()
    named = [k for k in table if k.split("-")[0] in name]  # e.g. "a100" in "nvidia a100-sxm4-80gb"
    if named:  # of a model sold with several memory sizes, the one this GPU has
        return accelerator(min(named, key=lambda k: abs(table[k]["memory_gb"] * 1e9 - props.total_memory)))
    return accelerator(memory_gb=props.total_memory / 1e9, tflops=100)  # not in the table: a nominal peak


def train_case(name: str, exp: dict, work: Path, acc) -> dict:
    from biotune.config import validate_experiment
    from biotune.plan import plan_experiment

    plan = plan_experiment(validate_experiment(exp), acc, 1, 0.4)
    row = {
        "planned": {
            "peak_bytes": plan.peak_bytes,
            "train_seconds": plan.train_seconds,
            "fits": plan.fits,
            "suggestions": plan.suggestions,
            "trainable_params": plan.trainable_params,
        }
    }
    if exp["method"]["name"] == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
        return {**row, "skipped": "bitsandbytes is not installed (QLoRA's 4-bit kernels)"}
    if acc.device_type != "cpu" and not plan.fits:
        return {**row, "skipped": "the planner says it does not fit on this GPU"}
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(exp))
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "biotune", "run", str(path), "--no-progress", "--force"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    wall = time.perf_counter() - start
    (work / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        return {
            **row,
            "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed",
            "log": str(work / f"{name}.log"),
        }
    summary = json.loads((Path(exp["output_dir"]) / "metrics.json").read_text())
    res = summary["resources"]
    steps = res["train_seconds"] - (res.get("dev_eval_seconds") or 0)
    peak = res["train_peak_memory_bytes"]
    row["measured"] = {
        "peak_bytes": peak,
        "memory_kind": res["memory_kind"],
        "train_step_seconds": round(steps, 2),
        "train_tokens_per_s": res.get("train_tokens_per_s"),
        "trainable_params": res["trainable_params"],
        "test_seconds": res.get("eval_seconds"),
        "wall_seconds": round(wall, 1),
        "device": summary["device"],
        "compute_dtype": summary["compute_dtype"],
    }
    if res["memory_kind"] == "cuda_max_allocated":  # the planner estimates tensors on the GPU, as CUDA counts them
        row["error_pct"] = {
            "peak_memory": round(100 * (plan.peak_bytes - peak) / peak, 1),
            "train_time": round(100 * (plan.train_seconds - steps) / steps, 1) if steps > 0 else None,
        }
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kit", action="store_true", help="write the kit (here, before the GPU machine)")
    ap.add_argument("--kit-dir", default=str(KIT), help="where the kit is written and read (default %(default)s)")
    ap.add_argument("--small", action="store_true", help="tiny shapes, 2 steps: the check's own test, any device")
    ap.add_argument("--shapes", default="smollm2-135m,llama-3-8b")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", default=None, help="result JSON (default benchmarks/results/gpu-check-<machine>.json)")
    ap.add_argument("--fresh", action="store_true", help="measure every case again")
    args = ap.parse_args()
    kit = Path(args.kit_dir)
    if args.kit:
        write_kit(kit)
        return
    shapes = ["tiny"] if args.small else args.shapes.split(",")
    steps = 2 if args.small else args.steps
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    os.environ.setdefault("BIOTUNE_CACHE", str(work / "cache"))  # random-init folders: scratch, not ~/.cache
    # the kit where it is here (the GPU machine), else the packaged tokenizer and the BLURB files
    tokenizer = str(kit / "tokenizer") if (kit / "tokenizer" / "tokenizer.json").is_file() else "smollm2-135m"
    data_dir = str(kit / "blurb") if (kit / "blurb" / "GAD").is_dir() else None
    info = machine()
    out = Path(args.out) if args.out else RESULTS / f"gpu-check-{machine_slug(info)}.json"
    result = json.loads(out.read_text()) if out.exists() and not args.fresh else {}
    result.update(
        {"machine": info, "command": "python benchmarks/gpu_check.py " + " ".join(sys.argv[1:]), "packages": packages()}
    )
    out.parent.mkdir(parents=True, exist_ok=True)

    def save():
        result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        tmp = out.with_suffix(".part")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(out)

    print("packages:", ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in result["packages"].items()), flush=True)
    if not args.small:
        result["cuda_tests"] = cuda_tests(work, data_dir)
        print("cuda tests:", result["cuda_tests"], flush=True)
        save()
    acc = accelerator_here()
    cases = result.setdefault("train", {})
    for s in shapes:
        for method in args.methods.split(","):
            name = f"{s}/{method}"
            if name in cases and "measured" in cases[name]:
                continue
            exp = experiment(s, method, work / "runs" / name.replace("/", "-"), steps, tokenizer, data_dir)
            cases[name] = train_case(name.replace("/", "-"), exp, work, acc)
            save()
            print(name, json.dumps({k: v for k, v in cases[name].items() if k != "planned"}), flush=True)
    save()
    print(f"results: {out}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
