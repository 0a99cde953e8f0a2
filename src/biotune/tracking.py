"""Experiment tracking through the Trainer's own integrations: `training.report_to: [mlflow, tensorboard, wandb]`.

The Trainer logs the training curve and the dev evaluations (its MLflowCallback, TensorBoardCallback,
WandbCallback: their settings are the integrations' own environment variables, e.g. `MLFLOW_TRACKING_URI`,
`MLFLOW_EXPERIMENT_NAME`, `WANDB_PROJECT`). biotune adds, per run:

- tags: dataset, model, method, seed, the run's name and identity hash, and in a study the study's name and the
  cell id (MLflow tags, W&B tags; TensorBoard writes them as text);
- when the result is written, the final metrics (test score and the metric's parts, dev score) and the resources
  (training seconds, peak memory, trainable parameters, ...) into the same run;
- TensorBoard event files under `<run folder>/tensorboard/` unless `TENSORBOARD_LOGGING_DIR` says otherwise.

Tracking decides nothing about a result: `training.report_to` is outside a result's identity.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

from .data import get_spec

TRACKERS = ("mlflow", "tensorboard", "wandb")


def tags_of(cfg, identity_hash: str | None = None) -> dict[str, str]:

    out = {
        "dataset": get_spec(cfg.dataset).name,
        "model": cfg.model.path,
        "method": cfg.method.name,
        "seed": str(cfg.seed),
        "run": cfg.resolved_name(),
    }
    if identity_hash:
        out["identity"] = identity_hash
    out.update({k: str(v) for k, v in cfg.tags.items()})  # a study's: study, cell
    return out


def tensorboard_dir(out: Path) -> str:
    return os.environ.get("TENSORBOARD_LOGGING_DIR") or str(out / "tensorboard")


@contextmanager
def environment(cfg, out: Path, identity_hash: str | None):
    """The integrations' environment for one run (restored afterwards): its tags, TensorBoard's folder, and a
    default MLflow experiment / W&B project (biotune, or the study's name)."""
    trackers = cfg.training.report_to
    tags = tags_of(cfg, identity_hash)
    group = tags.get("study", "biotune")
    values = {}
    if "mlflow" in trackers:
        values["MLFLOW_TAGS"] = json.dumps(tags)
        values.setdefault("MLFLOW_EXPERIMENT_NAME", os.environ.get("MLFLOW_EXPERIMENT_NAME") or group)
    if "tensorboard" in trackers:
        values["TENSORBOARD_LOGGING_DIR"] = tensorboard_dir(out)
    if "wandb" in trackers:
        values["WANDB_TAGS"] = ",".join(f"{k}:{v}" for k, v in tags.items())
        values.setdefault("WANDB_PROJECT", os.environ.get("WANDB_PROJECT") or group)
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_id_callback():
    """A Trainer callback that remembers the MLflow run the Trainer's MLflowCallback opened (it closes it when
    training ends), so the final metrics go into the same run."""
    from transformers import TrainerCallback

    class _RunId(TrainerCallback):
        run_id: str | None = None

        def on_train_begin(self, args, state, control, **kw):
            self._grab()

        def on_log(self, args, state, control, **kw):
            self._grab()

        def _grab(self):
            if self.run_id is None:
                import mlflow

                run = mlflow.active_run()
                self.run_id = run.info.run_id if run else None

    return _RunId()


def final_metrics(summary) -> dict[str, float]:
    """The numbers of a finished run (a RunSummary) worth a chart: test metrics (`test/...`), dev score,
    resources."""
    out = {}
    for k, v in summary.metrics.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"test/{k}"] = float(v)
    if isinstance(summary.dev_score, (int, float)):
        out["dev/score"] = float(summary.dev_score)
    for k, v in summary.resources.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"resources/{k}"] = float(v)
    return out


def log_final(cfg, out: Path, summary, mlflow_run_id: str | None = None) -> None:
    """Log a finished run's final metrics and resources to every tracker it reports to."""
    trackers = cfg.training.report_to
    if not trackers:
        return
    values = final_metrics(summary)
    tags = tags_of(cfg, summary.identity_hash)
    if "mlflow" in trackers:
        import mlflow

        if mlflow_run_id:
            ctx = mlflow.start_run(run_id=mlflow_run_id)
        else:  # nothing trained (in-context methods): a run of its own
            if os.environ.get("MLFLOW_EXPERIMENT_NAME") or tags.get("study"):
                mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME") or tags["study"])
            ctx = mlflow.start_run(run_name=cfg.resolved_name())
        with ctx:
            mlflow.set_tags(tags)
            mlflow.log_metrics({k.replace("/", "_"): v for k, v in values.items()})
    if "tensorboard" in trackers:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=tensorboard_dir(out))
        step = int((summary.training or {}).get("global_step") or 0)
        for k, v in values.items():
            writer.add_scalar(k, v, step)
        writer.add_text("tags", json.dumps(tags), step)
        writer.close()
    if "wandb" in trackers:
        import wandb

        run = wandb.run or wandb.init(name=cfg.resolved_name(), tags=[f"{k}:{v}" for k, v in tags.items()])
        run.summary.update(values)
        run.finish()
