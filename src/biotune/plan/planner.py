"""A cell's cost before it runs: peak accelerator memory, FLOPs of training and evaluation from the real token
counts of its data, time at a stated utilisation, whether it fits, and for one that does not, what would.

Time: compute at `utilization` of the accelerator's peak in the run's dtype (QLoRA at QLORA_SPEED of that:
bitsandbytes dequantizes each 4-bit weight in every forward and backward); a generation step is bound by the
larger of its compute and of reading every weight and the KV cache once: at BANDWIDTH_EFFICIENCY of a table GPU's
memory bandwidth, on this machine at the rate measured here for the batch's rows (machine.weight_read_rates). Both
are planner assumptions, stated with every plan and checked against measured runs in BENCHMARKS.md.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from biotune.config import MethodConfig
from biotune.errors import MissingSplitError
from biotune.inference import length_order
from biotune.methods import METHODS
from biotune.models import FAMILIES
from biotune.study.halving import rung_cell
from biotune.study.search import rung_sizes, rung_steps

from . import calibration
from . import estimate as E
from .architecture import Architecture, architecture
from .gpus import Accelerator
from .tokens import SplitTokens, split_tokens, tokenizer_for

QLORA_SPEED = 0.6
FSDP_CHOICES = (2, 4, 8, 16)


@dataclass
class Plan:
    """One experiment's estimate."""

    name: str
    method: str
    trains: bool
    total_params: int = 0
    trainable_params: int = 0
    weights_bytes: float = 0.0
    state_bytes: float = 0.0  # gradients, optimizer moments, autocast copies
    activation_bytes: float = 0.0  # the largest micro-batch's, logits included
    generation_bytes: float = 0.0  # KV cache + prefill of the largest evaluation batch
    peak_bytes: float = 0.0
    train_tokens: float = 0.0  # training steps: prompt + answer tokens of every example seen
    dev_tokens: float = 0.0  # dev evaluations during training: dev loss, and prompts + answers for the dev score
    eval_tokens: float = 0.0  # the evaluated (test) split: prompts + generated answers
    train_flops: float = 0.0
    dev_flops: float = 0.0
    eval_flops: float = 0.0
    train_seconds: float = 0.0
    dev_seconds: float = 0.0
    eval_seconds: float = 0.0
    gpus: int = 1
    fits: bool = True
    suggestions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the cell could not be planned (e.g. a split is missing)
    share: float = 1.0  # the part of its budget the cell is expected to run (an adaptive search's candidate: < 1)
    # the factors this machine's finished runs put on its time, per part (biotune.plan.calibration); none elsewhere
    corrections: dict[str, calibration.Correction] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.train_seconds + self.dev_seconds + self.eval_seconds

    @property
    def gpu_hours(self) -> float:
        """Accelerator-hours expected (its share of the budget): GPU-hours, or hours of this CPU."""
        return self.seconds * self.share * self.gpus / 3600

    def parts(self) -> dict[str, float]:
        """Its seconds per part: training with its dev evaluations; prediction (test, and dev for an in-context
        run)."""
        if self.trains:
            return {"training": self.train_seconds + self.dev_seconds, "prediction": self.eval_seconds}
        return {"training": 0.0, "prediction": self.eval_seconds + self.dev_seconds}

    def uncorrected_parts(self) -> dict[str, float]:
        """`parts` as the planner's arithmetic alone gives them, before this machine's corrections."""
        return {k: v / (self.corrections[k].factor if k in self.corrections else 1.0) for k, v in self.parts().items()}

    def correct(self, found: dict[str, calibration.Correction]) -> None:
        """Multiply each part's seconds by its correction (a part the plan does not have is left out)."""
        for part, c in found.items():
            if part == "training" and self.trains:
                self.train_seconds *= c.factor
                self.dev_seconds *= c.factor
            elif part == "prediction":
                self.eval_seconds *= c.factor
                if not self.trains:
                    self.dev_seconds *= c.factor
            else:
                continue
            self.corrections[part] = c
        if self.corrections:
            self.notes.append(
                "time corrected by what runs that finished on this machine took against their plan: "
                + ", ".join(c.words(part) for part, c in self.corrections.items())
            )


def measured_parts(resources: dict, trains: bool) -> dict[str, float]:
    """A finished run's recorded seconds per part, counted as a plan counts them (`Plan.parts`)."""
    train = float(resources.get("train_seconds") or 0.0)  # its dev evaluations included, as in the plan
    predict = float(resources.get("eval_seconds") or 0.0)
    if not trains:
        predict += float(resources.get("dev_eval_seconds") or 0.0)
    return {"training": train if trains else 0.0, "prediction": predict}


def learn(plan: Plan, cfg, acc: Accelerator, run_id: str, resources: dict, fraction: float = 1.0) -> None:
    """A run that finished on this machine (`acc`, the one it was planned for) teaches later plans its time
    against this plan (`fraction`: the part of the budget it trained, a search candidate paused at a rung: its
    training alone)."""
    if not acc.here or plan.error:
        return
    planned = plan.uncorrected_parts()
    took = measured_parts(resources, plan.trains)
    if fraction < 1.0:
        planned = {"training": planned["training"] * fraction}
    calibration.record(acc, calibration.Kind.of(cfg), run_id, planned, took)


def regime(cfg, acc: Accelerator) -> E.Regime:
    """How the run `cfg` holds and computes its model on `acc` (dtype, attention kernel, what trains)."""
    import torch

    from biotune.runtime import attention_for

    method = METHODS.get(cfg.method.name)
    bf16 = acc.bf16 if cfg.training.bf16 == "auto" else bool(cfg.training.bf16)
    dtype_bytes = 2 if bf16 else 4
    if not method.trains and cfg.model.dtype in ("float32", "fp32"):
        dtype_bytes = 4
    eager = attention_for(torch.device(acc.device_type), method.trains, cfg.model.attn_implementation) == "eager"
    return E.Regime(
        compute_bytes=dtype_bytes,
        trains=method.trains,
        trains_base=method.trains_base,
        quantized=method.quantized,
        double_quant=bool(cfg.method.params.get("double_quant", True)),
        gradient_checkpointing=cfg.training.gradient_checkpointing,
        eager_attention=eager,
        lora_dropout=float(cfg.method.params.get("dropout", 0.0) or 0.0),
        logits_at_answers=cfg.runtime.logits_at_answers,
        autocast=bf16 and method.trains,
    )


@dataclass
class _Data:
    train: SplitTokens | None
    dev_loss: SplitTokens | None
    dev_generate: SplitTokens | None
    test: SplitTokens


def _data(cfg, method) -> _Data:

    generative = FAMILIES.get(cfg.model.family).generative
    t = cfg.training
    train = dev_loss = dev_gen = None
    if method.trains:
        train = split_tokens(cfg, t.train_split, t.train_limit, "train")
        dev_loss = split_tokens(cfg, "dev", t.dev_limit, "dev_loss")
        if t.select_by == "metric":
            dev_gen = split_tokens(cfg, "dev", t.dev_limit, "generate") if generative else dev_loss
    else:  # an in-context run predicts dev once for its dev score (where the dataset has a dev split)
        with contextlib.suppress(MissingSplitError):
            dev_gen = split_tokens(cfg, "dev", t.dev_limit, "generate")
    test = split_tokens(cfg, cfg.eval.split, cfg.eval.limit, "generate")
    return _Data(train, dev_loss, dev_gen, test)


def plan_experiment(cfg, acc: Accelerator, gpus: int = 1, utilization: float = 0.4, suggest: bool = True) -> Plan:
    """The estimate for one experiment on `gpus` accelerators like `acc` (more than one: FSDP, the weights,
    gradients and optimizer state sharded, data parallel)."""

    method = METHODS.get(cfg.method.name)
    plan = Plan(cfg.resolved_name(), cfg.method.name, method.trains, gpus=gpus)
    try:
        data = _data(cfg, method)
    except MissingSplitError as e:
        plan.error = f"cannot count its tokens: {str(e).splitlines()[0]}"
        plan.fits = False
        return plan
    arch = architecture(cfg)
    r = regime(cfg, acc)
    plan.total_params, plan.trainable_params = arch.total_params, arch.trainable_params
    _fill(plan, cfg, acc, arch, r, data, gpus, utilization)
    if method.trains and cfg.training.pause_at is not None:  # stops at a search's rung: it predicts nothing
        plan.eval_flops = plan.eval_seconds = plan.eval_tokens = 0.0
    if acc.here and gpus == 1:  # this machine, as its finished runs found it
        plan.correct(calibration.corrections(acc, calibration.Kind.of(cfg), plan.parts()))
    generative = arch.decoder is not None
    _, tok = tokenizer_for(cfg.model.model_dump_json(), generative)
    if tok.startswith("proxy"):
        plan.notes.append(f"tokens counted with a {tok} tokenizer (the model's own is not available offline)")
    for s in (data.train, data.test):
        if s is not None and s.measured < s.n:
            plan.notes.append(f"{s.split}: {s.measured} of {s.n} examples measured, scaled")
    if suggest and not plan.fits and acc.device_type == "cuda":
        plan.suggestions = _suggestions(cfg, acc, plan, gpus, utilization)
    return plan


def _fill(plan: Plan, cfg, acc, arch, r, data: _Data, gpus: int, utilization: float) -> None:
    t = cfg.training
    encoder_decoder = arch.encoder is not None and arch.decoder is not None
    weights = E.weight_bytes(arch, r)
    state = E.training_state_bytes(arch, r)
    plan.weights_bytes, plan.state_bytes = weights, state
    peak_flops = acc.peak_flops(r.compute_bytes == 2) * gpus
    speed = utilization * (QLORA_SPEED if r.quantized else 1.0)

    act = 0.0
    if data.train is not None:
        tr = data.train
        cap = lambda x: min(x, t.max_length)
        if encoder_decoder:
            length, target = cap(tr.max_input()), tr.max_target()
        else:
            length, target = cap(tr.max_input() + tr.max_target()) + arch.virtual_tokens, tr.max_target()
        act = E.activation_bytes(arch, r, t.batch_size, length, target) + E.logits_bytes(
            arch, r, t.batch_size, length, target
        )
        steps, _, eval_every = t.schedule(tr.n)
        examples = steps * t.batch_size * t.grad_accum * gpus if t.max_steps > 0 else tr.n * t.epochs
        per_example = [_train_flops(arch, r, i, a) for i, a in zip(tr.inputs, tr.targets)]
        per_token = [i + a for i, a in zip(tr.inputs, tr.targets)]
        plan.train_flops = sum(per_example) / tr.measured * examples
        plan.train_tokens = sum(per_token) / tr.measured * examples
        plan.train_seconds = plan.train_flops / (peak_flops * speed)
        evals = E.ceil_div(steps, eval_every)
        # dev loss: one forward per dev example and evaluation
        dl = data.dev_loss
        fwd = sum(_train_flops(arch, r, i, a, forward_only=True) for i, a in zip(dl.inputs, dl.targets))
        plan.dev_flops = fwd / dl.measured * dl.n * evals
        plan.dev_seconds = plan.dev_flops / (peak_flops * speed)
        plan.dev_tokens = (sum(dl.inputs) + sum(dl.targets)) * dl.scale * evals
        if data.dev_generate is not None and arch.decoder is not None:
            flops, secs, tokens = _generation_cost(
                arch, r, acc, weights, data.dev_generate, cfg.runtime.eval_batch_size, utilization, gpus
            )
            plan.dev_flops += flops * evals
            plan.dev_seconds += secs * evals
            plan.dev_tokens += tokens * evals
    elif data.dev_generate is not None:  # in-context: dev predicted once
        plan.dev_flops, plan.dev_seconds, plan.dev_tokens = _generation_cost(
            arch, r, acc, weights, data.dev_generate, cfg.runtime.eval_batch_size, utilization, gpus
        )
    test = data.test
    flops, secs, tokens = _generation_cost(arch, r, acc, weights, test, cfg.runtime.eval_batch_size, utilization, gpus)
    plan.eval_flops, plan.eval_seconds, plan.eval_tokens = flops, secs, tokens
    batch = min(cfg.runtime.eval_batch_size, test.n)
    if arch.decoder is not None:
        gen = E.kv_cache_bytes(arch, r, batch, test.max_input(), test.max_target()) + E.prefill_bytes(
            arch, r, batch, test.max_input()
        )
    else:
        gen = E.prefill_bytes(arch, r, batch, test.max_input())
    plan.activation_bytes, plan.generation_bytes = act, gen
    # while evaluating, the optimizer state is still held (gradients are freed after each step)
    static = weights + state
    sharded = static / gpus + (2 * _largest_layer(arch) * r.compute_bytes if gpus > 1 else 0.0)
    eval_static = (weights + E.optimizer_bytes(arch, r)) / gpus + (sharded - static / gpus)
    plan.peak_bytes = max(sharded + act, eval_static + gen)
    plan.fits = plan.peak_bytes <= acc.usable_bytes


def _largest_layer(arch: Architecture) -> float:
    """Parameters of the largest layer (FSDP gathers one at a time, and prefetches the next)."""
    return max((s.layer_params for s in arch.stacks), default=0) + arch.head_params


def _train_flops(arch, r, inputs: int, answer: int, forward_only: bool = False) -> float:
    """One training example's FLOPs (forward and backward), or its forward alone (the dev loss), with the
    attention the training runs with (eager on a CPU computes the masked half too)."""
    encoder_decoder = arch.encoder is not None and arch.decoder is not None
    if encoder_decoder:
        fwd = E.forward_flops(arch, inputs, answer, answer, r.eager_attention, training=not forward_only)
    else:
        n = inputs + answer
        head = (
            answer
            if r.logits_at_answers and not arch.virtual_tokens
            else n + (arch.virtual_tokens if arch.virtual_kind == "input" else 0)
        )
        if arch.decoder is None:
            head = n if arch.token_head else 1
        fwd = E.forward_flops(arch, n, 0, head, r.eager_attention, training=not forward_only)
    if forward_only:
        return fwd
    # adapters' own weight gradients (a frozen base computes none of its own)
    tokens = inputs + answer + (arch.virtual_tokens if arch.virtual_kind == "input" else 0)
    source = inputs if encoder_decoder else 0
    adapters = 2 * ((tokens - source) * arch.adapter_per_token_params + source * arch.adapter_source_params)
    return fwd * E.training_multiplier(r) + (0 if r.trains_base else adapters)


def _generation_cost(arch, r, acc, weights, split: SplitTokens, batch_size, utilization, gpus):
    """(FLOPs, seconds, tokens) of predicting `split`: examples batched as generation batches them (biotune.inference:
    longest prompts together, each batch's prompts padded to its longest), prefill compute-bound, each decoding step
    bound by compute or by reading the weights and the KV cache. A measured sample stands for the whole split as
    its length quantiles (each measured example repeated for the examples it stands for), so that a batch of the
    sample pads as a batch of the split would."""
    peak = acc.peak_flops(r.compute_bytes == 2) * utilization
    sample = length_order(split.inputs)
    m = split.measured
    n = max(split.n, m)
    order = [sample[j * m // n] for j in range(n)] if m else []
    if not arch.generation_cached:
        batch_size = 1  # biotune decodes these one prompt at a time, by full forward passes
    new = {i: split.targets[i] if arch.decoder is not None else 0 for i in set(order)}
    # each row's decoding steps after the prefill, over its own prompt's cache
    decoding = {
        i: E.generation_flops(arch, split.inputs[i], a) - E.generation_flops(arch, split.inputs[i], min(1, a))
        for i, a in new.items()
    }

    def batch(rows: tuple[int, ...]) -> tuple[float, float]:  # (FLOPs, seconds)
        width = max(split.inputs[i] for i in rows)  # each prompt left-padded to the batch's longest
        news = [new[i] for i in rows]
        prefill = sum(E.generation_flops(arch, width, min(1, a)) for a in news)
        decode = sum(decoding[i] for i in rows)
        steps = max(news) - 1 if arch.decoder is not None and arch.generation_cached else 0
        seconds = prefill / peak
        if steps > 0:
            read = steps * E.decode_step_bytes(arch, r, weights, len(rows), width + max(news))
            bandwidth = acc.read_bytes_per_s(len(rows))
            seconds += max(decode / peak, read / bandwidth if bandwidth else 0.0)
        return prefill + decode, seconds

    # the expanded split repeats each measured example, so most of its batches are alike: each kind costed once
    costs: dict[tuple[int, ...], tuple[float, float]] = {}
    flops = seconds = 0.0
    for start in range(0, len(order), batch_size):
        rows = tuple(order[start : start + batch_size])
        if rows not in costs:
            costs[rows] = batch(rows)
        flops += costs[rows][0]
        seconds += costs[rows][1]
    tokens = sum(split.inputs) + sum(split.targets)
    return flops, seconds / gpus, tokens * split.scale


def _suggestions(cfg, acc: Accelerator, plan: Plan, gpus: int, utilization: float) -> list[str]:
    """What would make a cell fit, least intrusive first: the same experiment with checkpointing or a smaller
    micro-batch (same effective batch), then on more GPUs (FSDP), then another method (QLoRA)."""
    out = []
    t = cfg.training

    def fits(changes: dict, n: int = gpus, method=None) -> Plan | None:
        c = cfg.model_copy(deep=True)
        for k, v in changes.items():
            setattr(c.training, k, v)
        if method is not None:
            c.method = method
        p = plan_experiment(c, acc, n, utilization, suggest=False)
        return p if p.fits and p.error is None else None

    ckpt = t.gradient_checkpointing  # checkpointing, once it is needed, stays in the later suggestions
    if plan.trains:
        if not ckpt and fits({"gradient_checkpointing": True}):
            out.append("gradient checkpointing (training.gradient_checkpointing: true)")
            ckpt = True
        b = t.batch_size
        while b > 1:
            b //= 2
            accum = t.grad_accum * (t.batch_size // b)
            if fits({"batch_size": b, "grad_accum": accum, "gradient_checkpointing": ckpt}):
                out.append(f"micro-batch {b} x {accum} accumulation" + (" with checkpointing" if ckpt else ""))
                break
    for n in FSDP_CHOICES:
        if n > gpus and fits({}, n=n):
            out.append(f"FSDP over {n} GPUs")
            break

    method = METHODS.get(cfg.method.name)
    if plan.trains and not method.quantized and FAMILIES.get(cfg.model.family).generative:
        keep = {
            k: v for k, v in cfg.method.params.items() if k in ("r", "alpha", "dropout", "target_modules", "use_rslora")
        }  # LoRA's own settings
        qlora = MethodConfig(name="qlora", params=keep)
        if fits({"gradient_checkpointing": ckpt}, method=qlora):
            out.append("QLoRA" + (" with checkpointing" if ckpt else ""))
    if not out:
        out.append("none of: checkpointing, a smaller micro-batch, FSDP up to 16 GPUs, QLoRA")
    return out


def plan_cells(
    cells,
    groups,
    acc: Accelerator,
    gpus: int = 1,
    utilization: float = 0.4,
    progress=lambda items: items,
    search=None,
) -> list[tuple[str, object, Plan]]:
    """(label, cell, plan) for a study's cells; a search's final cells (its best candidate, decided on dev later,
    anew on every reported seed) are planned as its first candidate on those seeds. An adaptive search's candidate
    (`search`: the study's search block) is expected to run the share of its budget halving gives it on average,
    and predicts nothing (it stops at its rung, the last one included: study/halving.py)."""
    todo = [(c.label, c) for c in cells]
    for g in groups:
        first = g.candidates[0]
        todo += [(f"{c.cell_id} [best of the search]", c) for c in (g.make(first.search.values, 0, s) for s in g.seeds)]
    halving = {g.key: len(g.candidates) for g in groups if g.strategy == "halving"}
    out = []
    for label, c in progress(todo):
        candidate = c.search is not None and not c.search.final and c.search.group in halving and search is not None
        plan = plan_experiment((rung_cell(c, 1.0) if candidate else c).experiment, acc, gpus, utilization)
        if candidate:
            plan.share = expected_share(search.rungs, search.keep, halving[c.search.group])
        out.append((label, c, plan))
    return out


def expected_share(rungs: list[float], keep: float, n: int) -> float:
    """The average part of its budget each of `n` candidates trains under successive halving: all of them to the
    first rung, those it keeps on to each next one (study.search.rung_sizes)."""
    return sum(k * step for k, step in zip(rung_sizes(n, rungs, keep), rung_steps(rungs))) / n
