"""`biotune eval`: zero-/few-shot evaluation of a generative model on BLURB datasets.

dataset (data/) -> shots (icl.py) -> prompt (prompting.py) -> generate or score options (inference.py)
-> parse + score (tasks/) -> predictions JSONL + metrics JSON (atomic) under the output directory.
"""

from __future__ import annotations

import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import __version__, inference, metrics
from .data import DATASETS, get_spec, load_split, split_exists
from .errors import BiotuneError, MissingSplitError
from .icl import ShotSelector
from .io import atomic_write_json, atomic_write_jsonl
from .prompting import PromptBuilder
from .runtime import dtype_name, pick_device, pick_dtype
from .tasks import output_format_for, task_for

Split = Literal["train", "dev", "test"]


class EvalConfig(BaseModel):
    """Settings of one evaluation run (also what `metrics.json` records under "settings")."""

    model_config = ConfigDict(extra="forbid")

    model: str = "smollm2-135m"
    datasets: list[str] = Field(default_factory=lambda: ["all"])
    split: Split = "test"
    shots: int = Field(0, ge=0)
    selection: Literal["random", "knn"] = "random"
    shot_split: Split = "train"
    fallback_split: Split | None = None  # used (and flagged) where `split` / `shot_split` is missing
    seed: int = 0
    limit: int | None = Field(None, ge=1)
    batch_size: int = Field(8, ge=1)
    scoring: Literal["generate", "likelihood"] = "generate"
    # NER / PICO: how mentions are written (biotune.tasks.mentions): list, inline, or auto (the task's default)
    output_format: Literal["auto", "list", "inline"] = "auto"
    max_length: int | None = Field(None, ge=64)
    device: str = "auto"
    dtype: str = "auto"
    data_dir: str | None = None
    output_dir: str = "runs/eval"
    progress: bool = True

    @field_validator("datasets")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        if names in (["all"], ["blurb"]):
            return [n for n, s in DATASETS.items() if s.blurb]
        if not names:
            raise ValueError("no dataset given")
        out = []
        for n in names:  # built-in names or dataset files
            try:
                out.append(get_spec(n).ref)  # raises, listing the valid names
            except BiotuneError as e:
                raise ValueError(str(e)) from None
        return out


def subset_indices(n: int, limit: int | None) -> list[int]:
    """`limit` indices spread evenly over the split (the same ones whatever the seed), or all of them."""
    if limit is None or limit >= n:
        return list(range(n))
    return sorted({round(i * (n - 1) / max(1, limit - 1)) for i in range(limit)}) if limit > 1 else [0]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def evaluate_dataset(cfg: EvalConfig, name: str, model, tokenizer, builder: PromptBuilder, embedder=None):
    """Returns (metrics dict, prediction rows) for one dataset."""
    spec = get_spec(name)
    task = task_for(spec, output_format_for(spec, cfg.output_format))
    eval_split = _split_to_use(cfg, spec, cfg.split)
    split = load_split(name, eval_split, cfg.data_dir)
    examples = [split[i] for i in subset_indices(len(split), cfg.limit)]

    shots_for = [[] for _ in examples]
    shot_split = _split_to_use(cfg, spec, cfg.shot_split) if cfg.shots else None
    if cfg.shots:
        pool = load_split(name, shot_split, cfg.data_dir)
        selector = ShotSelector(
            pool, cfg.shots, task.render_input, cfg.selection, cfg.seed, embedder=embedder,
            exclude_same_id=shot_split == eval_split,
        )
        shots_for = selector.select_all(examples)

    queries = task.choice_queries() if cfg.scoring == "likelihood" else None
    scoring = "likelihood" if queries else "generate"
    rows, predictions = [], []
    n_dropped = n_truncated = n_unparsed = 0

    if scoring == "generate":
        prompts = [
            builder.build(
                task.instruction(), [(task.render_input(s), task.target(s)) for s in shots], task.render_input(ex),
                reserve=task.max_new_tokens,
            )
            for ex, shots in zip(examples, shots_for)
        ]
        outputs = inference.generate(
            model, tokenizer, [p.text for p in prompts], task.max_new_tokens, cfg.batch_size,
            desc=name, progress=cfg.progress,
        )
        for ex, shots, prompt, out in zip(examples, shots_for, prompts, outputs):
            parsed = task.parse(out, ex)
            predictions.append(parsed.value)
            rows.append(_row(ex, task, prompt.text, out, parsed, shots, prompt))
            n_dropped += prompt.n_dropped
            n_truncated += prompt.input_truncated
            n_unparsed += not parsed.ok
    else:
        reserve = max(len(tokenizer(o, add_special_tokens=False)["input_ids"]) for q in queries for o in q.options)
        per_example = [
            [
                builder.build(
                    q.instruction, [(task.render_input(s), q.answer(s)) for s in shots], task.render_input(ex),
                    reserve=reserve,
                )
                for q in queries
            ]
            for ex, shots in zip(examples, shots_for)
        ]
        requests = [(p.text, q.options) for prompts in per_example for p, q in zip(prompts, queries)]
        scores = inference.option_logprobs(model, tokenizer, requests, cfg.batch_size, desc=name, progress=cfg.progress)
        k = 0
        for ex, shots, prompts in zip(examples, shots_for, per_example):
            chosen, option_scores = [], []
            for q in queries:
                s = scores[k]
                k += 1
                chosen.append(q.options[max(range(len(s)), key=s.__getitem__)])
                option_scores.append(dict(zip(q.options, s)))
            parsed = task.from_choices(ex, chosen)
            predictions.append(parsed.value)
            row = _row(ex, task, [p.text for p in prompts] if len(prompts) > 1 else prompts[0].text,
                       "; ".join(chosen), parsed, shots, prompts[0])
            row["option_scores"] = option_scores if len(option_scores) > 1 else option_scores[0]
            rows.append(row)
            n_dropped += sum(p.n_dropped for p in prompts)
            n_truncated += any(p.input_truncated for p in prompts)
            n_unparsed += not parsed.ok

    result = task.score(examples, predictions)
    result.update(
        task=spec.task, metric=task.metric, split=eval_split, shot_split=shot_split,
        blurb_comparable=eval_split == "test", n=len(examples), n_total=len(split),
        n_unparsed=n_unparsed, n_shots_dropped=n_dropped, n_inputs_truncated=n_truncated, scoring=scoring,
    )
    return result, rows


def _split_to_use(cfg: EvalConfig, spec, split: str) -> str:
    """`split`, or the fallback split when `split` is missing and the user allowed a fallback."""
    if cfg.fallback_split and not split_exists(spec, split, cfg.data_dir):
        if split_exists(spec, cfg.fallback_split, cfg.data_dir):
            _log(f"  {spec.name}: no {split} split here, using {cfg.fallback_split} (--fallback-split)")
            return cfg.fallback_split
    return split  # loading it raises the missing-split error


def _row(ex, task, prompt, output, parsed, shots, p) -> dict:
    return {
        "id": ex["id"],
        "prompt": prompt,
        "raw_output": output,
        "prediction": parsed.value,
        "parsed": parsed.ok,
        "gold": task.gold(ex),
        "shot_ids": [s["id"] for s in shots][p.n_dropped :],
        "input_truncated": p.input_truncated,
    }


def run_eval(cfg: EvalConfig) -> dict:
    from .models import causal, resolve

    started = time.time()
    out_dir = Path(cfg.output_dir)
    device = pick_device(cfg.device)
    dtype = pick_dtype(device, cfg.dtype)
    ref = resolve(cfg.model)
    _log(f"loading {cfg.model} on {device} ({dtype_name(dtype)})")
    model, tokenizer = causal.load(ref, device, dtype)
    context = getattr(model.config, "max_position_embeddings", None) or 2048
    max_length = min(cfg.max_length or context, context)
    builder = PromptBuilder(tokenizer, max_length)
    embedder = None
    if cfg.shots and cfg.selection == "knn":
        from .models.embedder import Embedder

        embedder = Embedder(device=device)

    results, skipped, specs = {}, {}, {}
    for i, dataset in enumerate(cfg.datasets, 1):
        spec = get_spec(dataset)
        name = spec.name  # results and prediction files by name (a dataset file's too)
        _log(f"[{i}/{len(cfg.datasets)}] {name}")
        t0 = time.perf_counter()
        try:
            result, rows = evaluate_dataset(cfg, dataset, model, tokenizer, builder, embedder)
        except MissingSplitError as e:
            if len(cfg.datasets) == 1:
                raise
            _log(f"  skipped: {e}")
            skipped[name] = str(e)
            continue
        result["eval_seconds"] = round(time.perf_counter() - t0, 3)  # this dataset: prompts, inference, scoring
        atomic_write_jsonl(out_dir / "predictions" / f"{name}.jsonl", rows)
        results[name], specs[name] = result, spec
    if not results:
        raise BiotuneError("no dataset could be evaluated: " + " | ".join(skipped.values()))

    blurb = metrics.blurb_score(
        {n: r["score"] for n, r in results.items() if specs[n].blurb}, {n: specs[n].task for n in results}
    )
    summary = {
        "settings": {**cfg.model_dump(), "datasets": cfg.datasets, "device": str(device),
                     "dtype": dtype_name(dtype), "max_length": max_length, "model_path": ref.path},
        "datasets": results,
        "blurb": {**blurb, "complete": blurb["n_task_types"] == 6 and not skipped},
        "skipped": skipped,
        "versions": _versions(),
        "started_at": datetime.fromtimestamp(started, timezone.utc).isoformat(),
        "elapsed_s": round(time.time() - started, 2),
    }
    atomic_write_json(out_dir / "metrics.json", summary)
    return summary


def _versions() -> dict:
    import torch
    import transformers

    return {"biotune": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}
