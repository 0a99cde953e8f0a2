"""What each training lever gives: LoRA on the packaged SmolLM2, GAD, batch 8, the levers switched on one after
another (each row keeps the ones above it), each timed over the same training steps in this process.

    python benchmarks/levers.py [--steps 6] [--repeats 3] [--out benchmarks/results/levers-<machine>.json]

The whole ladder runs `--repeats` times; each row reports its median run (and lists every run).

Every row but the last trains on the same batches (random order); the last row switches on length-grouped
batches, which changes the batches (fewer pad tokens), so it is compared on real tokens/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import RESULTS, machine, machine_slug  # noqa: E402

from biotune.config import validate_experiment  # noqa: E402
from biotune.train import Experiment  # noqa: E402
from biotune.trainer import answer_loss  # noqa: E402

LADDER = [
    ("fp32 (the Trainer default on CPU)", dict(bf16=False, attn="sdpa", answers=False, fast=False, group=False)),
    (
        "+ bf16 autocast, weights fp32",
        dict(bf16=True, frozen_fp32=True, attn="sdpa", answers=False, fast=False, group=False),
    ),
    (
        "+ frozen weights stored in bf16 (cast once)",
        dict(bf16=True, attn="sdpa", answers=False, fast=False, group=False),
    ),
    (
        "+ LM head and loss at answer positions only",
        dict(bf16=True, attn="sdpa", answers=True, fast=False, group=False),
    ),
    ("+ eager attention for training on CPU", dict(bf16=True, attn="auto", answers=True, fast=False, group=False)),
    (
        "+ fast LoRA dropout (only the dropped positions drawn)",
        dict(bf16=True, attn="auto", answers=True, fast=True, group=False),
    ),
    (
        "+ adapters read the bf16 activations (no fp32 copy)",
        dict(bf16=True, attn="auto", answers=True, fast=True, nocast=True, group=False),
    ),
    (
        "+ one dropout draw per shared input (q/k/v; gate/up)",
        dict(bf16=True, attn="auto", answers=True, fast=True, nocast=True, shared=True, group=False),
    ),
    (
        "+ frozen layer and its adapter as one autograd node",
        dict(bf16=True, attn="auto", answers=True, fast=True, nocast=True, shared=True, fused=True, group=False),
    ),
    (
        "+ RMSNorm as one autograd node",
        dict(
            bf16=True,
            attn="auto",
            answers=True,
            fast=True,
            nocast=True,
            shared=True,
            fused=True,
            norms=True,
            group=False,
        ),
    ),
    (
        "+ length-grouped batches (biotune's default)",
        dict(
            bf16=True,
            attn="auto",
            answers=True,
            fast=True,
            nocast=True,
            shared=True,
            fused=True,
            norms=True,
            group=True,
        ),
    ),
]


def build(opts: dict, n: int, steps: int, out: Path) -> Experiment:
    cfg = validate_experiment(
        {
            "dataset": "gad",
            "output_dir": str(out),
            "seed": 0,
            "model": {"family": "causal", "path": "smollm2-135m", "attn_implementation": opts["attn"]},
            "method": {
                "name": "lora",
                "params": {
                    "fast_dropout": opts["fast"],
                    "shared_dropout": opts.get("shared", False),
                    "fused": opts.get("fused", False),
                },
            },
            "training": {
                "max_steps": steps,
                "batch_size": 8,
                "train_limit": n,
                "dev_limit": 8,
                "max_length": 512,
                "bf16": opts["bf16"],
                "logits_at_answers": opts["answers"],
                "group_by_length": opts["group"],
                "fast_norms": opts.get("norms", False),
                "learning_rate": 2e-4,
            },
        }
    )
    exp = Experiment(cfg, progress=False)
    exp.setup()
    if opts.get("frozen_fp32"):
        for p in exp.model.parameters():
            if not p.requires_grad:
                p.data = p.data.float()
    return exp


def time_steps(exp: Experiment, opts: dict, steps: int) -> dict:
    trainer = exp.trainer
    model = exp.model
    model.train()
    batches = [b for _, b in zip(range(steps), trainer.get_train_dataloader())]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)

    def step(batch):
        batch = dict(batch)
        labels = batch.pop("labels")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=opts["bf16"]):
            if "logits_to_keep" in batch:
                loss = answer_loss(model(**batch), labels)
            else:
                loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.item()

    # what biotune's training loop runs in (here: whether the adapters read bf16 activations without a copy)
    with exp.method.training_context(model, exp.params, autocast=opts["bf16"] and opts.get("nocast", False)):
        step(batches[0])  # warm-up, not timed
        real = padded = 0
        start = time.perf_counter()
        for b in batches[1:]:
            step(b)
            real += int(b["attention_mask"].sum())
            padded += b["input_ids"].numel()
        seconds = time.perf_counter() - start
    return {
        "real_tokens_per_s": round(real / seconds, 1),
        "padded_tokens_per_s": round(padded / seconds, 1),
        "real_tokens": real,
        "padded_tokens": padded,
        "seconds": round(seconds, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3, help="times the whole ladder runs; each row reports its median")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    info = machine()
    runs: list[list[dict]] = [[] for _ in LADDER]
    # the ladder runs whole, `repeats` times over: a slow spell of a shared machine hits every row alike
    for rep in range(args.repeats):
        for i, (name, opts) in enumerate(LADDER):
            exp = build(opts, 8 * (args.steps + 1), args.steps + 1, Path("/tmp/biotune-levers"))
            r = time_steps(exp, opts, args.steps + 1)
            runs[i].append(r)
            print(
                f"[{rep + 1}/{args.repeats}] {name:55s} {r['real_tokens_per_s']:8.1f} real tok/s  "
                f"{r['padded_tokens_per_s']:8.1f} padded tok/s",
                flush=True,
            )
            del exp
    rows = []
    for (name, _), rs in zip(LADDER, runs):
        mid = sorted(rs, key=lambda r: r["real_tokens_per_s"])[len(rs) // 2]  # the median run
        rows.append({"lever": name, **mid, "real_tokens_per_s_runs": [r["real_tokens_per_s"] for r in rs]})
    base = rows[0]["real_tokens_per_s"]
    for r in rows:
        r["speedup_vs_fp32"] = round(r["real_tokens_per_s"] / base, 2)
    out = Path(args.out) if args.out else RESULTS / f"levers-{machine_slug(info)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": info, "steps": args.steps, "repeats": args.repeats, "rows": rows}, indent=1))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
