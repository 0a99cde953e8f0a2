"""What biotune's training levers cost in loss: the held-out answer loss after the benchmark's LoRA training
(GAD, 256 examples, 32 steps of batch 8), with the levers switched off one by one, next to the plain
Trainer + PEFT baseline, each over two seeds (the seed-to-seed spread is the yardstick).

    python benchmarks/loss_ablation.py [--work DIR]     # about 20 minutes on 2 CPU cores

Writes benchmarks/results/loss-ablation-<machine>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import ROOT, RESULTS, answer_loss, biotune_experiment, gad_texts, machine, machine_slug, model_dir

VARIANTS = {  # name: experiment overrides (biotune's defaults otherwise: every lever on)
    "biotune (every lever)": {},
    "biotune, no length grouping": {"training": {"group_by_length": False}},
    "biotune, fp32": {"training": {"bf16": False}},
    "biotune, fp32, no grouping, plain dropout": {"training": {"bf16": False, "group_by_length": False},
                                                  "method": {"name": "lora", "params": {"packed_dropout": False}}},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=None)
    ap.add_argument("--seeds", default="0,1")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="biotune-ablation-"))
    work.mkdir(parents=True, exist_ok=True)
    data, dev = work / "gad_train.jsonl", work / "gad_dev.jsonl"
    gad_texts(256, "train", data)
    gad_texts(256, "dev", dev)
    rows = {}
    for seed in seeds:
        out = work / f"baseline_s{seed}"
        subprocess.run([sys.executable, "benchmarks/baseline_lora.py", model_dir(), str(data), str(out), str(seed)],
                       check=True, cwd=ROOT, capture_output=True)
        rows.setdefault("baseline (Trainer + PEFT, fp32)", {})[seed] = answer_loss(
            out / "adapter", dev, work / f"baseline_s{seed}_dev.json")
        for i, (name, extra) in enumerate(VARIANTS.items()):
            exp, out = work / f"v{i}_s{seed}.yaml", work / f"v{i}_s{seed}"
            biotune_experiment(exp, out, "lora", 256, 32, {**extra, "seed": seed})
            subprocess.run([sys.executable, "-m", "biotune", "run", str(exp), "--no-progress"], check=True, cwd=ROOT,
                           capture_output=True)
            rows.setdefault(name, {})[seed] = answer_loss(out / "final", dev, work / f"v{i}_s{seed}_dev.json")
        for name, losses in rows.items():
            print(f"{name:45s} " + "  ".join(f"seed {s}: {v:.4f}" for s, v in losses.items()), flush=True)
    info = machine()
    result = {"machine": info, "examples": 256, "steps": 32, "heldout_examples": 256, "seeds": seeds,
              "heldout_answer_loss": {name: {str(s): round(v, 4) for s, v in losses.items()}
                                      for name, losses in rows.items()}}
    path = RESULTS / f"loss-ablation-{machine_slug(info)}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
