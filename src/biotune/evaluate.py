"""The prediction step of zero-/few-shot and generative cells: a dataset's examples (data/) -> shots (icl.py) ->
prompt (prompting.py) -> generate or score options (inference.py) -> parse + score (tasks/) -> prediction rows and
metrics. `biotune run` (train.py) and `biotune eval` (eval_run.py) both predict through `evaluate_dataset`."""

from __future__ import annotations

import sys
from typing import Literal

from . import inference
from .data import get_spec, load_split
from .icl import ShotSelector
from .identity import _or_fallback
from .prompting import PromptBuilder
from .summary import is_subset
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
    (in-context methods) drawn from `eval.shot_split`. Returns (metrics dict, prediction rows). Steps: the
    examples, their shots (`_shots`), then the answers generated and parsed (`_generated`) or the options scored
    (`_chosen`), then the task's score."""
    name, settings = cfg.dataset, cfg.eval
    spec = get_spec(name)
    task = task_for(spec, output_format_for(spec, cfg.output_format or "auto"))
    eval_split = _split_to_use(cfg, spec, split or settings.split)
    split_data = load_split(name, eval_split, cfg.data_dir)
    examples = [split_data[i] for i in subset_indices(len(split_data), settings.limit if split is None else limit)]
    shot_split, shots_for = _shots(cfg, spec, task, examples, eval_split, model)
    queries = task.choice_queries() if settings.scoring == "likelihood" else None
    scoring = "likelihood" if queries else "generate"
    run = _Predicted()
    answer = dict(model=model, tokenizer=tokenizer, builder=builder, spec=spec, task=task, progress=progress)
    if scoring == "generate":
        _generated(
            run, examples, shots_for, budget=answer_budget(task, settings), batch=cfg.runtime.eval_batch_size, **answer
        )
    else:
        _chosen(run, examples, shots_for, queries, batch=cfg.runtime.eval_batch_size, **answer)
    result = task.score(examples, run.predictions)
    result.update(
        task=spec.task,
        metric=task.metric,
        split=eval_split,
        shot_split=shot_split,
        n=len(examples),
        n_total=len(split_data),
        n_unparsed=run.n_unparsed,
        n_shots_dropped=run.n_dropped,
        n_inputs_truncated=run.n_inputs_cut,
        scoring=scoring,
    )
    # a user's dataset never is, nor a fixed part of BLURB's test split
    result["blurb_comparable"] = eval_split == "test" and spec.blurb and not is_subset(result)
    if scoring == "generate":  # answers that ran to the token cap: scored on their complete items, not unparsed
        result.update(n_truncated=run.n_at_cap, max_new_tokens=answer_budget(task, settings))
    return result, run.rows


class _Predicted:
    """What the prediction step collects: a prediction and a row per example, what the prompts dropped or cut, how
    many answers ran to the token cap (`at_cap`: cut, perhaps inside an item) and how many of the others did not
    parse. A cut answer keeps the complete items before the cut (the parsers place each item on its own) and is
    counted apart from the unparsed."""

    def __init__(self):
        self.rows: list[dict] = []
        self.predictions: list = []
        self.n_dropped = self.n_inputs_cut = self.n_unparsed = self.n_at_cap = 0

    def add(self, row: dict, parsed, dropped: int, input_cut: bool, at_cap: bool = False) -> None:
        self.rows.append(row)
        self.predictions.append(parsed.value)
        self.n_dropped += dropped
        self.n_inputs_cut += input_cut
        self.n_at_cap += at_cap
        self.n_unparsed += not parsed.ok and not at_cap


def _shots(cfg, spec, task, examples: list[dict], eval_split: str, model) -> tuple[str | None, list[list[dict]]]:
    """(the split the shots come from, each example's shots): none for zero-shot; `method.params.shots` of them,
    drawn at random or by kNN (MiniLM embeddings, on the model's device), never the example itself."""
    n_shots = int(cfg.method.params.get("shots", 0))
    if not n_shots:
        return None, [[] for _ in examples]
    selection = cfg.method.params.get("selection", "random")
    shot_split = _split_to_use(cfg, spec, cfg.eval.shot_split)
    pool = load_split(cfg.dataset, shot_split, cfg.data_dir)
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
    return shot_split, selector.select_all(examples)


def _generated(run: _Predicted, examples, shots_for, *, model, tokenizer, builder, spec, task, progress, budget, batch):
    """Each example's answer generated (at most `budget` tokens) and parsed by the task."""
    prompts = [
        builder.build(
            task.instruction(),
            [(task.render_input(s), task.target(s)) for s in shots],
            task.render_input(ex),
            reserve=budget,
        )
        for ex, shots in zip(examples, shots_for)
    ]
    answers = inference.generate_answers(
        model, tokenizer, [p.text for p in prompts], budget, batch, desc=spec.name, progress=progress
    )
    for ex, shots, prompt, (out, at_cap) in zip(examples, shots_for, prompts, answers):
        parsed = task.parse(out, ex)
        row = _row(ex, task, prompt.text, out, parsed, shots, prompt)
        row["at_cap"] = at_cap
        run.add(row, parsed, prompt.n_dropped, prompt.input_truncated, at_cap)


def _chosen(run: _Predicted, examples, shots_for, queries, *, model, tokenizer, builder, spec, task, progress, batch):
    """Each example's options scored by their log-likelihood (one prompt per question the task asks), the most
    likely chosen, and the choices turned into the task's prediction."""
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
    scores = iter(inference.option_logprobs(model, tokenizer, requests, batch, desc=spec.name, progress=progress))
    for ex, shots, prompts in zip(examples, shots_for, per_example):
        chosen, option_scores = [], []
        for q in queries:
            s = next(scores)
            chosen.append(q.options[max(range(len(s)), key=s.__getitem__)])
            option_scores.append(dict(zip(q.options, s)))
        parsed = task.from_choices(ex, chosen)
        text = [p.text for p in prompts] if len(prompts) > 1 else prompts[0].text
        row = _row(ex, task, text, "; ".join(chosen), parsed, shots, prompts[0])
        row["option_scores"] = option_scores if len(option_scores) > 1 else option_scores[0]
        run.add(row, parsed, sum(p.n_dropped for p in prompts), any(p.input_truncated for p in prompts))


def _split_to_use(cfg, spec, split: str) -> str:
    """`split`, or the fallback split when `split` is missing and the user allowed a fallback (the same choice
    as the identity's, biotune.identity.splits_read)."""

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
