"""`biotune eval`: zero-/few-shot evaluation of a generative model (causal, seq2seq, GLM) on BLURB datasets and
dataset files, through the same code as the zero-/few-shot cells of `biotune run` and studies: one experiment per
dataset (method zero_shot or few_shot, the `eval:` settings of an experiment file), the model loaded once, each
predicted by evaluate.py. Per dataset the run's files (`<out>/<dataset>/`: predictions.jsonl, metrics.json,
config.yaml, identity.json) and the table of all (`<out>/metrics.json`: settings, per-dataset metrics, BLURB).
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from . import metrics
from .config import EvalConfig
from .data import get_spec
from .errors import BiotuneError, MissingSplitError
from .evaluate import prompt_budget
from .io import atomic_write_json
from .models import family_of
from .runtime import provenance
from .train import evaluate_experiment


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_eval(cfg: EvalConfig) -> dict:
    """One experiment per dataset (EvalConfig.experiment), each predicted and written as `biotune run` does it,
    the model loaded once; a finished result of the same identity in the output folder is kept (an interrupted
    evaluation resumes at the next dataset). Then the table of all, with the BLURB score."""
    started = time.time()
    out_dir = Path(cfg.output_dir)
    family = family_of(cfg.model) if cfg.family == "auto" else cfg.family
    loaded = None
    results, skipped, specs, runs = {}, {}, {}, {}
    settings = None
    for i, dataset in enumerate(cfg.datasets, 1):
        spec = get_spec(dataset)
        name = spec.name  # results and prediction folders by name (a dataset file's too)
        _log(f"[{i}/{len(cfg.datasets)}] {name}")
        t0 = time.perf_counter()
        experiment = cfg.experiment(dataset, family)
        try:
            summary, loaded = evaluate_experiment(experiment, loaded, progress=cfg.progress, force=cfg.force)
        except MissingSplitError as e:
            if len(cfg.datasets) == 1:
                raise
            _log(f"  skipped: {e}")
            skipped[name] = str(e)
            continue
        result = dict(summary.metrics)
        result["eval_seconds"] = round(time.perf_counter() - t0, 3)  # this dataset: prompts, inference, scoring
        results[name], specs[name], runs[name] = result, spec, name
        settings = settings or {"device": summary.device, "dtype": summary.compute_dtype, "family": family}
        if loaded is not None:  # the prompt budget (a resumed evaluation that reused every result loaded nothing)
            settings["max_length"] = prompt_budget(loaded[0], experiment)
    if not results:
        raise BiotuneError("no dataset could be evaluated: " + " | ".join(skipped.values()))

    blurb = metrics.blurb_score(
        {n: r["score"] for n, r in results.items() if specs[n].blurb}, {n: specs[n].task for n in results}
    )
    summary = {
        "settings": {**cfg.model_dump(), "datasets": cfg.datasets, **settings},
        "datasets": results,
        "runs": runs,  # per dataset the folder (under this one) with its predictions and the run's metrics.json
        "blurb": {**blurb, "complete": blurb["n_task_types"] == 6 and not skipped},
        "skipped": skipped,
        "versions": provenance(),
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(),
        "elapsed_s": round(time.time() - started, 2),
    }
    atomic_write_json(out_dir / "metrics.json", summary)
    return summary
