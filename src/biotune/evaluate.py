"""The prediction step of zero-/few-shot and generative cells: a dataset's examples (data/) -> shots (icl.py) ->
prompt (prompting.py) -> generate or score options (inference.py) -> parse + score (tasks/) -> prediction rows and
metrics. `biotune run` (train.py) and `biotune eval` (eval_run.py) both predict through `evaluate_dataset`."""

from __future__ import annotations

import sys
from typing import Literal

from . import inference
from .data import get_spec, load_split
from .icl import ShotSelector
from .prompting import PromptBuilder
from .tasks import output_format_for, task_for

Split = Literal["train", "dev", "test"]


def answer_budget(task, settings) -> int:
    """Tokens a generated answer may take: `eval.max_new_tokens`, else the task's own budget."""
    return settings.max_new_tokens or task.max_new_tokens


def subset_indices(n: int, limit: int | None) -> list[int]:
    """`limit` indices spread evenly over the split (the same ones whatever the seed), or all of them."""
    if limit is None or limit >= n:
        return list(range(n))
    return sorted({round(i * (n - 1) / max(1, limit - 1)) for i in range(limit)}) if limit > 1 else [0]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def evaluate_dataset(
    cfg,
    model,
    tokenizer,
    builder: PromptBuilder,
    split: str | None = None,
    limit: int | None = None,
    progress: bool = True,
):
    """Predicts and scores the experiment `cfg`'s dataset with a generative model as it is: `split` (default
    `eval.split`), its first `limit` examples (default `eval.limit`), with the shots `method.params` ask for
    (in-context methods) drawn from `eval.shot_split`. Returns (metrics dict, prediction rows)."""
    name, settings = cfg.dataset, cfg.eval
    n_shots = int(cfg.method.params.get("shots", 0))
    selection = cfg.method.params.get("selection", "random")
    batch_size = cfg.runtime.eval_batch_size
    spec = get_spec(name)
    task = task_for(spec, output_format_for(spec, cfg.output_format or "auto"))
    eval_split = _split_to_use(cfg, spec, split or settings.split)
    split_data = load_split(name, eval_split, cfg.data_dir)
    examples = [split_data[i] for i in subset_indices(len(split_data), settings.limit if split is None else limit)]

    shots_for = [[] for _ in examples]
    shot_split = _split_to_use(cfg, spec, settings.shot_split) if n_shots else None
    if n_shots:
        pool = load_split(name, shot_split, cfg.data_dir)
        embedder = None
        if selection == "knn":  # on the model's device, loaded once per process
            from .models.embedder import shared_embedder

            embedder = shared_embedder(str(model.device))
        selector = ShotSelector(
            pool,
            n_shots,
            task.render_input,
            selection,
            cfg.seed,
            embedder=embedder,
            exclude_same_id=shot_split == eval_split,
        )
        shots_for = selector.select_all(examples)

    queries = task.choice_queries() if settings.scoring == "likelihood" else None
    scoring = "likelihood" if queries else "generate"
    rows, predictions = [], []
    n_dropped = n_truncated = n_unparsed = 0

    if scoring == "generate":
        budget = answer_budget(task, settings)
        prompts = [
            builder.build(
                task.instruction(),
                [(task.render_input(s), task.target(s)) for s in shots],
                task.render_input(ex),
                reserve=budget,
            )
            for ex, shots in zip(examples, shots_for)
        ]
        outputs = inference.generate(
            model,
            tokenizer,
            [p.text for p in prompts],
            budget,
            batch_size,
            desc=spec.name,
            progress=progress,
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
                    q.instruction,
                    [(task.render_input(s), q.answer(s)) for s in shots],
                    task.render_input(ex),
                    reserve=reserve,
                )
                for q in queries
            ]
            for ex, shots in zip(examples, shots_for)
        ]
        requests = [(p.text, q.options) for prompts in per_example for p, q in zip(prompts, queries)]
        scores = inference.option_logprobs(model, tokenizer, requests, batch_size, desc=spec.name, progress=progress)
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
            row = _row(
                ex,
                task,
                [p.text for p in prompts] if len(prompts) > 1 else prompts[0].text,
                "; ".join(chosen),
                parsed,
                shots,
                prompts[0],
            )
            row["option_scores"] = option_scores if len(option_scores) > 1 else option_scores[0]
            rows.append(row)
            n_dropped += sum(p.n_dropped for p in prompts)
            n_truncated += any(p.input_truncated for p in prompts)
            n_unparsed += not parsed.ok

    result = task.score(examples, predictions)
    result.update(
        task=spec.task,
        metric=task.metric,
        split=eval_split,
        shot_split=shot_split,
        blurb_comparable=eval_split == "test",
        n=len(examples),
        n_total=len(split_data),
        n_unparsed=n_unparsed,
        n_shots_dropped=n_dropped,
        n_inputs_truncated=n_truncated,
        scoring=scoring,
    )
    return result, rows


def _split_to_use(cfg, spec, split: str) -> str:
    """`split`, or the fallback split when `split` is missing and the user allowed a fallback (the same choice
    as the identity's, biotune.identity.splits_read)."""
    from .identity import _or_fallback

    chosen = _or_fallback(cfg, split)
    if chosen != split:
        _log(f"  {spec.name}: no {split} split here, using {chosen} (--fallback-split)")
    return chosen  # a missing split without a fallback: loading it raises the missing-split error


def prompt_budget(model, cfg) -> int:
    """Tokens a prompt and its answer may take: the model's context (2,048 where the config states none, as T5's
    relative positions), or `eval.max_length` when smaller."""
    context = getattr(model.config, "max_position_embeddings", None) or 2048
    return min(cfg.eval.max_length or context, context)


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
