"""A result's identity: everything that decides it, and nothing that does not.

    identity(cfg) -> {"experiment": ..., "data": ..., "model": ..., "scoring_version": N}
    identity_hash(cfg) -> "3f9c0a..."  (16 hex digits of the SHA-256 of the canonical JSON)

- `experiment`: the resolved experiment (method parameters with every default filled in, the learning rate resolved to
  the method's default, training and evaluation settings, `auto` precision resolved to what this machine computes
  in: `training.bf16` and `model.dtype`, so a bf16 machine's result and an fp32 one's differ), without what only
  names or places a run (`name`, `output_dir`, `data_dir`), without the `runtime:` block (speed only, tested to
  leave results identical) except `eval_batch_size` away from its default (padded batched generation in bf16 is not
  batch-invariant), `fused_lora` and `logits_at_answers` off (the library's paths round otherwise and train other
  weights) `threads` where set (how a matmul's sums are split; torch's default, the cores, is not keyed) and
  `packing` where set (another summation order), each left out at the value every earlier result had, without `keep`
  (what a finished run leaves on disk) and without tracking (`training.report_to`, `tags`); a setting added later is
  left out while at the default that does what runs did before it (`ADDED_LATER`), so adding a setting reruns
  nothing; for a method that trains nothing (zero-shot, in-context) only what it reads of `training:`
  (`UNTRAINED_READS`: precision, dev examples, train split name). `upgrade(stored)` names a stored identity as this
  biotune does where the change is exact (an in-context result stored with its whole training block): the store
  and run folders read earlier results through it, so they are neither rerun nor dropped as stale.
- `data`: the SHA-256 of each file the run reads (train split, dev, evaluated split, shot split), so an edited
  file reruns its cells and a moved data folder does not; for a user's dataset file also the file itself
  (`definition`: columns, labels, metric decide results too), for a hub dataset the examples as read.
- `model`: what the weights are: the content hash of a local folder (or packaged model), a hub id with its
  revision, or the random-init block with its tokenizer's identity.
- `scoring_version`: `biotune.tasks.SCORING_VERSION`, bumped whenever a metric or parser changes.

Studies key cells by this hash (a changed cell is rerun, the old row kept as history) and `biotune run` refuses
to reuse a folder holding a result of another identity. `differences(a, b)` names the fields that differ.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from . import tasks
from .config import ExperimentConfig, RuntimeConfig
from .data import get_spec, split_exists
from .data.catalog import load_split, split_file
from .data.location import cache_dir
from .io import atomic_write_json
from .methods import METHODS
from .models import FAMILIES
from .models.aliases import resolve
from .models.heads import HEADS

_NOT_IDENTITY = {"name", "output_dir", "data_dir", "runtime", "keep", "tags"}
# tracking: where the curves go, not what they are; pause_at: how far one invocation trains (a search's rung)
_NOT_IDENTITY_TRAINING = {"report_to", "pause_at"}
# Settings added after results were stored, each with the default that does what runs did before it existed:
# left out of the identity while at that default, so adding a setting reruns nothing; any other value is part of
# the identity like every other field. (block, field) -> default
ADDED_LATER: dict[tuple[str, str], Any] = {
    ("eval", "fallback_split"): None,
    ("eval", "max_length"): None,
    ("eval", "max_new_tokens"): None,
    ("model", "pooler"): "checkpoint",
    ("model", "head_bias"): "zero",
    ("training", "head_lr_scale"): 1.0,
}
# The runtime settings found to change results (tests/test_identity_real.py, SmolLM2 in bf16 unless said), part of
# the identity away from their defaults:
# - eval_batch_size: batched greedy generation over padded rows is not batch-invariant (22 of 100 LoRA answers
#   differed between batch 8 and 16);
# - fused_lora off: peft's LoRA forward rounds the adapter's sum otherwise (dev loss 2.765 -> 2.818, 1 of 6 answers);
# - logits_at_answers off: the LM head over every position sums the loss otherwise (2.765 -> 2.796; in fp32
#   2.6232388 -> 2.6232419): other weights are trained;
# - packing where set: one packed row, the same loss up to rounding (auto, machine-chosen, is left out);
# - threads where set: a matmul's sums are split by thread (1 thread against torch's 2: 1 of 6 answers). torch's
#   default (the cores, or what Ray sets in its workers) is left out, so a study and its cells agree on an identity.
RUNTIME_KEYED = ("eval_batch_size", "fused_lora", "logits_at_answers", "packing", "threads")
# What a method that trains nothing (zero-shot, in-context) reads of the `training:` block: the precision it computes
# in, how many dev examples its dev score predicts, and the split its result's BLURB flag names. Its other fields
# (learning rate, epochs, batch, schedule, ...) decide no prediction of it (tests/test_identity.py runs it with
# another training block, example by example), so they are no part of its identity: changing a study's training
# defaults reruns no in-context cell.
UNTRAINED_READS = ("bf16", "dev_limit", "train_split")
_FILE_HASHES: dict[tuple, str] = {}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) in this process and in the cache folder."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _FILE_HASHES:
        return _FILE_HASHES[key]
    disk = _disk_cache()
    disk_key = "|".join(map(str, key))
    digest = disk.get(disk_key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
        disk[disk_key] = digest
        _save_disk_cache(disk)
    _FILE_HASHES[key] = digest
    return digest


def folder_sha256(folder: str | Path) -> str:
    """One hash over every file of a folder (relative path and content hash of each), hidden files left out."""
    folder = Path(folder)
    parts = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            parts.append(f"{rel.as_posix()}:{file_sha256(p)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _cache_file() -> Path:

    return cache_dir() / "file-hashes.json"


def _disk_cache() -> dict:
    try:
        return json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}


def _save_disk_cache(cache: dict) -> None:

    try:
        atomic_write_json(_cache_file(), cache)
    except OSError:
        pass  # a read-only cache only costs rehashing


def splits_read(cfg: ExperimentConfig) -> list[str]:
    """The splits of the dataset a run reads, in a fixed order."""

    method = METHODS.get(cfg.method.name)
    splits = {_or_fallback(cfg, cfg.eval.split)}
    if method.trains:
        splits |= {cfg.training.train_split, "dev"}
    if cfg.method.params.get("shots", 0):
        splits.add(_or_fallback(cfg, cfg.eval.shot_split))
    return sorted(splits)


def _or_fallback(cfg: ExperimentConfig, split: str) -> str:
    """The split evaluation reads: `eval.fallback_split` where `split` is missing and the fallback is there."""

    fallback = cfg.eval.fallback_split
    if fallback and fallback != split:
        spec = get_spec(cfg.dataset)
        if not split_exists(spec, split, cfg.data_dir) and split_exists(spec, fallback, cfg.data_dir):
            return fallback
    return split


def data_identity(cfg: ExperimentConfig) -> dict[str, str]:
    """split -> SHA-256 of its file ('missing' where the split is not there: the run itself then fails)."""

    spec = get_spec(cfg.dataset)
    out = {}
    if not spec.builtin:  # a user's dataset file: its definition (columns, labels, metric, ...) decides results too
        out["definition"] = file_sha256(spec.definition)
    for split in splits_read(cfg):
        if spec.format == "hf":  # a hub dataset: the examples as read
            rows = load_split(cfg.dataset, split, cfg.data_dir).to_list()
            out[split] = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
            continue
        path = split_file(spec, split, cfg.data_dir) if split in spec.files else None
        out[split] = file_sha256(path) if path is not None else "missing"
    return out


def model_identity(cfg: ExperimentConfig) -> dict[str, Any]:

    m = cfg.model

    def weights(ref_name: str) -> dict:
        ref = resolve(ref_name)
        if os.path.isdir(ref.path):
            return {"content": folder_sha256(ref.path)}
        return {"hub": ref.path, "revision": m.revision or "main"}

    if m.random_init:
        return {"random_init": m.random_init, "tokenizer": weights(m.tokenizer or m.path)}
    out = weights(m.path)
    if m.tokenizer:
        out["tokenizer"] = weights(m.tokenizer)
    return out


def identity(cfg: ExperimentConfig) -> dict[str, Any]:
    from .runtime import resolved_precision  # torch: on first use, as the other heavy imports here

    exclude = {**{k: True for k in _NOT_IDENTITY}, "training": _NOT_IDENTITY_TRAINING}
    experiment = json.loads(json.dumps(cfg.model_dump(exclude=exclude), default=str))
    for (block, field), default in ADDED_LATER.items():
        if experiment.get(block, {}).get(field, default) == default:
            experiment.get(block, {}).pop(field, None)
    for name in RUNTIME_KEYED:  # each a result of its own away from its default; every earlier result had it
        value = getattr(cfg.runtime, name)
        if value != RuntimeConfig.model_fields[name].default:
            experiment[name] = value
    precision = resolved_precision(cfg.device, cfg.training.bf16, cfg.model.dtype)
    experiment["training"]["bf16"], experiment["model"]["dtype"] = precision["bf16"], precision["dtype"]
    _trim_untrained(experiment)
    spec = get_spec(cfg.dataset)
    experiment["dataset"] = spec.name  # a dataset file by its name: moving it reruns nothing
    if precision["bf16"] and HEADS.get(FAMILIES.get(cfg.model.family).resolve_head(cfg.model, spec)).full_precision:
        # a score head computes in fp32 under bf16 (Head.full_precision) since it was found rounding BIOSSES
        # predictions to multiples of 1/64: those results, and only those, are new
        experiment["head_precision"] = "float32"
    return {
        "experiment": experiment,
        "data": data_identity(cfg),
        "model": model_identity(cfg),
        "scoring_version": tasks.SCORING_VERSION,  # read when asked (a test bumps it)
    }


def _trim_untrained(experiment: dict) -> bool:
    """A method that trains nothing keeps only what it reads of `training:` (UNTRAINED_READS); True if this
    removed anything."""
    training = experiment.get("training")
    name = (experiment.get("method") or {}).get("name", "")
    if name not in METHODS or METHODS.get(name).trains or not isinstance(training, dict):
        return False
    kept = {k: v for k, v in training.items() if k in UNTRAINED_READS}
    if kept == training:
        return False
    experiment["training"] = kept
    return True


def upgrade(stored: dict) -> dict:
    """A stored identity as this biotune computes it, where the change is exact: an in-context result written
    before its identity left out the training settings it never read is the same result under the trimmed
    identity. Anything else is returned as it is (a changed parser, data or model is a new result)."""
    if "experiment" not in stored:
        return stored
    experiment = json.loads(json.dumps(stored["experiment"]))
    return {**stored, "experiment": experiment} if _trim_untrained(experiment) else stored


def hash_of(ident: dict) -> str:
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


def identity_hash(cfg: ExperimentConfig) -> str:
    return hash_of(identity(cfg))


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted paths where two identities differ, e.g. ['experiment.training.learning_rate', 'data.train']."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, path + ".")
        elif a != b:
            out.append(path)
    return out


def describe(old: dict, new: dict, limit: int = 4) -> str:
    """'experiment.training.learning_rate: 0.002 -> 0.2; ...' for the first few differences."""

    def at(d, path):
        for part in path.split("."):
            d = d.get(part, "<absent>") if isinstance(d, dict) else "<absent>"
        return d

    diffs = differences(old, new)
    shown = [f"{p.removeprefix('experiment.')}: {_short(at(old, p))} -> {_short(at(new, p))}" for p in diffs[:limit]]
    more = f" (+{len(diffs) - limit} more)" if len(diffs) > limit else ""
    return "; ".join(shown) + more if shown else "nothing"


def _short(v) -> str:
    s = json.dumps(v, default=str) if not isinstance(v, str) else v
    return s if len(s) <= 40 else s[:12] + "…"
