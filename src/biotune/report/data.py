"""What a report reads: a study's finished cells from its results store (one row per final cell, with what it
cost), their run files (training curves, what they ran on) and the search candidates' dev-score curves."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from biotune.config import TrainingConfig
from biotune.errors import BiotuneError
from biotune.methods import METHODS
from biotune.study.store import Store, group_key, row_key


def load_results(
    store_url: str, study: str, identities: dict | None = None, search: list[dict] | None = None
) -> pd.DataFrame:
    """The finished cells of a study. `identities` (grid key -> identity hash, from the study file as it is now):
    only rows of those identities, so nothing stale is reported; None: the newest finished row of each cell."""
    rows = Store(store_url).rows(study, "done")
    if identities is not None:
        rows = [r for r in rows if identities.get(row_key(r)) == r["config_hash"]]
    else:
        newest = {}
        for r in rows:
            newest[row_key(r)] = r
        rows = list(newest.values())
    if not rows:
        raise BiotuneError(f"no finished cells of study {study!r} (as the study file defines them now) in {store_url}")
    # a searched configuration also cost its search: every candidate's training time (none is a result)
    search_cost: dict = {}
    for c in search or []:
        k = group_key(c)
        search_cost[k] = search_cost.get(k, 0.0) + (c["train_seconds"] or 0.0)
    out = []
    for r in rows:
        res = json.loads(r["resources"] or "{}")
        config = json.loads(r["config"])
        method = METHODS.get(_method_name(config))
        peak = max(res.get("train_peak_memory_bytes") or 0, res.get("eval_peak_memory_bytes") or 0)
        metrics = json.loads(r.get("metrics") or "{}")
        out.append(
            {
                "dataset": r["dataset"],
                "task": r["task"],
                "model": r["model"],
                "method": r["method"],
                "seed": r["seed"],
                "score": r["score"],
                "dev_score": r.get("dev_score"),
                "search_seconds": search_cost.get(group_key(r), 0.0),
                "trainable_params": res.get("trainable_params", 0),
                "peak_memory_mb": peak / 2**20,
                "memory_kind": res.get("memory_kind") or "",
                "train_seconds": res.get("train_seconds", 0.0),
                # training redone after kills (train.lost_work): not the configuration's cost, listed apart
                "lost_seconds": res.get("lost_seconds") or 0.0,
                # prediction: of test, and of dev where it is not part of training (in-context methods' dev score)
                "eval_seconds": (res.get("eval_seconds") or 0.0)
                + (0.0 if method.trains else res.get("dev_eval_seconds") or 0.0),
                "n_unparsed": metrics.get("n_unparsed"),
                # generated answers that ran to the token cap (scored on their complete items; runs before it: NaN)
                "n_truncated": metrics.get("n_truncated"),
                "budget": _budget_of(config) if method.trains else "–",
                "n_test": metrics.get("n"),
                # the evaluated split's size: above n_test, the run scored a fixed subset of it (eval.limit)
                "n_total": metrics.get("n_total"),
                "trains": method.trains,
                "trains_base": method.trains_base,  # full fine-tuning: every base weight trains
                "family": _family_of(config),
                "deterministic": method.deterministic,
                "output_dir": r["output_dir"],
            }
        )
    return pd.DataFrame(out)


def _budget_of(config: dict) -> str:
    """A stored run's training budget in words (TrainingConfig.budget), '' where its config cannot say."""

    try:
        return TrainingConfig.model_validate((config.get("experiment") or config)["training"]).budget()
    except (KeyError, TypeError, ValueError):
        return ""


def _family_of(config: dict) -> str:
    """A stored run's model family (causal, seq2seq, glm, encoder), '' where its config cannot say."""
    try:
        return (config.get("experiment") or config)["model"]["family"] or ""
    except (KeyError, TypeError):
        return ""


def _method_name(config: dict) -> str:
    return (config.get("experiment") or config)["method"]["name"]  # an identity, or an earlier store's config


MEMORY_KINDS = {"cpu_peak_rss": "CPU RSS", "cuda_max_allocated": "GPU peak allocated"}


def run_details(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """From each final cell's metrics.json: its training curves (dataset, model, method, seed, kind, step, value;
    kind: loss or dev_score) and what it ran on (device, precision, library versions), in words."""
    rows, ran = [], {}
    for r in df.itertuples():
        path = Path(r.output_dir) / "metrics.json"
        try:
            m = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        training = m.get("training") or {}
        for kind, key in (("loss", "loss_curve"), ("dev_score", "dev_score_curve")):
            for step, value in training.get(key) or []:
                rows.append((r.dataset, r.model, r.method, r.seed, kind, step, value))
        versions = ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items())
        where = f"{m.get('device', '?')} in {m.get('compute_dtype', '?')}"
        ran.setdefault(where, set()).add(versions)
    curves = pd.DataFrame(rows, columns=["dataset", "model", "method", "seed", "kind", "step", "value"])
    return curves, [f"{where} ({'; '.join(sorted(v))})" for where, v in ran.items()]


def search_curves(store_url: str, study: str, search: list[dict]) -> pd.DataFrame:
    """Each search candidate's dev score against the step, as far as it trained (dataset, model, method,
    candidate, chosen, step, value): a candidate stopped at a rung says it in its paused row, one that finished
    in its metrics.json."""
    rows = []
    if not search:
        return pd.DataFrame(rows, columns=["dataset", "model", "method", "candidate", "chosen", "step", "value"])
    stored = {r["config_hash"]: r for r in Store(store_url).rows(study) if r["status"] in ("paused", "done")}
    for c in search:
        r = stored.get(c.get("identity"))
        if r is None:
            continue
        if r["status"] == "paused":
            curve = json.loads(r["metrics"] or "{}").get("dev_score_curve") or []
        else:
            try:
                curve = json.loads((Path(r["output_dir"]) / "metrics.json").read_text())["training"]["dev_score_curve"]
            except (OSError, ValueError, KeyError, TypeError):
                curve = []
        rows += [(*group_key(c), c["candidate"], bool(c["chosen"]), step, value) for step, value in curve]
    return pd.DataFrame(rows, columns=["dataset", "model", "method", "candidate", "chosen", "step", "value"])
