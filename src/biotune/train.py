"""`biotune run experiment.yaml`: one experiment, start to end.

load model (family) -> apply method -> train on train (HF Trainer; best checkpoint on the dev metric; periodic
checkpoints, resumed after a kill) -> predict test (the foundation's prompts and parsers, or the encoder head)
-> score (the task's BLURB rule) -> write predictions, metrics, resources, resolved config (atomically) -> delete
the checkpoints, keep the trained weights as `keep` says.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path

import torch
import yaml
from transformers.utils import logging as hf_logging

from . import tracking, vllm_generation
from .config import ExperimentConfig
from .data import get_spec, load_split
from .errors import BiotuneError
from .evaluate import evaluate_dataset, prompt_budget, subset_indices
from .features import encoder_features, encoder_predict, generative_features
from .identity import describe, hash_of, identity, splits_read, upgrade
from .io import (
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    checkpoint_complete,
    disk_full_errors,
    folder_lock,
    read_jsonl,
)
from .methods import METHODS
from .models import FAMILIES
from .models.encoder import label_list
from .models.heads import HEADS
from .prompting import PromptBuilder
from .resources import PeakMemory, Timer, count_parameters, dir_size, weight_bytes
from .runtime import (
    attention_for,
    bf16_compute,
    dtype_name,
    is_main_process,
    pick_device,
    pick_dtype,
    provenance,
    set_attention,
    threads_for,
    world_size,
)
from .summary import FILE as SUMMARY_FILE
from .summary import RunSummary, is_subset
from .tasks import task_for

DEV_PREDICTIONS = "dev_predictions.jsonl"  # the kept model's dev predictions, beside the test predictions
FOLDER_WAIT_S = 30.0  # how long a run waits for another live process to let go of its output folder (io.folder_lock)
DEV_STEPS = "dev_steps"  # while training: each dev evaluation's predictions (step-<k>.jsonl), for the kept one
PAUSED = "paused.json"  # a run stopped at `training.pause_at` (a search's rung): how far it got, its dev score so far
LOST_FILE = "lost_work.json"  # in a run folder: training seconds lost to kills, over all its resumes


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def output_dir(cfg: ExperimentConfig) -> Path:
    return Path(cfg.output_dir or f"runs/{cfg.resolved_name()}")


def last_checkpoint(folder: Path) -> str | None:
    """The newest complete checkpoint (biotune.io.checkpoint_complete); incomplete ones after it (a kill or a full
    disk while it was written, a truncated file) are removed, so training resumes from the one before."""

    ckpts = sorted(
        (p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=_step_of,
    )
    while ckpts:
        newest = ckpts.pop()
        problem = checkpoint_complete(newest)
        if problem is None:
            return str(newest)
        _log(f"{newest} is incomplete ({problem}): resuming from the checkpoint before it")
        if is_main_process():
            shutil.rmtree(newest, ignore_errors=True)
    return None


def check_data(cfg: ExperimentConfig) -> None:
    """Read every split the run reads (cached): a missing split or a malformed line fails here, with its one-line
    error, before any model is loaded or anything written."""

    for split in splits_read(cfg):
        load_split(cfg.dataset, split, cfg.data_dir)


def _examples(name: str, split: str, limit: int | None, data_dir) -> list[dict]:
    ds = load_split(name, split, data_dir)
    return [ds[i] for i in subset_indices(len(ds), limit)]


class Experiment:
    """One experiment in its phases (setup -> train -> predict -> write); `run_experiment` runs them all.
    Tests drive the phases one by one to look at the model in between."""

    def __init__(self, cfg: ExperimentConfig, progress: bool = True):
        self.cfg, self.progress = cfg, progress
        self.out = output_dir(cfg)
        self.spec = get_spec(cfg.dataset)
        self.task = task_for(self.spec, cfg.output_format)
        self.family = FAMILIES.get(cfg.model.family)
        self.method = METHODS.get(cfg.method.name)
        self.params = self.method.params_model(**cfg.method.params)
        self.head = self.family.resolve_head(cfg.model, self.spec)
        self.device = pick_device(cfg.device)
        self.use_bf16 = bf16_compute(self.device, cfg.training.bf16)
        self.compute_dtype = torch.bfloat16 if self.use_bf16 else torch.float32
        self.train_info: dict = {}
        self.identity_hash: str | None = None  # set by run_experiment (biotune.identity)
        # what the phases make: setup (the model, its tokenizer, attention kernel, features and resources), the
        # Trainer (build_trainer), where a search's rung stopped training (train), the kept model's dev score and
        # the dev predictions made for it (predict, dev_score)
        self.model = self.tokenizer = self.trainer = None
        self.attention: str | None = None
        self.base_weight_bytes = 0
        self.train_features: list[dict] = []
        self.dev_features: list[dict] = []
        self.resources: dict = {}
        self.paused: dict | None = None
        self.dev: dict | None = None
        self.dev_rows: list[dict] | None = None
        # the MLflow run the Trainer opens, when the run reports to MLflow (biotune.tracking)
        self.mlflow_run = None
        if "mlflow" in cfg.training.report_to and is_main_process():
            from .tracking import run_id_callback

            self.mlflow_run = run_id_callback()

    def setup(self, loaded: tuple | None = None) -> None:
        """Loads the model (or takes `loaded`, a (model, tokenizer) already on the device: in-context methods,
        which leave it as it is) and applies the method; for a method that trains, builds the Trainer."""
        cfg, method = self.cfg, self.method
        check_data(cfg)  # fail early on splits that are missing or malformed, before a model is loaded
        # transformers' own bars (loading weights) follow biotune's: none in a log (biotune.progress prints lines)
        (hf_logging.enable_progress_bar if self.progress else hf_logging.disable_progress_bar)()
        if loaded is not None and method.trains:
            raise ValueError("a loaded model is reused by in-context methods only")
        self._seed()
        self.attention = attention_for(self.device, method.trains, cfg.model.attn_implementation)
        if cfg.runtime.generation == "vllm" and not method.trains:
            self._setup_vllm(loaded, self._load_dtype())
            return
        if cfg.runtime.generation == "vllm":
            _log(
                f"{cfg.resolved_name()}: runtime.generation vllm applies to in-context cells; {method.name} "
                "predicts with transformers"
            )
        model = self._load() if loaded is None else loaded[0]
        if loaded is not None:
            self.tokenizer = loaded[1]
        self.base_weight_bytes = weight_bytes(model)
        self.model = self._adapt(model)
        self.resources = {**count_parameters(self.model), "weight_bytes": self.base_weight_bytes}
        if method.trains:
            self.build_trainer()

    def _seed(self) -> None:
        """The run's seed, and on a CPU its threads (the default again after a cell that set its own: cells share
        a process)."""
        from transformers import set_seed

        if self.device.type == "cpu":
            torch.set_num_threads(threads_for(self.cfg.runtime.threads))
        set_seed(self.cfg.seed)

    def _load_dtype(self) -> torch.dtype:
        """What the weights are loaded in. Trained weights stay fp32 (bf16 autocast computes); weights that never
        train (in-context methods, the frozen base under an adapter, the non-4-bit part of a QLoRA base) are
        stored in the compute dtype: cast once here, not by autocast in every op, and half the memory."""
        if not self.method.trains:
            return pick_dtype(self.device, self.cfg.model.dtype)
        return torch.float32 if self.method.trains_base else self.compute_dtype

    def _load(self):
        """The model with its head, on the device, quantized where the method is (QLoRA); sets the tokenizer."""
        cfg, method = self.cfg, self.method
        quantization = (
            method.quantization_config(self.params, self.compute_dtype, self.family) if method.quantized else None
        )
        _log(f"{cfg.resolved_name()}: loading {cfg.model.path} ({self.family.name}) on {self.device}")
        model, self.tokenizer = self.family.load(
            cfg.model, self.spec, self.head, self.device, self._load_dtype(), quantization, cfg.seed, self.attention
        )
        return model

    def _adapt(self, model):
        """The method applied to `model`: for a method that trains, its features made first (a method may need
        the schedule's length: AdaLoRA's budget) and its trainable weights in fp32; in-context, frozen."""
        cfg, method = self.cfg, self.method
        total_steps = None
        if method.trains:
            self.train_features, self.dev_features = _features(self, model)
            total_steps = cfg.training.schedule(len(self.train_features))[0]
            if cfg.model.head_bias == "prior":
                self.family.init_head(model, self.head, [f["labels"] for f in self.train_features])
        else:
            model.requires_grad_(False)  # in-context methods train nothing
        model = method.apply(model, self.family, self.head, self.params, total_steps)
        if method.trains and self.device.type == "cpu":  # speed only (runtime block): the same results
            if cfg.runtime.fast_norms:
                from .kernels import fast_rms_norms

                fast_rms_norms(model)
            if cfg.runtime.fused_lora:
                from .methods.lora_layer import fuse_lora_layers

                fuse_lora_layers(model)
        for p in model.parameters():  # what trains does so in fp32 (adapters, soft prompts, a copied head)
            if p.requires_grad and p.dtype != torch.float32:
                p.data = p.data.float()
        if self.use_bf16 and HEADS.get(self.head).full_precision:  # a score head's output is its prediction
            self.family.precise_head(model)
        return model

    def _setup_vllm(self, loaded: tuple | None, dtype: torch.dtype) -> None:
        """An in-context cell whose answers vLLM generates (biotune.vllm_generation): the tokenizer as for
        transformers, the engine on the model's folder (a random-init model's cached folder too)."""

        cfg = self.cfg
        vllm_generation.check_usable(self.device, self.family.name, cfg.eval.scoring)
        if loaded is not None and getattr(loaded[0], "generation", None) == "vllm":
            self.model, self.tokenizer = loaded
        else:
            _log(f"{cfg.resolved_name()}: loading {cfg.model.path} into vLLM on {self.device}")
            self.tokenizer = self.family.load_tokenizer(cfg.model)
            path = self.family.checkpoint(cfg.model, self.tokenizer, self.head, self.spec, cfg.seed)
            self.model = vllm_generation.VllmModel(
                str(path),
                dtype,
                cfg.seed,
                max_model_len=cfg.eval.max_length,
                revision=cfg.model.revision if not cfg.model.random_init else None,
                trust_remote_code=cfg.model.trust_remote_code,
            )
        self.base_weight_bytes = self.model.weight_bytes()
        self.resources = {
            "trainable_params": 0,
            "total_params": self.base_weight_bytes // self.model.dtype.itemsize,
            "weight_bytes": self.base_weight_bytes,
            "generation": f"vllm {self.model.version}",
        }

    def build_trainer(self) -> None:
        from .trainer import TrainerInputs, build_trainer

        t = self.cfg.training

        def dev_scorer():  # the dev split predicted and scored as test is; its predictions kept by step
            with self.method.prediction_context(self.model):
                result, rows = _predict(self, "dev", t.dev_limit)
            if is_main_process():
                step = self.trainer.state.global_step
                atomic_write_jsonl(self.out / DEV_STEPS / f"step-{step}.jsonl", rows)
            return result

        self.trainer = build_trainer(
            TrainerInputs(
                model=self.model,
                tokenizer=self.tokenizer,
                family=self.family,
                head=self.head,
                method=self.method,
                params=self.params,
                training=t,
                train_features=self.train_features,
                dev_features=self.dev_features,
                output_dir=self.out,
                seed=self.cfg.seed,
                run_name=self.cfg.resolved_name(),
                device=self.device,
                bf16=self.use_bf16,
                attention=self.attention,
                packing=self.cfg.runtime.packing,
                logits_at_answers=self.cfg.runtime.logits_at_answers,
                progress=self.progress,
                dev_scorer=dev_scorer,
                callbacks=[self.mlflow_run] if self.mlflow_run else [],
                head_modules=(*self.family.head_modules, *(("pooler",) if self.cfg.model.pooler == "identity" else ())),
            )
        )

    def train(self) -> None:
        if self.method.trains:
            info = _train(self)
            if "paused" in info:
                self.paused = info["paused"]
                return
            self.train_info = info
            self.resources.update(self.train_info.pop("resources"))

    def predict(self, dev: bool = True) -> tuple[dict, list[dict]]:
        """Predicts and scores the evaluated split; with `dev`, also the kept model's dev score (what a study
        selects by)."""
        vllm = getattr(self.model, "generation", None) == "vllm"
        if not vllm:
            self.model.eval()
        if not vllm and self.attention != attention_for(self.device, False, self.cfg.model.attn_implementation):
            set_attention(self.model, "sdpa")  # trained with eager on CPU; SDPA predicts faster (benchmarks/)
        with Timer() as t_eval, PeakMemory(self.device) as mem_eval:
            result, rows = _predict(self)
        self.resources.update(
            eval_seconds=round(t_eval.seconds, 3), eval_peak_memory_bytes=mem_eval.peak_bytes, memory_kind=mem_eval.kind
        )
        self.dev = self.dev_score() if dev else None
        return result, rows

    def dev_score(self) -> dict:
        """The kept model's score on the dev examples (`training.dev_limit`), by the dataset's own metric: what
        a study's search and its recommendations choose by (never test). Taken from training where the kept
        checkpoint was chosen by it, else predicted now (in-context methods, `select_by: loss`)."""
        t = self.cfg.training
        if self.train_info.get("best_dev_score") is not None and t.select_by == "metric":
            curve = self.train_info["dev_score_curve"]
            return {
                "score": self.train_info["best_dev_score"],
                "n": self.train_info["dev_examples"],
                "from": "training",
                "evaluations": len(curve),
            }
        with Timer() as timer:
            result, rows = _predict(self, "dev", t.dev_limit)
        self.resources["dev_eval_seconds"] = round(self.resources.get("dev_eval_seconds", 0) + timer.seconds, 3)
        self.dev_rows = rows
        return {
            "score": result["score"],
            "n": result["n"],
            "from": "prediction",
            "n_unparsed": result.get("n_unparsed", 0),
            **({"n_truncated": result["n_truncated"]} if "n_truncated" in result else {}),
        }

    def kept_dev_rows(self) -> list[dict] | None:
        """The dev predictions behind `dev_score`: predicted now, or those of the dev evaluation whose model was
        kept (the best on dev; the last where the method keeps its final model), as training wrote them."""
        if self.dev_rows is not None:
            return self.dev_rows
        curve = self.train_info.get("dev_score_curve") or []
        if not curve:
            return None
        scores = [v for _, v in curve]
        # the first evaluation with the best score: the one the Trainer keeps (it replaces its best only on a gain)
        step = curve[-1][0] if self.method.keeps_final else curve[scores.index(max(scores))][0]
        path = self.out / DEV_STEPS / f"step-{step}.jsonl"

        return read_jsonl(path) if path.is_file() else None

    def write(self, result: dict, rows: list[dict]) -> RunSummary:
        cfg = self.cfg
        atomic_write_jsonl(self.out / "predictions.jsonl", rows)
        dev_rows = self.kept_dev_rows() if self.dev is not None else None
        if dev_rows is not None:  # what the dev score was computed from, so it can be audited and compared
            atomic_write_jsonl(self.out / DEV_PREDICTIONS, dev_rows)
        summary = RunSummary(
            name=cfg.resolved_name(),
            dataset=self.spec.name,
            task=self.spec.task,
            model=cfg.model.path,
            family=self.family.name,
            method=self.method.name,
            seed=cfg.seed,
            identity_hash=self.identity_hash,
            metrics=result,
            dev=self.dev,
            blurb_comparable=cfg.eval.split == "test"
            and cfg.training.train_split == "train"
            and self.spec.blurb
            and not is_subset(result),
            resources=self.resources,
            training=self.train_info,
            device=str(self.device),
            compute_dtype=dtype_name(self.compute_dtype),
            versions=provenance(),
        )
        atomic_write_text(self.out / "config.yaml", yaml.safe_dump(cfg.model_dump(), sort_keys=False))
        summary.write(self.out)  # written last: its presence means "finished"
        return summary


def run_experiment(cfg: ExperimentConfig, progress: bool = True, force: bool = False) -> RunSummary | None:
    """Run one experiment. Under `accelerate launch` every process trains (DDP / FSDP / DeepSpeed, as the
    accelerate config says) and the main process alone predicts, scores and writes; the others return None.

    The output folder belongs to one identity (biotune.identity): a finished result of the same identity is
    returned as it is, a half-done one resumes; a finished or half-done run of another identity is refused
    (naming what differs) unless `force`, which clears the folder and starts afresh. The folder is held (locked)
    while the run lasts: a second run into it, or a rerun while an orphan still writes there, waits or is refused."""
    with _held(cfg):
        return _run_experiment(cfg, progress, force)


def _run_experiment(cfg: ExperimentConfig, progress: bool, force: bool) -> RunSummary | None:
    out, ident_hash, state = _claim(cfg, force)
    if state == "finished":
        _log(f"{out}/metrics.json exists: experiment already finished (identity {ident_hash})")
        if is_main_process():
            tidy(out, cfg.keep)  # a run killed between its result and its tidying
        return RunSummary.read(out)

    reached = paused_at(out)
    if cfg.training.pause_at is not None and reached is not None and reached["pause_at"] >= cfg.training.pause_at:
        _log(f"{out}/{PAUSED}: already trained to step {reached['step']} (pause_at {reached['pause_at']})")
        return None
    with disk_full_errors(out), tracking.environment(cfg, out, ident_hash):
        exp = Experiment(cfg, progress and is_main_process())
        exp.identity_hash = ident_hash
        exp.setup()
        exp.train()
        if not is_main_process():
            return None
        if exp.paused is not None:  # a rung of a search: the checkpoint is kept to go on from; no result yet
            atomic_write_json(out / PAUSED, {"pause_at": cfg.training.pause_at, **exp.paused})
            _log(
                f"paused at step {exp.paused['step']} of {exp.paused['total_steps']} (dev score so far "
                f"{exp.paused['dev_score']})"
            )
            return None
        summary = exp.write(*exp.predict())
        tracking.log_final(cfg, out, summary, exp.mlflow_run.run_id if exp.mlflow_run else None)
    tidy(out, cfg.keep)
    return summary


def evaluate_experiment(cfg: ExperimentConfig, loaded: tuple | None = None, progress: bool = True, force: bool = False):
    """An in-context experiment (zero-/few-shot), predicted, scored and written as run_experiment does, with a
    model already loaded where `loaded` is given, and without the dev score (what a study's selection needs,
    `biotune eval` not). A finished result of the same identity in its folder is returned as it is; one of
    another identity is refused unless `force`, as in run_experiment. Returns (summary, loaded): the (model,
    tokenizer) for the next experiment (None if nothing was loaded)."""
    if METHODS.get(cfg.method.name).trains:
        raise ValueError(f"{cfg.method.name} trains: run it with run_experiment")
    with _held(cfg):
        out, ident_hash, state = _claim(cfg, force)
        if state == "finished":
            _log(f"{out}/metrics.json exists: already evaluated (identity {ident_hash})")
            return RunSummary.read(out), loaded
        with disk_full_errors(out):
            exp = Experiment(cfg, progress)
            exp.identity_hash = ident_hash
            exp.setup(loaded)
            summary = exp.write(*exp.predict(dev=False))
    return summary, (exp.model, exp.tokenizer)


def _held(cfg: ExperimentConfig):
    """The run's output folder checked (a folder this process can write, with no symlink where biotune writes or
    deletes) and locked for this process (io.folder_lock); its data checked first, so bad data writes nothing."""

    check_data(cfg)
    out = output_dir(cfg)
    writable_folder(out)
    no_links(out)
    return folder_lock(out, wait=FOLDER_WAIT_S) if is_main_process() else contextlib.nullcontext()


def writable_folder(out: Path) -> None:
    """A one-line error unless `out` is (or can be made) a folder this process writes in."""

    if out.exists() and not out.is_dir():
        raise BiotuneError(f"{out} is a file, not a folder: name a folder for the run's output (--output-dir)")
    if out.is_symlink() and not out.exists():
        raise BiotuneError(f"{out} is a broken symlink: remove it or give another output folder")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BiotuneError(
            f"cannot write in {existing} (permission denied or read-only): give an output folder "
            "you can write (--output-dir)"
        )


def no_links(out: Path) -> None:
    """A one-line error where a run folder holds a symlink where a run writes or deletes (its result files,
    checkpoints, weights): it would send writes and deletions out of the folder."""

    places = [out / name for name in (*_RESULT_FILES, *_RESULT_DIRS)]
    places += [
        p
        for d in ("checkpoints", "final", DEV_STEPS)
        if (out / d).is_dir() and not (out / d).is_symlink()
        for p in (out / d).iterdir()
    ]
    for place in places:
        if place.is_symlink():
            raise BiotuneError(
                f"{place} is a symlink (to {os.readlink(place)}): a run writes and deletes there, "
                "so it would act outside its folder; remove the link"
            )


def _claim(cfg: ExperimentConfig, force: bool) -> tuple[Path, str, str]:
    """The run's output folder claimed for its identity (claim_folder), inside `_held`, which has checked every
    split the run reads: (folder, identity hash, 'finished' | 'resume' | 'new')."""

    out = output_dir(cfg)
    ident = identity(cfg)
    ident_hash = hash_of(ident)
    with disk_full_errors(out):
        return out, ident_hash, claim_folder(out, ident, ident_hash, force)


def tidy(out: Path, keep: str) -> None:
    """After the result is written: the checkpoints go (they only served to resume), with the dev predictions of
    every evaluation (the kept one is in dev_predictions.jsonl), and the trained weights (`final/`) unless `keep`
    says to keep them. Predictions, metrics, config and identity stay."""

    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    shutil.rmtree(out / DEV_STEPS, ignore_errors=True)
    (out / PAUSED).unlink(missing_ok=True)
    (out / LOST_FILE).unlink(missing_ok=True)  # in the result's resources now
    if keep == "none":
        shutil.rmtree(out / "final", ignore_errors=True)


_RESULT_FILES = (
    SUMMARY_FILE,
    "predictions.jsonl",
    "dev_predictions.jsonl",
    "config.yaml",
    "identity.json",
    PAUSED,
    LOST_FILE,
)
_RESULT_DIRS = ("checkpoints", "final", "dev_steps")


def claim_folder(out: Path, ident: dict, ident_hash: str, force: bool = False) -> str:
    """Make `out` this identity's folder: 'finished' (its result is there), 'resume' (a half-done run of it) or
    'new'. Another identity's result or checkpoints there: BiotuneError naming what differs, or with `force`
    cleared first. Only the main process writes."""

    held = out / "identity.json"
    old = json.loads(held.read_text()) if held.is_file() else None
    if old is not None and old.get("hash") != ident_hash and hash_of(upgrade(old.get("identity") or {})) == ident_hash:
        old = {"hash": ident_hash, "identity": ident}  # the same result, as this biotune names it (identity.upgrade)
        if is_main_process():
            atomic_write_json(held, old)
    finished = RunSummary.exists(out)
    started = finished or any((out / d).exists() for d in _RESULT_DIRS)
    if started and (old is None or old.get("hash") != ident_hash):
        what = "a finished result" if finished else "a half-done run (never resumed under another identity)"
        why = (
            f"it differs in {describe(old['identity'], ident)}"
            if old is not None
            else "its identity is unknown (written by an earlier biotune)"
        )
        if not force:
            raise BiotuneError(
                f"{out} holds {what} of another experiment: {why}. Rerun with --force to replace "
                "it, or give another --output-dir"
            )
        _log(f"--force: clearing {out} ({why})")
        if is_main_process():
            for name in _RESULT_FILES:
                (out / name).unlink(missing_ok=True)
            for name in _RESULT_DIRS:
                shutil.rmtree(out / name, ignore_errors=True)
        finished = started = False
    if finished:
        return "finished"
    if is_main_process() and (old is None or old.get("hash") != ident_hash):
        atomic_write_json(held, {"hash": ident_hash, "identity": ident})
    return "resume" if started else "new"


def _features(exp: Experiment, model) -> tuple[list[dict], list[dict]]:
    """The training and dev-loss features of the run, formatted for `model`'s family."""
    cfg, t, tokenizer, task = exp.cfg, exp.cfg.training, exp.tokenizer, exp.task
    train_ex = _examples(cfg.dataset, t.train_split, t.train_limit, cfg.data_dir)
    dev_ex = _examples(cfg.dataset, "dev", t.dev_limit, cfg.data_dir)
    if exp.family.generative:
        enc_dec = bool(model.config.is_encoder_decoder)
        return (
            generative_features(task, tokenizer, train_ex, t.max_length, enc_dec),
            generative_features(task, tokenizer, dev_ex, t.max_length, enc_dec),
        )
    labels = label_list(exp.spec)
    return (
        encoder_features(task, tokenizer, train_ex, exp.head, labels, t.max_length),
        encoder_features(task, tokenizer, dev_ex, exp.head, labels, t.max_length),
    )


def paused_at(out: Path) -> dict | None:
    """What `paused.json` in a run folder says (None: the run never paused, or has finished since)."""
    path = out / PAUSED
    return json.loads(path.read_text()) if path.is_file() and not RunSummary.exists(out) else None


def _train(exp: Experiment) -> dict:
    """Train from where the run last stopped (its last checkpoint) to its end or to a search's rung: what it
    reached at the rung (`paused`), else what its training was (resources, curves, the kept model's dev score)."""
    from .trainer import PauseAt

    trainer = exp.trainer
    pause = exp.cfg.training.pause_step(len(exp.train_features))
    if pause is not None:
        trainer.add_callback(PauseAt(pause))
    resume, lost = _resume_point(exp)
    end = pause or exp.cfg.training.schedule(len(exp.train_features))[0]
    with (
        Timer() as timer,
        PeakMemory(exp.device) as mem,
        exp.method.training_context(exp.model, exp.params, autocast=exp.use_bf16),
    ):
        if resume is not None and _step_of(resume) >= end:
            _trained_already(trainer, resume, finish=pause is None)
        else:
            trainer.train(resume_from_checkpoint=resume)
    spent = {  # the whole trajectory's: the seconds before a resume included
        "train_seconds": round(trainer.biotune_tokens.prior["train_seconds"] + timer.seconds, 3),
        "train_seconds_before_resume": round(trainer.biotune_tokens.prior["train_seconds"], 3),
    }
    if pause is not None and trainer.state.global_step == pause:
        return {"paused": _reached(trainer, pause, exp.method.keeps_final, spent, lost)}
    final = exp.out / "final"
    trainer.save_model(str(final))
    if is_main_process():
        exp.method.finish(exp.model, exp.params, final)
    return {
        "resources": _training_resources(trainer, spent, timer.seconds, lost, mem.peak_bytes, final),
        **_training_record(exp, resume),
    }


def _step_of(checkpoint: str) -> int:
    return int(Path(checkpoint).name.rsplit("-", 1)[-1])


def _trained_already(trainer, checkpoint: str, finish: bool) -> None:
    """The Trainer set where `checkpoint` left it, the step this invocation trains to already reached (a search's
    rung at the end of a short run; a run killed after its last checkpoint, in its prediction): resumed there, the
    Trainer would train one more step wherever that step is not the end of an epoch, so it is not resumed. Its
    state (curves, best checkpoint) comes from the checkpoint and, to `finish`, the weights the run ends with: the
    best checkpoint's where it keeps the best (as the Trainer's own end of training loads them), else these."""
    from transformers import TrainerState

    trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
    _log(f"{checkpoint}: already at step {trainer.state.global_step}, nothing to train")
    if finish:
        trainer._load_from_checkpoint(checkpoint)
        if trainer.args.load_best_model_at_end and trainer.state.best_model_checkpoint is not None:
            trainer._load_best_model()


def _resume_point(exp: Experiment) -> tuple[str | None, dict]:
    """The checkpoint this run goes on from (None: from the start), the training seconds spent before it restored
    into the Trainer's meter, and the work earlier invocations lost past their last checkpoint (lost_work)."""
    from .trainer import TIME_FILE

    meter = exp.trainer.biotune_tokens
    resume = last_checkpoint(exp.out / "checkpoints")
    if resume:
        _log(f"resuming from {resume}")
        spent = Path(resume) / TIME_FILE
        if spent.is_file():  # written after the checkpoint itself: absent if killed in between (then 0)
            meter.prior = {k: float(v) for k, v in json.loads(spent.read_text()).items()}
    return resume, lost_work(exp.out, resume, meter.prior["train_seconds"])


def _curve(history: list[dict], key: str) -> list[tuple]:
    """(step, value) of each entry of the Trainer's log history that has `key`."""
    return [(h["step"], h[key]) for h in history if key in h]


def _reached(trainer, pause: int, keeps_final: bool, spent: dict, lost: dict) -> dict:
    """Where a run stopped at a search's rung: its step, the kept model's dev score so far, its curve, its time."""
    curve = _curve(trainer.state.log_history, "eval_score")
    return {
        "step": pause,
        "total_steps": trainer.state.max_steps,
        "dev_score": _kept_score([score for _, score in curve], keeps_final),
        "dev_score_curve": curve,
        **spent,
        "lost_seconds": lost["seconds"],  # redone after kills, over the run's resumes so far
    }


def _training_resources(trainer, spent: dict, seconds: float, lost: dict, peak_bytes, final: Path) -> dict:
    """What a finished training cost: its time (dev evaluations included, and apart), tokens, memory, the
    adapter's size, how it ran in parallel, and the work lost to kills, listed apart."""
    from .trainer import parallelism

    meter = trainer.biotune_tokens
    # the Trainer restores its token count from the checkpoint it resumes from: this is the whole run's
    seen = trainer.state.num_input_tokens_seen
    # seconds of training steps (dev evaluations left out), the time before a resume included
    step_seconds = max(
        meter.prior["train_seconds"] + seconds - meter.prior["dev_eval_seconds"] - meter.eval_seconds, 1e-9
    )
    return {
        # wall time of training, dev evaluations included, with the time before a resume (the cost)
        "train_seconds": spent["train_seconds"],
        "dev_eval_seconds": round(meter.prior["dev_eval_seconds"] + meter.eval_seconds, 3),
        "train_seconds_before_resume": spent["train_seconds_before_resume"],
        # training done past a checkpoint by a run that was then killed, redone after its resume: not in
        # train_seconds (the finished trajectory's compute), listed apart
        "lost_seconds": lost["seconds"],
        "resumes": lost["resumes"],
        "train_tokens": int(seen),
        "train_padded_tokens": trainer.padded_tokens,  # what the model computed on, padding included
        "train_tokens_per_s": round(seen / step_seconds, 2),  # non-pad tokens per second of training steps
        "train_peak_memory_bytes": peak_bytes,
        "adapter_bytes": dir_size(final, weights_only=True) if is_main_process() else None,
        "processes": world_size(),  # peak memory is this (the main) process's
        "parallelism": parallelism(trainer),  # as accelerate applied it (an FSDP config on CPUs runs DDP)
    }


def _training_record(exp: Experiment, resume: str | None) -> dict:
    """What a finished training was: its size, schedule, where it resumed, which checkpoint it kept and why, and
    its curves (training loss, dev loss and score per evaluation)."""
    trainer = exp.trainer
    history = trainer.state.log_history
    return {
        "train_examples": len(exp.train_features),
        "dev_examples": len(trainer.eval_dataset),
        "steps": trainer.state.global_step,
        "learning_rate": trainer.args.learning_rate,
        "resumed_from": resume,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "select_by": exp.cfg.training.select_by,
        "best_dev_loss": min((h["eval_loss"] for h in history if "eval_loss" in h), default=None),
        # the kept model's: the best evaluation's, or the last one's where the method keeps the final model
        "best_dev_score": _kept_score([h["eval_score"] for h in history if "eval_score" in h], exp.method.keeps_final),
        "stopped_early_at": trainer.stopped_early_at,
        "loss_curve": _curve(history, "loss"),
        "dev_loss_curve": _curve(history, "eval_loss"),
        "dev_score_curve": _curve(history, "eval_score"),
    }


def lost_work(out: Path, resume: str | None, at_checkpoint: float) -> dict:
    """Training that a killed invocation did past the checkpoint this one resumes from (`at_checkpoint`: its
    training seconds up to that checkpoint), added to what earlier resumes lost: {'seconds', 'resumes'}. Read
    from the progress file training writes every few seconds (trainer.PROGRESS_FILE), so up to that interval of
    lost work is not seen; a pause at a search's rung stops at its checkpoint and loses nothing."""
    from .trainer import PROGRESS_FILE

    if not is_main_process():  # the main process alone reads, counts and writes (its resources are the result's)
        return {"seconds": 0.0, "resumes": 0}
    path = out / LOST_FILE
    lost = json.loads(path.read_text()) if path.is_file() else {"seconds": 0.0, "resumes": 0}
    progress = out / "checkpoints" / PROGRESS_FILE
    if resume is None or not progress.is_file():
        return lost
    went = json.loads(progress.read_text())
    if went.get("step", 0) > _step_of(resume):
        lost = {
            "seconds": round(lost["seconds"] + max(0.0, went["train_seconds"] - at_checkpoint), 3),
            "resumes": lost["resumes"] + 1,
        }
        atomic_write_json(path, lost)
    progress.unlink()  # read once: this invocation writes its own
    return lost


def _kept_score(scores: list[float], final: bool) -> float | None:
    if not scores:
        return None
    return scores[-1] if final else max(scores)


def _predict(exp: Experiment, split: str | None = None, limit: int | None = None):
    """Predict and score `split` (default: the evaluated split, `eval.limit` examples) with the model as it is."""
    cfg = exp.cfg
    split, limit = (split, limit) if split is not None else (cfg.eval.split, cfg.eval.limit)
    if exp.family.generative:
        builder = PromptBuilder(exp.tokenizer, prompt_budget(exp.model, cfg))
        return evaluate_dataset(cfg, exp.model, exp.tokenizer, builder, split, limit, exp.progress)
    whole = load_split(cfg.dataset, split, cfg.data_dir)
    examples = [whole[i] for i in subset_indices(len(whole), limit)]
    labels = label_list(exp.spec)
    preds = encoder_predict(
        exp.model,
        exp.tokenizer,
        exp.task,
        examples,
        exp.head,
        labels,
        cfg.training.max_length,
        cfg.runtime.eval_batch_size,
    )
    result = exp.task.score(examples, preds)
    result.update(
        task=exp.spec.task,
        metric=exp.task.metric,
        split=split,
        n=len(examples),
        n_total=len(whole),
        n_unparsed=0,
        scoring="head",
    )
    rows = [{"id": ex["id"], "prediction": p, "gold": exp.task.gold(ex)} for ex, p in zip(examples, preds)]
    return result, rows
