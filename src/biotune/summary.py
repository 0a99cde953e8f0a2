"""What a finished run is: the one definition of a run folder's `metrics.json` (written by `Experiment.write`,
read by the CLI, the study runner and store, export, tracking and `biotune eval`).

`RunSummary` is typed; for code written against the JSON file it also answers `summary["metrics"]` and
`summary.get("dev")` with the same keys. A file written by a later version keeps its extra fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .io import atomic_write_json

FILE = "metrics.json"


def is_subset(metrics: dict) -> bool:
    """Whether a run's scored examples are part of its split (`eval.limit` below the split's size): a score on
    them is not the split's score (no BLURB-comparable claim). A run recorded before `n_total` was: not known, no."""
    total = metrics.get("n_total")
    return total is not None and metrics.get("n") is not None and metrics["n"] < total


class RunSummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    dataset: str  # the dataset's name (a dataset file by its `name:`)
    task: str | None = None  # task type (ner, pico, relation, similarity, doc_classification, qa)
    model: str  # the model's path as the experiment names it
    family: str
    method: str
    seed: int
    identity_hash: str | None = None
    metrics: dict[str, Any]  # the evaluated split's score (x100) and its parts, n, n_unparsed, split
    dev: dict[str, Any] | None = None  # the kept model's dev score (model selection): score, n, from
    blurb_comparable: bool = True  # a BLURB dataset's official test split, trained on its official train split
    resources: dict[str, Any] = Field(default_factory=dict)  # parameters, seconds, tokens, peak memory, bytes
    training: dict[str, Any] | None = None  # loss and dev-score curves, kept step, resumed_from (None: no training)
    device: str | None = None
    compute_dtype: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)

    @property
    def score(self) -> float:
        return self.metrics["score"]

    @property
    def dev_score(self) -> float | None:
        return (self.dev or {}).get("score")

    @classmethod
    def read(cls, run_dir: str | Path) -> RunSummary:
        return cls.model_validate_json((Path(run_dir) / FILE).read_text())

    @staticmethod
    def exists(run_dir: str | Path) -> bool:
        """A run folder holding this file has finished (it is written last)."""
        return (Path(run_dir) / FILE).is_file()

    def write(self, run_dir: str | Path) -> None:

        atomic_write_json(Path(run_dir) / FILE, self.as_json())

    def as_json(self) -> dict[str, Any]:
        return json.loads(self.model_dump_json())

    # the JSON file's keys, for code written against it
    def __contains__(self, key: str) -> bool:
        return key in type(self).model_fields or key in (self.__pydantic_extra__ or {})

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self else default

    def keys(self):
        return self.as_json().keys()
