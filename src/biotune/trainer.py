"""The Hugging Face Trainer a run trains with, built from explicit inputs (`TrainerInputs`): the collator for the
family (padded, packed, or with the LM head at the answer positions only), the arguments from the training
settings, the method's callbacks and optimizer, and a Trainer that counts the tokens it computes on, scores dev
by the dataset's metric (what the kept checkpoint is chosen by) and stops early. `biotune.train.Experiment` says
what to train; this module says how the Trainer is put together."""

from __future__ import annotations

import inspect
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import (
    DataCollatorForSeq2Seq,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from . import progress
from .errors import BiotuneError
from .io import atomic_write_json
from .models.heads import IGNORE
from .runtime import is_main_process, world_size

TIME_FILE = "biotune_time.json"  # in a checkpoint: training and dev-evaluation seconds up to it
# beside the checkpoints: how far training got (step, seconds), written every few seconds; after a kill, what it
# did past its last checkpoint is work lost (redone after the resume; train.lost_work)
PROGRESS_FILE = "biotune_progress.json"
PROGRESS_EVERY_S = 10.0


@dataclass
class TrainerInputs:
    """Everything the Trainer of one run is built from."""

    model: Any  # with the method applied
    tokenizer: Any
    family: Any  # biotune.models.ModelFamily
    head: str  # biotune.models.heads
    method: Any  # biotune.methods.Method
    params: Any  # the method's typed parameters
    training: Any  # biotune.config.TrainingConfig
    train_features: list[dict]
    dev_features: list[dict]
    output_dir: Path  # checkpoints go to output_dir / "checkpoints"
    seed: int
    run_name: str
    device: torch.device
    bf16: bool  # bf16 autocast (mixed precision)
    attention: str | None = None  # the attention kernel (eager, sdpa, flash_attention_2)
    packing: bool | str = "auto"  # runtime.packing
    logits_at_answers: bool = True  # runtime.logits_at_answers
    progress: bool = True
    dev_scorer: Callable[[], dict] | None = None  # the dev split predicted and scored: {"score": ..., "n": ...}
    callbacks: list = field(default_factory=list)  # more Trainer callbacks (a tracker's)
    head_modules: tuple[str, ...] = ()  # modules of a head the checkpoint lacks (training.head_lr_scale applies)


def build_trainer(run: TrainerInputs) -> CountingTrainer:
    """The Trainer of a run: its collator and loss (collator_for), arguments (training_arguments), callbacks
    (time, a finite loss, the method's own), optimizer (the method's, or the head at its own rate) and dev scorer."""
    t, method = run.training, run.method
    collator, loss_func = collator_for(run)
    args = training_arguments(run)
    meter = TimeMeter()
    callbacks = [meter, FiniteLoss(), *method.callbacks(run.model, run.params), *run.callbacks]
    if not run.progress and is_main_process():
        callbacks.append(PlainProgress())  # no bar: a line a minute, so a log shows the run is alive
    optimizer = method.optimizer(run.model, run.params, args.learning_rate, args.weight_decay)
    scale = t.head_lr_scale or 1.0
    if optimizer is None and scale != 1 and run.head_modules:
        optimizer = head_scaled_optimizer(run.model, run.head_modules, args, scale)
    trainer = CountingTrainer(
        model=run.model,
        args=args,
        train_dataset=list(run.train_features),
        eval_dataset=list(run.dev_features),
        data_collator=collator,
        processing_class=run.tokenizer,
        callbacks=callbacks,
        compute_loss_func=loss_func,
        optimizers=(optimizer, None),  # None: the Trainer's own (AdamW; the schedule from the arguments)
        meter=meter,
        dev_scorer=run.dev_scorer if t.select_by == "metric" else None,
        patience=t.early_stopping_patience,
    )
    _say_unapplied_parallelism(trainer, run.device)
    return trainer


def collator_for(run: TrainerInputs) -> tuple[Callable, Callable | None]:
    """The batch collator of the run's family (decoder batches padded or packed, encoder batches with the head's
    labels) and the loss computed from it where it is biotune's (the answer positions' logits only), else None."""
    if not run.family.generative:
        from .models.heads import HEADS

        return _EncoderCollator(run.tokenizer, HEADS.get(run.head)), None
    if packs(run.packing, run.attention, run.model, run.method):
        from transformers import DataCollatorWithFlattening

        # every example's first label is -100 already (the prompt is never a target), so the separator the
        # collator writes there changes nothing; FlashAttention-2 reads the boundaries as cu_seq_lens
        collator = DataCollatorWithFlattening(return_flash_attn_kwargs=run.attention == "flash_attention_2")
    else:
        collator = DataCollatorForSeq2Seq(run.tokenizer, padding="longest", label_pad_token_id=IGNORE)
    if run.logits_at_answers and answer_logits_supported(run.model, run.method):
        return _AnswerPositions(collator), answer_loss
    return collator, None


def training_arguments(run: TrainerInputs) -> TrainingArguments:
    """The Trainer's arguments for the run: its schedule, dev evaluations and checkpoints, the kept checkpoint's
    rule, precision and device."""
    t, method = run.training, run.method
    total_steps, every, eval_every = t.schedule(len(run.train_features))
    # one dev evaluation, at the last step: the best checkpoint is the final model, and a checkpoint there would
    # save nothing to resume from, so none is written (for full fine-tuning that is weights + optimizer state)
    single_eval = eval_every >= total_steps and every >= total_steps
    return TrainingArguments(
        output_dir=str(run.output_dir / "checkpoints"),
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum,
        learning_rate=t.learning_rate or method.default_lr,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        warmup_steps=t.warmup_steps,
        weight_decay=t.weight_decay,
        lr_scheduler_type=t.lr_scheduler,
        logging_steps=t.logging_steps,
        eval_strategy="steps",
        eval_steps=eval_every,
        save_strategy="no" if single_eval else "steps",
        save_steps=every,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=not single_eval and not method.keeps_final,
        metric_for_best_model="eval_score" if t.select_by == "metric" else "eval_loss",
        greater_is_better=t.select_by == "metric",
        prediction_loss_only=True,  # dev selection needs the loss only: never gather full-vocabulary logits
        bf16=run.bf16,
        use_cpu=run.device.type == "cpu",
        activation_checkpointing=t.gradient_checkpointing,
        seed=run.seed,
        data_seed=run.seed,
        report_to=list(t.report_to),  # the Trainer's own integrations (biotune.tracking); none by default
        run_name=run.run_name,
        disable_tqdm=not run.progress,
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        # several processes on CPU (accelerate launch --cpu): gloo; on GPUs the default (nccl)
        ddp_backend="gloo" if run.device.type == "cpu" and world_size() > 1 else None,
    )


class PlainProgress(TrainerCallback):
    """Training without a progress bar: a plain line to stderr at most once a minute (step, rate, time left)."""

    def on_train_begin(self, args, state, control, **kw):
        self.began = self.said = time.perf_counter()
        self.first = state.global_step  # a resumed run counts its rate from here

    def on_step_end(self, args, state, control, **kw):
        now = time.perf_counter()
        if now - self.said >= progress.PLAIN_EVERY_S and state.global_step < state.max_steps:
            self.said = now
            rate = (state.global_step - self.first) / (now - self.began)
            left = f", about {progress.duration((state.max_steps - state.global_step) / rate)} left" if rate else ""
            print(
                f"training: step {state.global_step:,}/{state.max_steps:,} "
                f"({100 * state.global_step / state.max_steps:.0f} %), {rate:.2f} steps/s{left}",
                file=sys.stderr,
                flush=True,
            )


class TimeMeter(TrainerCallback):
    """Dev-evaluation time in this process, and the training time so far written into each checkpoint
    (`TIME_FILE`), so a resumed run's cost includes the time spent before the stop (the tokens seen come back
    with the Trainer's own state)."""

    def __init__(self):
        self.eval_seconds = 0.0
        self.prior = {"train_seconds": 0.0, "dev_eval_seconds": 0.0}  # from the checkpoint resumed from
        self.began = 0.0
        self.written = 0.0  # when PROGRESS_FILE was last written

    def on_train_begin(self, args, state, control, **kw):

        self.began = time.perf_counter()

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        self.eval_seconds += (metrics or {}).get("eval_runtime", 0.0)

    def on_step_end(self, args, state, control, **kw):
        self._progress(args, state, every=PROGRESS_EVERY_S)

    def on_train_end(self, args, state, control, **kw):
        self._progress(args, state, every=0.0)  # a kill before the result loses what followed the checkpoint

    def _progress(self, args, state, every: float) -> None:

        now = time.perf_counter()
        if now - self.written < every or not is_main_process():
            return
        self.written = now
        atomic_write_json(
            Path(args.output_dir) / PROGRESS_FILE,
            {"step": state.global_step, "train_seconds": self.prior["train_seconds"] + now - self.began},
        )

    def on_save(self, args, state, control, **kw):

        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir() and is_main_process():
            atomic_write_json(
                folder / TIME_FILE,
                {
                    "train_seconds": self.prior["train_seconds"] + time.perf_counter() - self.began,
                    "dev_eval_seconds": self.prior["dev_eval_seconds"] + self.eval_seconds,
                },
            )


def _say_unapplied_parallelism(trainer, device) -> None:
    """A word where the accelerate config asked for a kind of parallelism the Trainer did not apply (an FSDP config
    launched on CPUs runs as plain data parallelism)."""
    asked = (
        "FSDP"
        if os.environ.get("ACCELERATE_USE_FSDP") == "true"
        else ("DEEPSPEED" if os.environ.get("ACCELERATE_USE_DEEPSPEED") == "true" else None)
    )
    if asked and trainer.accelerator.distributed_type.value != asked and is_main_process():
        print(
            f"{asked} was asked for (accelerate config) but is not applied on {device.type}: training runs as "
            f"{trainer.accelerator.distributed_type.value}",
            file=sys.stderr,
            flush=True,
        )


def head_scaled_optimizer(model, head_modules, args, scale: float):
    """The Trainer's own optimizer (AdamW with its betas and epsilon; no weight decay on biases and norms) with the
    parameters of the modules named in `head_modules` at `scale` times the learning rate: a head the checkpoint
    does not have starts from random weights, and at a full fine-tuning rate (2e-5) a few hundred steps leave it
    near the label prior (measured: MiniLM on a constructed 10-label task, 80 steps, micro F1 0.0 at 1x, 81.4 at
    20x with the prior-initialised bias)."""
    from transformers.trainer_pt_utils import get_parameter_names

    decay = set(get_parameter_names(model, [torch.nn.LayerNorm], ["bias", "layernorm", "rmsnorm"]))
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            head = any(part in head_modules for part in name.split("."))
            groups.setdefault((head, name in decay), []).append(p)
    if not any(head for head, _ in groups):
        raise ValueError(f"head_lr_scale: no parameter of {head_modules} trains in this model")
    return torch.optim.AdamW(
        [
            {
                "params": ps,
                "lr": args.learning_rate * (scale if head else 1.0),
                "weight_decay": args.weight_decay if decayed else 0.0,
            }
            for (head, decayed), ps in groups.items()
        ],
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
    )


class FiniteLoss(TrainerCallback):
    """Stops a run whose training or dev loss became NaN or infinite (a learning rate far too high, most often),
    with one line naming the step: nothing is predicted or written as a result from such weights."""

    def on_log(self, args, state, control, logs=None, **kw):

        for key in ("loss", "train_loss", "eval_loss"):
            value = (logs or {}).get(key)
            if isinstance(value, (int, float)) and not math.isfinite(value):
                raise BiotuneError(
                    f"{key.replace('_', ' ')} became {value} at step {state.global_step}: lower the "
                    f"learning rate (training.learning_rate, {args.learning_rate:g} here)"
                )
        return control


class PauseAt(TrainerCallback):
    """Stops training after optimizer step `step` (a dev evaluation step: `TrainingConfig.pause_step`), with a
    checkpoint saved there to resume from: a rung of a study's adaptive search."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.step:
            control.should_evaluate = True  # an evaluation step already (pause_step): nothing changes there
            control.should_save = True
            control.should_training_stop = True
        return control


def parallelism(trainer) -> str:
    """How the training processes share the work, as accelerate applied it: NO (one process), MULTI_CPU or
    MULTI_GPU (data parallel), FSDP, DEEPSPEED."""
    return trainer.accelerator.distributed_type.value


class CountingTrainer(Trainer):
    """HF Trainer whose training batches also count the tokens the model computes on, padding included, and whose
    dev evaluation also scores the dev examples by the dataset's own metric (`dev_scorer`: the same prediction
    and scoring as test) as `eval_score`, what the kept checkpoint is chosen by; with `patience`, training stops
    after that many evaluations in a row without a better value of the selection metric."""

    def __init__(self, *args, meter: TimeMeter, dev_scorer=None, patience: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.biotune_tokens = meter  # training and dev-evaluation time (and the resumed run's before it)
        self.dev_scorer = dev_scorer
        self.patience = patience
        self.greater_is_better = self.args.greater_is_better
        self.selection_key = self.args.metric_for_best_model
        self.padded_tokens = 0
        self.stopped_early_at: int | None = None

    def evaluate(self, *args, **kwargs):
        metrics = super().evaluate(*args, **kwargs)  # dev loss
        if self.dev_scorer is not None:
            import time as _time

            was_training = self.model.training
            self.model.eval()
            start = _time.perf_counter()
            try:
                result = self.dev_scorer()
            finally:
                self.model.train(was_training)
            metrics["eval_score"] = float(result["score"])
            self.biotune_tokens.eval_seconds += _time.perf_counter() - start
            self.log({"eval_score": metrics["eval_score"], "eval_score_n": result.get("n")})
        self._early_stop(metrics)
        return metrics

    def _early_stop(self, metrics: dict) -> None:
        """From the whole evaluation history (so a resumed run counts the evaluations before the kill too)."""
        if not self.patience or metrics.get(self.selection_key) is None:
            return
        # this evaluation is in the history already (its loss logged by Trainer.evaluate, its score above)
        values = [h[self.selection_key] for h in self.state.log_history if self.selection_key in h]
        best = max(range(len(values)), key=lambda i: (values[i] if self.greater_is_better else -values[i], -i))
        if len(values) - 1 - best >= self.patience:
            self.control.should_training_stop = True
            self.stopped_early_at = self.state.global_step

    def _track_num_input_tokens(self, inputs):
        # a packed batch (runtime.packing) has no padding and no attention mask, so every token counts; the
        # library would count the tokens unequal to the pad token, which is the end-of-text token here
        if "attention_mask" not in inputs and "position_ids" in inputs:
            inputs = {**inputs, "attention_mask": torch.ones_like(inputs["input_ids"])}
        return super()._track_num_input_tokens(inputs)

    def get_train_dataloader(self):
        plain = self.data_collator

        def counting(features):
            batch = plain(features)
            self.padded_tokens += int(batch["input_ids"].numel())
            return batch

        self.data_collator = counting
        try:
            return super().get_train_dataloader()
        finally:
            self.data_collator = plain


def packs(packing, attention: str | None, model, method) -> bool:
    """Whether training batches are packed (runtime.packing: auto, true or false): decoder-only models without
    virtual tokens in front of the input (peft's soft prompts pad their own attention mask); `auto` where the
    attention kernel is FlashAttention-2."""
    if packing == "auto":
        packing = attention == "flash_attention_2"
    return bool(packing) and not model.config.is_encoder_decoder and not method.virtual_tokens


def answer_logits_supported(model, method) -> bool:
    """Decoder-only models whose forward takes `logits_to_keep` (transformers' causal LMs), without virtual
    tokens in front of the input (which would shift the positions), trained by a method whose loss is the
    language-model loss alone."""

    if model.config.is_encoder_decoder or method.virtual_tokens or method.loss_in_forward:
        return False
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


class _AnswerPositions:
    """Adds `logits_to_keep` to a causal-LM batch: the positions whose next token is an answer token in any row
    of the batch, so the LM head (a 576 x 49152 matmul for SmolLM2) and the cross-entropy skip the prompt."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features):
        batch = self.collator(features)
        batch["logits_to_keep"] = _answer_positions(batch["labels"])
        return batch


def _answer_positions(labels: torch.Tensor) -> torch.Tensor:
    return (labels[:, 1:] != IGNORE).any(dim=0).nonzero().squeeze(1)


def answer_loss(outputs, labels, num_items_in_batch=None):
    """The causal-LM loss (next-token cross-entropy over the answer tokens) from logits kept at the answer
    positions only; equals the library's loss on full logits (tested). Summed, then divided by the answer
    tokens of the whole (accumulated, all-process) batch as transformers does, or of this batch."""
    targets = labels[:, 1:][:, _answer_positions(labels).to(labels.device)]
    logits = outputs.logits.float()
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
    if num_items_in_batch is None:
        num_items_in_batch = (targets != IGNORE).sum()
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(loss.device)
    return loss / num_items_in_batch


class _EncoderCollator:
    def __init__(self, tokenizer, head):
        self.tokenizer, self.head = tokenizer, head

    def __call__(self, features):
        labels = [f["labels"] for f in features]
        batch = self.head.pad(self.tokenizer, [{k: v for k, v in f.items() if k != "labels"} for f in features])
        batch["labels"] = self.head.batch_labels(labels, batch["input_ids"].shape[1])
        return batch
