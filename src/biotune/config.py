"""Typed experiment configs, loaded from YAML with errors that name the file, line and field.

    dataset: gad
    model: {family: causal, path: smollm2-135m}
    method: {name: lora, params: {r: 8}}
    training: {max_steps: 50, batch_size: 8}

`load_experiment(path)` validates everything (including that the method fits the model family and the head
fits the task) before anything is written.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .data import DATASETS, get_spec
from .data.catalog import is_dataset_file
from .errors import BiotuneError
from .fields import ConfigFieldError, field_error, known_name
from .methods import METHODS
from .models import FAMILIES
from .models.heads import HEADS
from .paths import check_name
from .tasks import output_format_for
from .yamlfile import load_text, read_yaml_file

Split = Literal["train", "dev", "test"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ModelConfig(_Strict):
    family: str  # causal, seq2seq, glm, encoder
    path: str = "smollm2-135m"  # alias, local folder or hub id
    random_init: dict[str, Any] | None = None  # build the family's config class with these fields, untrained
    tokenizer: str | None = None  # tokenizer source if not `path`
    revision: str | None = None  # hub models: branch, tag or commit (default: main); part of a result's identity
    trust_remote_code: bool = False  # only for checkpoints whose code lives on the hub (old ChatGLM)
    head: str | None = None  # encoder heads: token_classification, sequence_classification, multi_label, regression
    dtype: str = "auto"  # weights/compute dtype: auto, float32, bfloat16, float16
    # attention kernel: auto = eager while training on CPU (its backward is faster there than SDPA's, measured in
    # benchmarks/), SDPA for prediction and on GPUs; or eager, sdpa, flash_attention_2 (GPU, if installed)
    attn_implementation: str = "auto"
    # encoders' sequence-level heads read BERT's pooler (dense + tanh over the first token). auto: the checkpoint's,
    # except where it was never trained for that (a sentence-transformers checkpoint pooled by mean: its pooler
    # maps every document to nearly the same vector), where it starts as the identity (biotune.models.encoder)
    pooler: Literal["auto", "checkpoint", "identity"] = "auto"
    # the bias of a task head the checkpoint lacks (an encoder's classifier): prior = what the training labels say
    # before any input is read (log-odds of each label, log-frequency of each class or tag, the mean score), so an
    # untrained head answers the best constant instead of an arbitrary one; zero = transformers' initialisation.
    # auto: prior for encoders
    head_bias: Literal["auto", "prior", "zero"] = "auto"

    @field_validator("family")
    @classmethod
    def _family(cls, v: str) -> str:

        return known_name(FAMILIES, v)


class MethodConfig(_Strict):
    # the method's name (biotune.methods)
    name: str
    # the method's own parameters (e.g. lora: r, alpha, dropout, target_modules; few_shot: shots, selection); every
    # default written out in the run's config.yaml
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _method(cls, v: str) -> str:

        return known_name(METHODS, v)


class TrainingConfig(_Strict):
    # passes over the training examples
    epochs: float = Field(3.0, gt=0)
    max_steps: int = -1  # > 0 overrides epochs
    learning_rate: float | None = Field(None, gt=0)  # default: the method's published default
    # examples per optimizer step and process (times grad_accum)
    batch_size: int = Field(8, ge=1)
    # batches accumulated into one optimizer step
    grad_accum: int = Field(1, ge=1)
    # optimizer steps of linear learning-rate warm-up
    warmup_steps: int = Field(0, ge=0)
    # AdamW's decoupled weight decay
    weight_decay: float = Field(0.0, ge=0)
    # the learning rate of a task head the checkpoint does not have (an encoder's classifier, and its pooler where
    # it starts as the identity), as a multiple of learning_rate. None: resolved, 10 for full fine-tuning of an
    # encoder's classification head (it then trains at 2e-4, as every PEFT method trains it; heads.Head.fft_lr_scale),
    # 1 elsewhere (a score head too)
    head_lr_scale: float | None = Field(None, gt=0)
    # transformers' scheduler name: linear, cosine, constant, constant_with_warmup, ...
    lr_scheduler: str = "linear"
    bf16: bool | Literal["auto"] = "auto"  # auto: where the hardware supports it
    # recompute activations in the backward pass: less memory, more time
    gradient_checkpointing: bool = False
    eval_steps: int | None = Field(None, ge=1)  # None: once per epoch (or every save when max_steps is set)
    # checkpoint interval (default: the dev evaluations'); a multiple of eval_steps
    save_steps: int | None = Field(None, ge=1)
    # checkpoints kept on disk while training (the best one always among them)
    save_total_limit: int = Field(2, ge=1)
    # steps between training-loss records (the report's learning curves)
    logging_steps: int = Field(10, ge=1)
    # batches of similar lengths (less padding); off = plain random order
    group_by_length: bool = True
    max_length: int = Field(512, ge=16)  # tokens per training example (prompt + answer)
    train_split: Split = "train"  # another split here makes the result not comparable to BLURB
    # training examples used, spread evenly over the split (default: all)
    train_limit: int | None = Field(None, ge=1)
    dev_limit: int | None = Field(None, ge=1)  # dev examples (spread over the split) for dev loss and dev score
    # the checkpoint kept: the best dev score by the dataset's own metric (generative models: greedy generation on
    # the dev examples, parsed and scored as test is), or the lowest dev loss
    select_by: Literal["metric", "loss"] = "metric"
    # stop after this many dev evaluations in a row without a better dev score (dev loss with select_by: loss)
    early_stopping_patience: int | None = Field(None, ge=1)
    # experiment tracking through the Trainer's integrations (biotune.tracking): mlflow, tensorboard, wandb; each
    # needs its package. Not part of a result's identity
    report_to: list[Literal["mlflow", "tensorboard", "wandb"]] = Field(default_factory=list)
    # stop at the first dev evaluation at or after this fraction of the training steps, its checkpoint kept, and
    # write `paused.json` instead of a result: a rung of a study's adaptive search (study/halving.py; 1: train to the
    # end and predict nothing, the search's last rung, whose candidates are never results). The same
    # run invoked again with a later `pause_at` (or none) resumes from there, the learning-rate schedule set for
    # the whole budget from the start. How far one invocation goes, not what the result is: not in the identity
    pause_at: float | None = Field(None, gt=0, le=1)

    def budget(self) -> str:
        """The training budget in words, what methods compared on equal terms share: '1 epoch over 1,000 training
        examples', '64 steps of 16 examples'."""
        if self.max_steps > 0:
            return f"{self.max_steps:,} steps of {self.batch_size * self.grad_accum} examples"
        over = f"{self.train_limit:,} training examples" if self.train_limit else "the training split"
        return f"{self.epochs:g} epoch{'s' * (self.epochs != 1)} over {over}"

    def schedule(self, n_train: int) -> tuple[int, int, int]:
        """(optimizer steps, save interval, dev-evaluation interval) of a run on `n_train` examples per process, as
        the Trainer is set up for it (biotune.train) and as the cost planner counts it (biotune.plan)."""
        per_epoch = math.ceil(n_train / (self.batch_size * self.grad_accum))
        total = self.max_steps if self.max_steps > 0 else math.ceil(per_epoch * self.epochs)
        every = self.save_steps or (max(1, total // 4) if self.max_steps > 0 else per_epoch)
        if self.eval_steps and not self.save_steps and every % self.eval_steps:
            every = self.eval_steps  # the kept checkpoint is chosen at dev evaluations: save at them (the Trainer
            #                          refuses a save interval that is not a multiple of the evaluation interval)
        return total, every, min(self.eval_steps or every, total)

    def pause_step(self, n_train: int) -> int | None:
        """The optimizer step `pause_at` stops at: the first dev evaluation at or after that fraction of the run,
        so a paused and resumed run evaluates (and keeps its best checkpoint) exactly where an uninterrupted one
        does. The last step where the fraction reaches it: the run trains to its end and pauses there, predicting
        nothing (a search's last rung; a short run whose first rung already ends it), and a later invocation
        without `pause_at` only predicts."""
        if self.pause_at is None:
            return None
        total, _, eval_every = self.schedule(n_train)
        return min(total, math.ceil(self.pause_at * total / eval_every) * eval_every)

    @model_validator(mode="after")
    def _saves_at_evaluations(self) -> TrainingConfig:
        if self.save_steps and self.eval_steps and self.save_steps % self.eval_steps:
            raise ConfigFieldError(
                "training.save_steps",
                f"{self.save_steps} is not a multiple of eval_steps "
                f"({self.eval_steps}): the kept checkpoint is chosen at dev evaluations, so "
                "save at (a multiple of) them",
            )
        return self


class EvalSettings(_Strict):
    """How the evaluated split is predicted and scored: the one settings model of evaluation (an experiment's
    `eval:`; `biotune eval`'s options are these fields and EvalConfig's, each described once)."""

    split: Split = Field("test", description="Split to evaluate: train, dev or test.")
    limit: int | None = Field(None, ge=1, description="Evaluate N examples per dataset, spread evenly over the split.")
    scoring: Literal["generate", "likelihood"] = Field(
        "generate", description="generate (free text, parsed) or likelihood (most likely option; label-choice tasks)."
    )
    shot_split: Split = Field("train", description="Split the shots are drawn from.")
    fallback_split: Split | None = Field(
        None,
        description="Where the evaluated or shot split is missing (EBM PICO train here), use this split instead; such "
        "results are flagged as not comparable to BLURB.",
    )
    max_length: int | None = Field(
        None, ge=64, description="Prompt + answer token budget (default: the model's context)."
    )
    max_new_tokens: int | None = Field(
        None,
        ge=1,
        description="Cap on a generated answer's tokens (default: the task's own budget, e.g. 96 for an NER mention "
        "list): a cap for cost.",
    )


class RuntimeConfig(_Strict):
    """Settings that change only how fast a result comes, never the result: outside a result's identity
    (biotune.identity), so switching one reruns nothing. Each is tested to leave predictions and scores identical
    (tests/test_identity.py; on the real SmolLM2 in both precisions: tests/test_identity_real.py), except those
    that were found to move results there and are part of the identity away from their defaults: eval_batch_size,
    fused_lora, logits_at_answers and threads (biotune.identity)."""

    # decoder-only models: the LM head runs at the answer positions only (not over the whole prompt), the same
    # loss up to rounding; off = the library's full-sequence logits (kept to check the fast path against; part of
    # a result's identity: the rounding trains other weights)
    logits_at_answers: bool = True
    # LLaMA-style RMSNorm layers as one autograd node that keeps x in its dtype (biotune.kernels.rms_norm; CPU):
    # the same outputs with fewer passes over memory; off = the library's forward
    fast_norms: bool = True
    # on CPU a frozen linear layer and its LoRA adapter train as one autograd node (biotune.kernels.lora_linear):
    # the adapter's output is accumulated inside the matmul; off = peft's forward, which rounds the sum otherwise
    # in bf16 (a real SmolLM2's answers moved): off is part of a result's identity (biotune.identity)
    fused_lora: bool = True
    # decoder-only training: a batch's examples packed into one row without padding, each with its own position
    # ids (transformers' DataCollatorWithFlattening), so attention never crosses examples: the same loss as padded
    # batches. auto: where the attention kernel takes packed rows natively (FlashAttention-2's variable-length
    # kernel); on by choice with SDPA / eager too (a block-diagonal mask: correct, not faster)
    packing: Literal["auto"] | bool = "auto"
    # test-split prediction. The exception here: padded batched generation in bf16 is not batch-invariant, so a
    # value other than the default is part of the result's identity (biotune.identity)
    eval_batch_size: int = Field(8, ge=1)
    # in-context cells of decoder-only models on a GPU: greedy answers generated by vLLM (optional extra) from the
    # same token ids, budget and stop tokens, decoded by the same tokenizer (biotune.vllm_generation); equal to
    # transformers' on the set tests/test_cuda.py checks. hf: transformers' generate (trained cells always)
    generation: Literal["hf", "vllm"] = "hf"
    # torch intra-op threads (default: torch's choice, the cores). A matmul's sums are split by thread: where set,
    # part of a result's identity (biotune.identity); the default is not keyed (it varies with the machine)
    threads: int | None = Field(None, ge=1)


# earlier spellings of the runtime settings, still read: (block, key) -> runtime field
_RUNTIME_ALIASES = {
    ("training", "logits_at_answers"): "logits_at_answers",
    ("training", "fast_norms"): "fast_norms",
    ("eval", "batch_size"): "eval_batch_size",
}


class ExperimentConfig(_Strict):
    # the run's name, its folder under runs/ (letters, digits, . _ + -); default: <dataset>-<model>-<method>-s<seed>
    name: str | None = None
    # a BLURB dataset's name (biotune data list) or a dataset file (my.yaml, README "Your own dataset")
    dataset: str
    # the model and how it is loaded (below)
    model: ModelConfig
    # the adaptation method (zero_shot, few_shot, fft, lora, qlora, ...: the 16 of biotune.methods) and its params
    method: MethodConfig
    # seeds the training order, initialisation and shot selection
    seed: int = 0
    # how a method that trains does it (below; ignored by in-context methods)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    # how the evaluated split is predicted and scored (below)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    # settings that change only speed (below)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    # NER / PICO: how a generative model writes mentions (biotune.tasks.mentions): list or inline; auto: the task
    # type's default (resolved when the file is read; other task types: none)
    output_format: Literal["auto", "list", "inline"] | None = "auto"
    # the folder with the BLURB files (default: $BIOTUNE_DATA, else ../shared/data/blurb)
    data_dir: str | None = None
    output_dir: str | None = None  # default: runs/<name>
    # auto (a GPU where there is one, else the CPU), cpu, cuda, cuda:N
    device: str = "auto"
    # what a finished run keeps beside its predictions, metrics and config (checkpoints are always deleted once
    # the result is written): adapter (adapter methods: the trained adapter, and an encoder's head), model
    # (full fine-tuning: the whole trained model), none; auto: the adapter for adapter methods, the model for full
    # fine-tuning (in a study: none), nothing for in-context methods. Not part of a result's identity.
    keep: Literal["auto", "adapter", "model", "none"] = "auto"
    # labels a tracker shows beside the run (a study sets study and cell); not part of a result's identity
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _runtime_spellings(cls, data):
        """`training.fast_norms`, `training.logits_at_answers`, `eval.batch_size` and LoRA's `method.params.fused`
        were read there before the runtime block existed: moved into `runtime`."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        runtime = dict(data.get("runtime") or {})
        for (block, key), field in _RUNTIME_ALIASES.items():
            if isinstance(data.get(block), dict) and key in data[block]:
                section = dict(data[block])
                runtime.setdefault(field, section.pop(key))
                data[block] = section
        method = data.get("method")
        if isinstance(method, dict) and isinstance(method.get("params"), dict) and "fused" in method["params"]:
            params = dict(method["params"])
            runtime.setdefault("fused_lora", params.pop("fused"))
            data["method"] = {**method, "params": params}
        if runtime:
            data["runtime"] = runtime
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:

        return v if v is None else check_name(v, "run name")

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:

        try:
            get_spec(v)  # a built-in name, or a dataset file (read and checked here)
        except BiotuneError as e:
            raise ValueError(str(e)) from None
        return str(Path(v).resolve()) if is_dataset_file(v) else v

    @model_validator(mode="after")
    def _fits(self) -> ExperimentConfig:

        family = FAMILIES.get(self.model.family)
        method = METHODS.get(self.method.name)
        spec = get_spec(self.dataset)
        task = spec.task
        requested = self.output_format or "auto"
        self.output_format = output_format_for(spec, requested) if family.generative else None
        if requested != "auto" and self.output_format is None:
            raise ConfigFieldError(
                "output_format",
                f"{requested!r}: only generative models on NER / PICO datasets write mentions; leave output_format out",
            )
        family.check_head(self.model.head, task)  # raises ConfigFieldError("model.head", ...)
        head = family.resolve_head(self.model, spec)
        if self.model.head is None and head != family.head_for(task):  # chosen for this checkpoint: recorded
            self.model.head = head if method.fits(family, head) else family.head_for(task)
            head = self.model.head
        if self.model.pooler == "auto":
            self.model.pooler = family.pooler_for(self.model, head)
        if self.model.head_bias == "auto":
            self.model.head_bias = "zero" if family.generative else "prior"
        if not method.fits(family, head):
            valid = [n for n, m in METHODS.items() if m.fits(family, head)]
            on = f"the {family.name} family" + (f" with a {head} head" if not family.generative else "")
            raise ConfigFieldError(
                "method.name", f"method {method.name!r} does not fit {on}; valid: {', '.join(valid)}"
            )
        try:
            params = method.params_model(**self.method.params)  # the method's own fields
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(["method", "params", *(str(x) for x in err["loc"])])
            raise ConfigFieldError(field, err["msg"]) from None
        # resolved: every default of the method written out (what config.yaml records and a result's identity
        # hashes, so a default changed in code changes the identity), the learning rate the method's default
        self.method.params = params.model_dump(mode="json")
        if method.trains and self.training.learning_rate is None:
            self.training.learning_rate = method.default_lr
        if self.training.head_lr_scale is None:
            self.training.head_lr_scale = (
                HEADS.get(head).fft_lr_scale if method.trains_base and not family.generative else 1.0
            )
        self.keep = _keep(self.keep, method)
        return self

    def resolved_name(self) -> str:

        dataset = get_spec(self.dataset).name
        return self.name or f"{dataset}-{self.model.path.split('/')[-1]}-{self.method.name}-s{self.seed}"


def _keep(keep: str, method) -> str:
    """`keep` resolved for this method: what it trains (adapter or model), or none."""
    trained = ("model" if method.trains_base else "adapter") if method.trains else None
    if keep == "auto":
        return trained or "none"
    if keep != "none" and keep != trained:
        what = (
            f"{method.name} trains {'the whole model' if trained == 'model' else 'an adapter'}: keep {trained} or none"
            if trained
            else f"{method.name} trains nothing: keep none (or leave it out)"
        )
        raise ConfigFieldError("keep", f"{keep!r}: {what}")
    return keep


def load_experiment(path: str | Path, overrides: dict | None = None) -> ExperimentConfig:
    path = Path(path)
    data, root = read_yaml_file(path, "experiment", "dataset, model, method")
    if "dataset" in data:
        data["dataset"] = dataset_ref(data["dataset"], path.parent)
    for key, value in (overrides or {}).items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise BiotuneError(f"--set {key}: {part} is not a mapping in {path}")
        node[leaf] = value
    return validate_experiment(data, str(path), root)


def dataset_ref(value, base: Path):
    """A dataset as a config names it: a built-in name as it is, a dataset file relative to `base` (the folder of
    the file that names it) made absolute."""

    if isinstance(value, str) and is_dataset_file(value) and not Path(value).is_absolute():
        return str((base / value).resolve())
    return value


def parse_overrides(items: list[str]) -> dict:
    """['training.max_steps=20', 'dataset=hoc'] -> {'training.max_steps': 20, 'dataset': 'hoc'} (YAML values)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BiotuneError(f"--set {item!r}: expected FIELD=VALUE, e.g. --set training.max_steps=20")
        out[key.strip()] = load_text(value, f"--set {key.strip()}")[0]
    return out


def validate_experiment(data: dict, source: str = "<config>", root=None) -> ExperimentConfig:
    try:
        return ExperimentConfig(**data)
    except ValidationError as e:
        raise field_error(e, source, root) from None
    except BiotuneError as e:  # unknown names raised by the registries inside validators
        raise BiotuneError(f"{source}: {e}") from None


class EvalConfig(EvalSettings):
    """What `biotune eval` is asked for (also what its `metrics.json` records under "settings"): a model and
    datasets, turned into one experiment per dataset (`experiment`), with the evaluation settings of an experiment's
    `eval:` (EvalSettings). The command's options are built from these fields (biotune.cli)."""

    model: str = Field("smollm2-135m", description="Alias (smollm2-135m), local folder or hub id.")
    family: str = Field(
        "auto", description="causal, seq2seq (T5 / FLAN-T5 / UL2) or glm; auto: from the model's config."
    )
    datasets: list[str] = Field(
        default_factory=lambda: ["all"],
        description="Comma-separated dataset names or dataset files (my.yaml), or 'all'.",
    )
    shots: int = Field(0, ge=0, description="Number of in-context examples (0 = zero-shot).")
    selection: Literal["random", "knn"] = Field(
        "random", description="Shot selection: random or knn (nearest by MiniLM embedding)."
    )
    seed: int = Field(0, description="Seed for shot selection.")
    batch_size: int = Field(8, ge=1, description="Batch size.")
    output_format: Literal["auto", "list", "inline"] = Field(
        "auto",
        description="NER / PICO: how mentions are written: list ('a; b'), inline (the sentence with <e>a</e> marked) "
        "or auto.",
    )
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N.")
    dtype: str = Field("auto", description="auto, float32, bfloat16, float16.")
    data_dir: str | None = Field(
        None, description="Folder with the BLURB files (default: $BIOTUNE_DATA or ../shared/data/blurb)."
    )
    output_dir: str = Field("runs/eval", description="Where predictions and metrics go.")
    progress: bool = Field(True, description="Show progress bars.")
    force: bool = Field(False, description="Replace results of another evaluation in the output folder.")

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

    def experiment(self, dataset: str, family: str) -> ExperimentConfig:
        """The experiment that evaluates `dataset`: what `biotune run` of the same file would run."""

        method = (
            {"name": "few_shot", "params": {"shots": self.shots, "selection": self.selection}}
            if self.shots
            else {"name": "zero_shot"}
        )
        return validate_experiment(
            {
                "dataset": dataset,
                "model": {"path": self.model, "family": family, "dtype": self.dtype},
                "method": method,
                "seed": self.seed,
                "eval": {name: getattr(self, name) for name in EvalSettings.model_fields},
                "runtime": {"eval_batch_size": self.batch_size},
                "output_format": self.output_format,
                "data_dir": self.data_dir,
                "device": self.device,
                "output_dir": str(Path(self.output_dir) / get_spec(dataset).name),
            },
            source="biotune eval",
        )
