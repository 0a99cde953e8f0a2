"""What the generation batch (`runtime.eval_batch_size`) gives: the packaged SmolLM2-135M, real BLURB test examples,
zero- and 3-shot prompts predicted through `biotune`'s own path (evaluate_experiment: prompts, length-sorted batches,
greedy generation with a KV cache, parsing, scoring), the same examples at each batch size, in this one process,
the model loaded once (a warm-up evaluation first).

    python benchmarks/generation_batch.py [--batches 8,16,32] [--out benchmarks/results/generation-batch-<machine>.json]
    python benchmarks/generation_batch.py --quick     # 4 examples a case: checks the script runs (not committed)

Per case: the prompts' and answers' lengths in tokens; per batch size: seconds, examples/s, the score, how many
answers differ from the first batch size's (padded batched generation is not batch-invariant in every precision: the
identity keys `eval_batch_size`), and the padded prompt tokens against the real ones (batches of length-sorted
prompts, as biotune.inference makes them). A larger batch reads the weights once for more rows at each decoding
step (long answers gain) but pads more (long prompts of varied length lose); with few examples a batch spans more of
the length range than it would over a study's 200 dev or 1,000 test examples, so the padding here is an upper
bound. A study's dev evaluations during training and its test predictions go through the same generation.

Beside each time, the planner's (biotune.plan, uncorrected by this machine's earlier runs; prompts batched and
padded as biotune batches them): each decoding step bound by its compute or by reading the weights at the rate
measured here for its rows (`read_gbs`), and by its compute alone (as a CPU was planned before those rates were
measured), so the file shows what the planner's generation model is worth on this machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import RESULTS, machine, machine_slug  # noqa: E402

from biotune.config import validate_experiment  # noqa: E402
from biotune.inference import length_order  # noqa: E402
from biotune.plan import plan_experiment  # noqa: E402
from biotune.plan.machine import this_machine  # noqa: E402
from biotune.train import evaluate_experiment  # noqa: E402

# (name, dataset, shots, examples): free-text NER answers (decoding-bound), a relation label after three shots, and
# a question with its abstract (prompt-bound)
CASES = [
    ("ncbi-disease zero-shot", "ncbi-disease", 0, 64),
    ("ncbi-disease 3-shot", "ncbi-disease", 3, 48),
    ("gad 3-shot", "gad", 3, 48),
    ("pubmedqa zero-shot", "pubmedqa", 0, 32),
]


def _config(out: Path, dataset: str, shots: int, limit: int, batch: int):
    method = {"name": "few_shot", "params": {"shots": shots}} if shots else {"name": "zero_shot"}
    return validate_experiment(
        {
            "dataset": dataset,
            "model": {"family": "causal", "path": "smollm2-135m", "dtype": "float32"},
            "method": method,
            "training": {"bf16": False},
            "eval": {"limit": limit},
            "runtime": {"eval_batch_size": batch},
            "output_dir": str(out),
        }
    )


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def _padding(lengths: list[int], batch: int) -> float:
    """Padded prompt tokens / real ones, in the batches biotune.inference makes (its length order, then `batch` at a
    time, each padded to its longest)."""
    order = [lengths[i] for i in length_order(lengths)]
    padded = sum(max(order[i : i + batch]) * len(order[i : i + batch]) for i in range(0, len(order), batch))
    return round(padded / sum(order), 3)


def _planned(cfg) -> dict:
    """The planner's seconds for the run's test prediction on this machine, not corrected by earlier runs here: as it
    plans (decoding bound by compute or by the measured weight-read rates) and with decoding by compute alone."""
    here = dataclasses.replace(this_machine(), here=False)  # a plan that learned nothing from this machine's runs
    out = {"planned_seconds": round(plan_experiment(cfg, here, suggest=False).eval_seconds, 2)}
    flat = dataclasses.replace(here, read_gbs=())
    out["planned_compute_bound_seconds"] = round(plan_experiment(cfg, flat, suggest=False).eval_seconds, 2)
    return out


def _tokens(tokenizer, texts: list[str]) -> list[int]:
    return [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="8,16,32")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--quick", action="store_true", help="4 examples a case (a check that it runs)")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    info = machine()
    acc = this_machine()  # its matmul peak and weight-read rates: measured before any run (or read from the cache)
    work = Path(tempfile.mkdtemp(prefix="gen-batch-"))
    try:
        cases = _measure(work, batches, 4 if args.quick else None)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the runs' predictions: read above, not kept
    result = {
        "machine": info,
        "command": "python " + " ".join(sys.argv),
        "model": "smollm2-135m (packaged), float32",
        "planner": {"fp32_tflops": acc.fp32_tflops, "read_gbs": {str(r): g for r, g in acc.read_gbs}},
        "cases": cases,
    }
    out = args.out or RESULTS / f"generation-batch-{machine_slug(info)}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


def _measure(work: Path, batches: list[int], cap: int | None = None) -> list[dict]:
    """Every case at every batch size (at most `cap` examples a case), in this process: the results file's cases."""
    # warm-up: the model loaded, torch's kernels chosen
    _, loaded = evaluate_experiment(_config(work / "warm", "gad", 0, 8, batches[0]), progress=False)
    cases = []
    for name, dataset, shots, limit in CASES:
        limit = min(limit, cap or limit)
        rows, first = [], None
        for batch in batches:
            out = work / f"{dataset}-{shots}-{batch}"
            t0 = time.perf_counter()
            summary, loaded = evaluate_experiment(_config(out, dataset, shots, limit, batch), loaded, progress=False)
            seconds = time.perf_counter() - t0
            rows_out = _rows(out)
            answers = [r["raw_output"] for r in rows_out]
            if first is None:
                first = answers
                prompts = _tokens(loaded[1], [r["prompt"] for r in rows_out])
                new = _tokens(loaded[1], answers)
            row = {
                "batch": batch,
                "seconds": round(seconds, 2),
                "examples_per_s": round(limit / seconds, 3),
                "score": summary.metrics["score"],
                "answers_differing_from_first": sum(a != b for a, b in zip(answers, first)),
                "padded_prompt_ratio": _padding(prompts, batch),
                **_planned(_config(out, dataset, shots, limit, batch)),
            }
            rows.append(row)
            print(
                f"{name:24s} batch {batch:3d}: {seconds:7.1f} s  {row['examples_per_s']:.2f} ex/s  "
                f"score {row['score']:.2f}  differ {row['answers_differing_from_first']}  "
                f"padding x{row['padded_prompt_ratio']}",
                flush=True,
            )
        base = rows[0]["seconds"]
        for row in rows:
            row["speedup_vs_first"] = round(base / row["seconds"], 2)
        cases.append(
            {
                "case": name,
                "dataset": dataset,
                "shots": shots,
                "examples": limit,
                "prompt_tokens": {"min": min(prompts), "mean": round(sum(prompts) / limit), "max": max(prompts)},
                "answer_tokens": {"mean": round(sum(new) / limit), "max": max(new)},
                "rows": rows,
            }
        )
    return cases


if __name__ == "__main__":
    main()
