"""Real SmolLM2-135M runs, one per adaptation method, on one BLURB dataset per task type; prints a Markdown
table next to zero-/3-shot scores of the same test examples. Each run is its own `biotune run` process (so
its peak memory is its own) and is skipped when already finished.

    python scripts/method_table.py --out runs/method-table
    python scripts/method_table.py --out runs/method-table --methods lora,qlora --datasets gad
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# one dataset per task type; per-dataset settings (PICO has no train split here: trains on dev, flagged)
DATASETS = {
    "ncbi-disease": {"training.max_length": 256},
    "ebm-pico": {"training.max_length": 256, "training.train_split": "dev"},
    "gad": {"training.max_length": 256},
    "biosses": {"training.max_length": 256},
    "hoc": {"training.max_length": 640},
    "pubmedqa": {"training.max_length": 640},
}
METHODS = ["fft", "lora", "qlora", "ptuning", "dora", "ia3", "prompt_tuning", "prefix"]
COMMON = {
    "training.max_steps": 20,
    "training.batch_size": 8,
    "training.train_limit": 160,
    "training.dev_limit": 32,
    "training.save_steps": 20,
    "training.logging_steps": 5,
    "eval.limit": 50,
    "eval.batch_size": 16,
}


def run(method: str, dataset: str, out: Path) -> dict | None:
    folder = out / f"{dataset}-{method}"
    sets = {**COMMON, **DATASETS[dataset], "dataset": dataset}
    cmd = [
        sys.executable,
        "-m",
        "biotune",
        "run",
        str(ROOT / f"configs/causal/smollm2-135m_{method}.yaml"),
        "--output-dir",
        str(folder),
        "--no-progress",
    ]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    if not (folder / "metrics.json").is_file():
        print(" ".join(cmd[1:]), file=sys.stderr, flush=True)
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            print(f"FAILED {dataset} {method}: {r.stderr.strip().splitlines()[-1]}", file=sys.stderr)
            return None
    return json.loads((folder / "metrics.json").read_text())


def icl_scores(path: Path) -> dict:
    if not path.is_file():
        return {}
    return {n: r["score"] for n, r in json.loads(path.read_text())["datasets"].items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/method-table")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--zero-shot", default="runs/table-0shot/metrics.json")
    ap.add_argument("--three-shot", default="runs/table-3shot/metrics.json")
    args = ap.parse_args()
    out = Path(args.out)
    zero, three = icl_scores(Path(args.zero_shot)), icl_scores(Path(args.three_shot))
    rows = []
    datasets = args.datasets.split(",")
    # method by method across the datasets: a cut-short run still covers every task type with the first methods
    for method, dataset in ((m, d) for m in args.methods.split(",") for d in datasets):
        s = run(method, dataset, out)
        if s is None:
            continue
        r, m, t = s["resources"], s["metrics"], s["training"]
        rows.append(
            (
                datasets.index(dataset),
                (
                    f"| {dataset} | {method} | {m['score']:.1f} | {zero.get(dataset, float('nan')):.1f} | "
                    f"{three.get(dataset, float('nan')):.1f} | {m['n']} | {m.get('n_unparsed', 0)} | "
                    f"{r['trainable_params']:,} | {r['train_peak_memory_bytes'] / 2**20:,.0f} | "
                    f"{r['train_seconds']:.0f} | {r['train_tokens_per_s']:.0f} | {r['eval_seconds']:.0f} | "
                    f"{t['train_examples']}/{t['steps']} |"
                ),
            )
        )
    print(
        "| dataset | method | test score | 0-shot | 3-shot | n test | unparsed | trainable params | "
        "train peak RSS MB | train s | train tok/s | eval s | train ex/steps |"
    )
    print("|" + "---|" * 13)
    print("\n".join(row for _, row in sorted(rows, key=lambda r: r[0])))


if __name__ == "__main__":
    main()
