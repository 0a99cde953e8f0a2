"""A dataset in one YAML file: where its splits are, how their columns map onto the task type's schema, its
labels with the words an LLM writes for them, and its metric. The 13 BLURB datasets are such files
(`data/builtin/`); a user's own dataset is one more (README "Your own dataset").

    name: my-relations                # letters, digits, . _ + -
    task: relation                    # ner, pico, relation, similarity, doc_classification, qa
    description: Gene-disease associations in PubMed sentences.
    instruction: ...                  # optional: the prompt's instruction (default: the task type's)
    source:
      format: csv                     # conll, tsv, csv, jsonl, hf (and BLURB's own: hoc_tsv, pubmedqa_json)
      splits: {train: train.csv, dev: dev.csv, test: test.csv}    # relative to `root`
      root: data                      # a folder relative to this file, a URL, or `blurb` (default: this folder)
      header: true                    # tsv/csv: the first line names the columns
    fields: {text: sentence}          # schema field: source column, where the names differ
    labels: {"1": "yes", "0": "no"}   # label as the files write it: answer text (or a list: the label itself)
    negative: "0"                     # relation: the label micro F1 leaves out
    metric: auto                      # auto (the task type's BLURB rule) or one of biotune.tasks.METRICS
    documents: '^([0-9]+)[.]'         # optional: the document an example id comes from (significance resamples them)
    blurb: false                      # counts toward the BLURB-style macro score
    published: {"our 2024 paper": 81.0}  # optional: published test scores (x100), shown beside a study's table

Errors name this file, the line and the field, and say the fix. Reading a split checks every line of its file
(the reader names file:line).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import fields as dataclass_fields
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from biotune.errors import BiotuneError, excerpt
from biotune.fields import ConfigFieldError, known_name
from biotune.paths import check_name
from biotune.tasks import TASKS, metric_choices
from biotune.yamlfile import line_of, read_yaml_file

from .formats import FORMATS
from .location import ROOTS_ENV, data_roots, is_url, name_problem, url_problem, within
from .spec import BLURB_ROOT, DATASETS, SPLITS, DatasetSpec

Split = Literal["train", "dev", "test"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Strict):
    format: str
    splits: dict[Split, str]  # split -> file (relative to root), URL, or the hub's split name (format hf)
    root: str | None = None  # folder relative to the dataset file, URL, or `blurb`; default: the file's folder
    header: bool = False
    columns: list[str] | None = None  # column names in file order (tables without a header line; "_" = ignore)
    label_separator: str = ";"  # doc_classification: labels in one column, separated by this
    hf: str | None = None  # hub dataset id, e.g. ncbi/ncbi_disease (format hf)
    config: str | None = None  # hub dataset configuration
    revision: str | None = None  # hub branch, tag or commit
    missing_hint: str = ""  # how a user gets a split that is not distributed with the data

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:

        return known_name(FORMATS, v)

    @field_validator("splits")
    @classmethod
    def _splits(cls, v: dict) -> dict:
        if not v:
            raise ValueError("name at least one split file, e.g. {test: test.csv}")
        for split, name in v.items():
            problem = url_problem(name) if is_url(name) else name_problem(name)
            if problem:
                raise ConfigFieldError(
                    ["source", "splits", split], f"{excerpt(name)} {problem}" if not is_url(name) else problem
                )
        return v

    @field_validator("root")
    @classmethod
    def _root(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or not v.isprintable()):
            raise ConfigFieldError(
                ["source", "root"],
                "names no folder (empty, or with a control character): give a "
                "folder beside this file (e.g. data), or leave root out (this file's folder)",
            )
        if v and is_url(v) and url_problem(v):
            raise ConfigFieldError(["source", "root"], url_problem(v))
        return v

    @model_validator(mode="after")
    def _hub(self) -> SourceConfig:
        if self.format == "hf" and not self.hf:
            raise ValueError("format hf needs `hf: <org>/<dataset>` (the hub dataset id)")
        if self.hf and self.format != "hf":
            raise ValueError(f"`hf` names a hub dataset: use format hf (not {self.format})")
        return self


class DatasetFile(_Strict):
    name: str
    title: str | None = None
    task: str
    description: str = ""
    instruction: str = ""
    source: SourceConfig
    fields: dict[str, str] = Field(default_factory=dict)
    labels: list[str] | dict[str, str | None] | None = None
    negative: str | None = None
    tags: list[str] | None = None
    entity: str = ""  # ner with one untyped kind of mention (tags B, I, O): what it is, in words ("disease")
    # ner with typed tags (B-Chemical, I-Chemical, ...): each type as the tags write it, with a short description
    # for the prompt; the tags default to O plus B-/I- of each type
    entities: dict[str, str | None] = Field(default_factory=dict)
    metric: str = "auto"
    blurb: bool = False
    # a regular expression on an example's id whose first group (else the whole match) names the document the
    # example comes from: the report's significance tests resample documents, not sentences, where it is given
    documents: str = ""
    # published test scores of named systems on this dataset (name -> score x100, by this dataset's metric): shown
    # beside its row in a study's table, never part of a result (the BLURB files: PubMedBERT's, from the BLURB paper)
    published: dict[str, float] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:

        return check_name(v, "dataset name")

    @field_validator("documents")
    @classmethod
    def _documents(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(
                f"not a regular expression ({e}); e.g. '^(\\d+)\\.' for ids like 10076535.T44.T63"
            ) from None
        return v

    @field_validator("published")
    @classmethod
    def _published(cls, v: dict[str, float]) -> dict[str, float]:
        for name, score in v.items():
            if not -100 <= score <= 100:
                raise ValueError(f"{name!r}: {score} is not a score x100 (-100 to 100); e.g. 84.52, not 0.8452")
        return v

    @field_validator("task")
    @classmethod
    def _task(cls, v: str) -> str:
        return known_name(TASKS, v)

    @field_validator("labels", mode="before")
    @classmethod
    def _yaml_booleans(cls, v):
        items = v if isinstance(v, list) else list(v.values()) + list(v) if isinstance(v, dict) else []
        if any(isinstance(x, bool) for x in items):
            raise ValueError('quote yes / no / true / false: YAML reads them as booleans (labels: ["yes", "no"])')
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v):
        if isinstance(v, dict):
            for label, text in v.items():
                if text is None or not str(text).strip():
                    raise ValueError(
                        f"label {label!r} has no verbalizer: give the answer text a model writes for "
                        f"it, e.g. {label!r}: {label.lower()!r}"
                    )
            seen: dict[str, str] = {}
            for label, text in v.items():
                other = seen.setdefault(" ".join(str(text).lower().split()), label)
                if other != label:
                    raise ValueError(
                        f"labels {other!r} and {label!r} have the same answer text {text!r}: a model's "
                        f"answer could never name {label!r}; give each label its own text"
                    )
        return v

    @model_validator(mode="after")
    def _fits_task(self) -> DatasetFile:
        task = TASKS.get(self.task)
        for key in self.fields:
            if key not in task.source_fields:
                raise ConfigFieldError(
                    ["fields", key],
                    f"{key!r} is not a field of a {self.task} example; valid: {', '.join(task.source_fields)}",
                )
        task.check_file(self)  # what the task type itself needs of a dataset file
        if self.negative is not None and self.negative not in (self.labels or []):
            raise ConfigFieldError(["negative"], f"{self.negative!r} is not one of the labels")
        valid = metric_choices(self.task)
        if self.metric != "auto" and self.metric not in valid:
            raise ConfigFieldError(
                ["metric"], f"{self.metric!r} does not score a {self.task} dataset; valid: auto, {', '.join(valid)}"
            )
        return self


def _where(path: Path, root, loc: list) -> str:
    line = line_of(root, loc) if root is not None else None
    return f"{path}:{line}" if line else str(path)


def parse_dataset_file(path: str | Path) -> tuple[DatasetFile, object]:
    """The validated file and its YAML node tree (for line numbers); BiotuneError naming file:line and field."""
    path = Path(path)
    data, root = read_yaml_file(path, "dataset", "name, task, source")
    try:
        df = DatasetFile(**data)
    except ValidationError as e:
        err = e.errors()[0]
        ctx = (err.get("ctx") or {}).get("error")
        loc = (
            ctx.loc
            if isinstance(ctx, ConfigFieldError)
            else [x for x in err["loc"] if not str(x).startswith(("list[", "dict["))]
        )
        msg = str(ctx) if isinstance(ctx, ConfigFieldError) else err["msg"].removeprefix("Value error, ")
        field = ".".join(str(x) for x in loc) or "(top level)"
        raise BiotuneError(f"{_where(path, root, loc)}: field '{field}': {msg}") from None
    local = df.source.root != BLURB_ROOT and not (df.source.root and is_url(df.source.root))
    if local and df.source.format != "hf":
        folder = (path.parent / (df.source.root or ".")).resolve()
        if not within(folder, reach_of(path)):
            raise BiotuneError(
                f"{_where(path, root, ['source', 'root'])}: field 'source.root': {folder} is outside the dataset "
                f"file's folder {path.parent.resolve()}: move the data below it, or allow the folder with "
                f"{ROOTS_ENV}={folder}"
            )
    return df, root


def reach_of(path: Path) -> tuple[str, ...]:
    """The folders a dataset file's local files must lie in: its own folder and those the user allows."""
    return (str(Path(path).resolve().parent), *map(str, data_roots()))


def to_spec(df: DatasetFile, path: Path, builtin: bool = False) -> DatasetSpec:
    """The resolved dataset a validated file describes. A field the spec shares with the file (or its `source:`)
    by name is taken as the file gives it (lists as tuples); what differs is resolved here: where the files lie,
    the splits in order, the labels' answer texts, the hub's names, the task type's schema."""
    src = df.source
    if src.root == BLURB_ROOT:
        root = BLURB_ROOT
    elif src.root and is_url(src.root):
        root = src.root.rstrip("/")
    else:
        root = str((path.parent / (src.root or ".")).resolve())
    labels = df.labels or []
    resolved = {
        "title": df.title or df.name,
        "schema": TASKS.get(df.task).schema,
        "files": {s: src.splits[s] for s in SPLITS if s in src.splits},
        "labels": tuple(labels),
        "label_names": dict(labels) if isinstance(labels, dict) else {},
        "entities": {t: d or t for t, d in df.entities.items()},
        "root": root,
        "hf_config": src.config,
        "hf_revision": src.revision,
        "definition": str(path.resolve()),
        "builtin": builtin,
        "reach": () if root == BLURB_ROOT or is_url(root) else reach_of(path),
    }
    shared = {f.name for f in dataclass_fields(DatasetSpec)} - set(resolved)
    given = {
        name: tuple(value) if isinstance(value, list) else value
        for part in (src, df)  # the file's own fields over its source's
        for name, value in part.model_dump().items()
        if name in shared and value is not None
    }
    return DatasetSpec(**given, **resolved)


def load_dataset_file(path: str | Path) -> DatasetSpec:
    """The dataset a YAML file defines; read again only when the file changed. Its name must not be a built-in
    dataset's."""
    p = Path(path).resolve()
    if not p.is_file():
        raise BiotuneError(f"dataset file {path} does not exist")
    spec = _load_file(str(p), p.stat().st_mtime_ns)
    if spec.name in DATASETS and DATASETS.get(spec.name).definition != spec.definition:
        raise BiotuneError(f"{path}: field 'name': {spec.name!r} is a built-in dataset; give yours another name")
    return spec


@lru_cache(maxsize=64)
def _load_file(path: str, mtime: int) -> DatasetSpec:
    df, _ = parse_dataset_file(path)
    return to_spec(df, Path(path))


def definition_sha256(spec: DatasetSpec) -> str | None:
    """SHA-256 of the dataset file (part of a result's identity for a user's dataset)."""
    if not spec.definition:
        return None
    return hashlib.sha256(Path(spec.definition).read_bytes()).hexdigest()


def builtin_dir() -> Path:
    return Path(__file__).parent / "builtin"
