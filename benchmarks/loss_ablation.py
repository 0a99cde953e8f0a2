"""What biotune's training levers cost in loss: the held-out answer loss after the benchmark's LoRA training
(GAD, 256 examples, 32 steps of batch 8), with the levers switched off one by one, next to the plain
Trainer + PEFT baseline, each over two seeds (the seed-to-seed spread is the yardstick).

    python benchmarks/loss_ablation.py [--work DIR]     # about 40 minutes on 2 CPU cores
    python benchmarks/loss_ablation.py --variants 0,1 --out benchmarks/results/loss-ablation-<name>.json

Writes benchmarks/results/loss-ablation-<machine>.json (or --out); --variants runs some of VARIANTS (by number) with
the baseline. BENCHMARKS.md shows the rows of every loss-ablation-*.json, each with the commit it measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import RESULTS, _baseline_side, _biotune_side, gad_texts, machine, machine_slug

VARIANTS = {  # name: experiment overrides (biotune's defaults otherwise: every lever on)
    "biotune (every lever)": {},
    "biotune, one dropout draw per adapter": {"method": {"name": "lora", "params": {"shared_dropout": False}}},
    "biotune, no length grouping": {"training": {"group_by_length": False}},
    "biotune, fp32": {"training": {"bf16": False}},
    "biotune, fp32, no grouping, plain dropout": {
        "training": {"bf16": False, "group_by_length": False},
        "method": {"name": "lora", "params": {"fast_dropout": False}},
    },
    "biotune, torch's dropout (one draw per adapter)": {"method": {"name": "lora", "params": {"fast_dropout": False}}},
    "biotune, peft's LoRA layer and the library's RMSNorm": {
        "method": {"name": "lora", "params": {"fused": False}},
        "training": {"fast_norms": False},
    },
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=None)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument(
        "--variants",
        default=None,
        help="comma-separated numbers of the variants to run (0 = every lever; default: all)",
    )
    ap.add_argument("--out", default=None, help="result JSON (default benchmarks/results/loss-ablation-<machine>.json)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    info = machine()  # at the start: the commit measured is the one the runs start from
    chosen = list(VARIANTS.items())
    if args.variants:
        chosen = [chosen[int(i)] for i in args.variants.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="biotune-ablation-"))
    work.mkdir(parents=True, exist_ok=True)
    data, dev = work / "gad_train.jsonl", work / "gad_dev.jsonl"
    gad_texts(256, "train", data)
    gad_texts(256, "dev", dev)
    rows = {}
    for seed in seeds:
        rows.setdefault("baseline (Trainer + PEFT, fp32)", {})[seed] = _baseline_side(work, data, dev, seed)[
            "heldout_answer_loss"
        ]
        for i, (name, extra) in enumerate(chosen):
            side, _ = _biotune_side(work, 256, 32, dev, seed, extra, name=f"v{i}")
            rows.setdefault(name, {})[seed] = side["heldout_answer_loss"]
        width = max(map(len, rows))
        for name, losses in rows.items():
            print(f"{name:{width}s} " + "  ".join(f"seed {s}: {v:.4f}" for s, v in losses.items()), flush=True)
    result = {
        "machine": info,
        "examples": 256,
        "steps": 32,
        "heldout_examples": 256,
        "seeds": seeds,
        "heldout_answer_loss": {
            name: {str(s): round(v, 4) for s, v in losses.items()} for name, losses in rows.items()
        },
    }
    path = Path(args.out) if args.out else RESULTS / f"loss-ablation-{machine_slug(info)}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
