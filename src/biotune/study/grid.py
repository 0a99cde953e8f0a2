"""Study files and their expansion into cells.

    name: demo
    datasets: [gad, hoc]            # or: blurb
    models:
      - {name: smollm2, family: causal, path: smollm2-135m}
    methods: [zero_shot, {name: few_shot, params: {shots: 3}}, lora]
    seeds: [0, 1]
    defaults: {training: {max_steps: 20}}               # every experiment
    overrides:                                           # per axis value, deep-merged in this order
      dataset: {ebm-pico: {training: {train_split: dev}}}
      method: {fft: {training: {learning_rate: 1.0e-5}}}
      model: {smollm2: {eval: {batch_size: 16}}}

A model entry may list `methods: [fft]` to run only those of the study's methods (e.g. a BERT baseline).

A (model, method) pair the method does not fit (zero-shot on an encoder) is left out of the grid and listed;
a deterministic method (zero-shot) runs for the first seed only. A `search:` block (study/search.py) makes a
(dataset, model, method) a model selection on dev: its candidates on the search seed, the best anew on every seed.
Each cell is identified by everything that decides its result (biotune.identity).
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from biotune.config import ExperimentConfig, dataset_ref, field_error, validate_experiment
from biotune.data import DATASETS, get_spec
from biotune.errors import BiotuneError
from biotune.identity import hash_of, identity
from biotune.methods import METHODS
from biotune.models import FAMILIES
from biotune.paths import check_name, inside
from biotune.yamlfile import line_of, read_yaml_file

from .search import SearchConfig, SearchGroup, SearchRef, candidates, nested


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())  # the rest are ModelConfig fields
    # how the study and its report name the model
    name: str
    # causal, seq2seq, glm or encoder
    family: str
    methods: list[str] | None = None  # only these of the study's methods (by key) for this model

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "model name")


class MethodEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # the method's name
    name: str
    label: str | None = None  # to run one method twice with other params (e.g. few_shot_knn)
    # its parameters, as an experiment's method.params
    params: dict[str, Any] = Field(default_factory=dict)
    datasets: list[str] | None = None  # only these of the study's datasets (by name) for this method

    @field_validator("label")
    @classmethod
    def _label(cls, v: str | None) -> str | None:
        return v if v is None else check_name(v, "method label")

    @property
    def key(self) -> str:
        return self.label or self.name


class ReportSettings(BaseModel):
    """What `biotune report` (and the end of `biotune study`) uses unless its options say otherwise."""

    model_config = ConfigDict(extra="forbid")
    # peak-memory budgets of the recommendation table (MB; .inf: none)
    memory_budgets_mb: list[float] = Field(default_factory=lambda: [2048, 8192, float("inf")])
    # compute budgets of the recommendation table (seconds, a configuration's search included)
    time_budgets_s: list[float] = Field(default_factory=lambda: [300, 3600, float("inf")])
    bootstrap_samples: int = Field(10000, ge=100)  # resamples of seeds and test examples per comparison


class StudyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # the study's name: its rows in the store and its folder (default output_dir runs/<name>)
    name: str
    # dataset names or dataset files, or blurb / all (every BLURB dataset)
    datasets: list[str] | str
    # the models (below): each a name plus the keys of an experiment's model block
    models: list[ModelEntry]
    # the methods, each a name or a block (below)
    methods: list[MethodEntry | str]
    # the seeds every reported configuration runs (a search runs its candidates on a seed of its own)
    seeds: list[int] = Field(default_factory=lambda: [0])
    # experiment keys every cell gets (training:, eval:, runtime:, keep:, ...)
    defaults: dict[str, Any] = Field(default_factory=dict)
    # experiment keys for some cells: {dataset|model|method|seed: {<name>: {<keys>}}}, applied in that order
    overrides: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    store: str | None = None  # SQLAlchemy URL; default sqlite:///<output_dir>/results.sqlite
    output_dir: str | None = None  # default runs/<name>
    # the folder with the BLURB files, for every cell
    data_dir: str | None = None
    # what the report uses (below)
    report: ReportSettings = Field(default_factory=ReportSettings)
    search: SearchConfig = Field(default_factory=SearchConfig)  # model selection on dev (study/search.py)
    # equal: the methods of a dataset are meant to train on the same budget (epochs over the same examples), and
    # a study where they do not is warned about; unequal: the study says it gives them different budgets
    budgets: Literal["equal", "unequal"] = "equal"
    # folders of finished runs (`biotune run` folders, or folders holding them): a cell whose identity one of them has
    # takes its result instead of running (study/adopt.py); relative to where biotune runs
    adopt: list[str] = Field(default_factory=list)
    # dataset: each dataset's cells, searches and chosen runs before the next dataset's, so a long study lands whole
    # datasets as it goes; phase: every dataset's cells, then each search rung over all datasets, then every chosen
    # run (the most work at once, for --executor ray)
    order: Literal["dataset", "phase"] = "dataset"
    _groups: list = PrivateAttr(default_factory=list)  # the search groups of the expanded grid (load_study)

    @property
    def groups(self) -> list[SearchGroup]:
        return self._groups

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "study name")

    @field_validator("datasets", "models", "methods", "seeds")
    @classmethod
    def _not_empty(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("empty: list at least one")
        return v

    @field_validator("overrides")
    @classmethod
    def _axes(cls, v):
        bad = set(v) - {"dataset", "model", "method", "seed"}
        if bad:
            raise ValueError(f"unknown axis {sorted(bad)[0]!r}; valid: dataset, model, method, seed")
        return v

    def method_entries(self) -> list[MethodEntry]:
        return [MethodEntry(name=m) if isinstance(m, str) else m for m in self.methods]

    def dataset_names(self) -> list[str]:

        if self.datasets in ("blurb", "all", ["blurb"], ["all"]):
            return [n for n, s in DATASETS.items() if s.blurb]
        return [self.datasets] if isinstance(self.datasets, str) else list(self.datasets)

    @property
    def out(self) -> Path:
        return Path(self.output_dir or f"runs/{self.name}")

    @property
    def store_url(self) -> str:
        return self.store or f"sqlite:///{self.out / 'results.sqlite'}"


@dataclass
class Cell:
    """One experiment of the grid: its place (`key`) and its identity (biotune.identity: everything that decides
    its result). Its folder is <study>/cells/<cell_id>/<identity hash>, so a changed cell never overwrites the
    result it replaces (kept as history)."""

    dataset: str
    model: str
    method: str
    seed: int
    experiment: ExperimentConfig
    identity: dict
    identity_hash: str
    search: SearchRef | None = None  # a candidate (or the chosen candidate) of a search on dev

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.dataset, self.model, self.method, self.seed)

    @property
    def cell_id(self) -> str:
        return f"{self.dataset}__{self.model}__{self.method}__s{self.seed}"

    @property
    def label(self) -> str:
        return self.cell_id + (f" [{self.search.label()}]" if self.search else "")


def deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


_BUDGET_FIELDS = (
    "training.epochs",
    "training.max_steps",
    "training.train_limit",
    "training.batch_size",
    "training.grad_accum",
)


def budgets(cells: list[Cell]) -> dict[str, dict[str, list[str]]]:
    """dataset -> training budget (TrainingConfig.budget) -> the 'model / method' configurations trained on it
    (a search over the budget's own fields left out: its candidates differ on purpose)."""

    out: dict = {}
    for c in cells:
        if not METHODS.get(c.experiment.method.name).trains:
            continue
        if c.search is not None and any(f in _BUDGET_FIELDS for f in c.search.values):
            continue
        names = out.setdefault(c.dataset, {}).setdefault(c.experiment.training.budget(), [])
        if f"{c.model} / {c.method}" not in names:
            names.append(f"{c.model} / {c.method}")
    return out


def unequal_budgets(study: StudyConfig, cells: list[Cell]) -> str | None:
    """A warning where the methods of a dataset train on different budgets and the study does not say it means
    to (`budgets: unequal`): a method given more epochs is compared on better terms."""
    if study.budgets == "unequal":
        return None
    found = {d: b for d, b in budgets(cells).items() if len(b) > 1}
    if not found:
        return None
    said = "; ".join(
        f"{d}: " + ", ".join(f"{b} ({', '.join(names)})" for b, names in by.items()) for d, by in found.items()
    )
    return (
        f"unequal training budgets ({said}): the methods are not compared on equal terms. Give them one "
        "budget, or say `budgets: unequal` in the study if that is the design"
    )


def load_study(path: str | Path) -> tuple[StudyConfig, list[Cell], list[str]]:
    path = Path(path)
    data, root = read_yaml_file(path, "study", "name, datasets, models, methods, seeds")
    try:
        study = StudyConfig(**data)
    except ValidationError as e:
        raise field_error(e, str(path), root) from None
    cells, left_out, study._groups = expand(study, str(path), root)
    return study, cells, left_out


def only_datasets(study: StudyConfig, cells: list[Cell], names: list[str]) -> tuple[StudyConfig, list[Cell]]:
    """A slice of the study: its cells and searches on `names` (dataset names, as `biotune data list` and the
    study's table say them), the rest left as they are in the store. A long study run in slices lands the datasets
    a slice can finish first; the store, the identities and every decision stay the study's own. An unknown name is
    a one-line error listing the study's datasets."""
    have = list(dict.fromkeys(c.dataset for c in cells))  # a search's candidates are cells too
    if not names:
        raise BiotuneError(f"--datasets: name at least one of study {study.name}'s datasets: {', '.join(have)}")
    unknown = [n for n in names if n not in have]
    if unknown:
        raise BiotuneError(
            f"--datasets: {', '.join(map(repr, unknown))} not in study {study.name}; its datasets: {', '.join(have)}"
        )
    part = study.model_copy()
    part._groups = [g for g in study.groups if g.key[0] in names]
    return part, [c for c in cells if c.dataset in names]


def expand(study: StudyConfig, source: str = "<study>", root=None) -> tuple[list[Cell], list[str], list[SearchGroup]]:
    """The grid's cells (every experiment validated; a searched (dataset, model, method) contributes its
    candidates, on the search seed), the (model, method) pairs left out as not fitting, and the search groups.
    Named steps: the datasets, the axes' names, the search block, the overrides and the search seed are checked,
    each with a one-line error naming the study file's line and field; then the grid is laid out."""
    fail = _Fail(source, root)
    datasets = _datasets(study, source, fail)
    methods = study.method_entries()
    _check_axes(study, methods, fail, [get_spec(d).name for d in datasets])
    _check_search(study, [m.name for m in study.models], [m.key for m in methods], fail)
    _check_overrides(study, datasets, methods, fail)
    return _lay_out(study, datasets, methods, _search_seed(study, fail), source)


class _Fail:
    """Raises the one-line error of a study file's field: `file:line: field 'a.b': what is wrong`."""

    def __init__(self, source: str, root):
        self.source, self.root = source, root

    def __call__(self, field: list, msg: str):
        line = line_of(self.root, field) if self.root is not None else None
        where = f"{self.source}{f':{line}' if line else ''}"
        raise BiotuneError(f"{where}: field '{'.'.join(map(str, field))}': {msg}")


def _datasets(study: StudyConfig, source: str, fail: _Fail) -> list[str]:
    """The study's datasets as the cells' configs name them (built-in names, dataset files made absolute)."""

    base = Path(source).parent if Path(source).is_file() else Path.cwd()
    datasets, names = [], []
    for i, d in enumerate(study.dataset_names()):
        where = ["datasets", i] if isinstance(study.datasets, list) else ["datasets"]
        try:
            spec = get_spec(dataset_ref(d, base))
        except BiotuneError as e:
            if d.endswith((".yaml", ".yml")):
                fail(where, f"{d}: {e}")
            fail(
                where,
                f"unknown dataset {d!r}; valid: blurb, {', '.join(DATASETS.names())}, or a dataset file (my_task.yaml)",
            )
        if spec.name in names:
            fail(where, f"two datasets are named {spec.name!r}: give one dataset file another name")
        datasets.append(spec.ref)
        names.append(spec.name)
    return datasets


def _check_axes(study: StudyConfig, methods: list, fail: _Fail, dataset_names: list[str]) -> None:
    """Model families and methods that exist, each method key and model name once, a model's methods and a
    method's datasets among the study's."""

    for i, m in enumerate(study.models):
        if m.family not in FAMILIES:
            fail(["models", i, "family"], f"unknown model family {m.family!r}; valid: {', '.join(FAMILIES.names())}")
    for i, m in enumerate(methods):
        if m.name not in METHODS:
            fail(["methods", i], f"unknown method {m.name!r}; valid: {', '.join(METHODS.names())}")
    keys = [m.key for m in methods]
    for i, k in enumerate(keys):
        if k in keys[:i]:
            fail(
                ["methods", i],
                f"{k!r} is listed twice: its cells would share one name and the report would show "
                f"one; give one a label (e.g. {{name: {methods[i].name}, label: {k}_2, params: ...}})",
            )
    for i, m in enumerate(methods):
        for j, d in enumerate(m.datasets or []):
            if d not in dataset_names:
                fail(
                    ["methods", i, "datasets", j],
                    f"{d!r} is not one of the study's datasets; valid: {', '.join(dataset_names)}",
                )
    for i, m in enumerate(study.models):
        for j, k in enumerate(m.methods or []):
            if k not in keys:
                fail(["models", i, "methods", j], f"{k!r} is not one of the study's methods; valid: {', '.join(keys)}")
    names = [m.name for m in study.models]
    if len(set(names)) != len(names):
        fail(["models"], "two models share a name; give each a distinct `name`")


def _check_search(study: StudyConfig, names: list[str], keys: list[str], fail: _Fail) -> None:
    """The search block names the study's models and methods, each with values to try."""
    for axis, known in (("model", names), ("method", keys)):
        for name, grid in getattr(study.search, axis).items():
            if name not in known:
                fail(["search", axis, name], f"{name!r} is not one of the study's {axis}s; valid: {', '.join(known)}")
            for f, values in grid.items():
                if not isinstance(values, list) or not values:
                    fail(["search", axis, name, f], "a non-empty list of values to try")
    for name, by_method in study.search.model_method.items():
        if name not in names:
            fail(
                ["search", "model_method", name],
                f"{name!r} is not one of the study's models; valid: {', '.join(names)}",
            )
        for key, grid in by_method.items():
            if key not in keys:
                fail(
                    ["search", "model_method", name, key],
                    f"{key!r} is not one of the study's methods; valid: {', '.join(keys)}",
                )
            for f, values in grid.items():
                if not values:
                    fail(["search", "model_method", name, key, f], "a non-empty list of values to try")


def _check_overrides(study: StudyConfig, datasets: list[str], methods: list, fail: _Fail) -> None:
    """Each override names a value of its axis (an override naming nothing would change nothing)."""

    known = {
        "dataset": list(dict.fromkeys(get_spec(d).name for d in datasets)),
        "model": [m.name for m in study.models],
        "method": [m.key for m in methods],
        "seed": [str(x) for x in study.seeds],
    }
    for axis, by_value in study.overrides.items():
        for value in by_value:
            if str(value) not in known[axis]:
                near = difflib.get_close_matches(str(value), known[axis], n=1)
                fail(
                    ["overrides", axis, value],
                    f"{value!r} is not one of the study's {axis}s, so this override "
                    "would change nothing"
                    + (f": did you mean {near[0]!r}?" if near else f"; the study's {axis}s: {', '.join(known[axis])}"),
                )


def _search_seed(study: StudyConfig, fail: _Fail) -> int:
    """The seed search candidates run on: `search.seed`, never a reported seed (default: one above the highest)."""
    search_seed = study.search.seed if study.search.seed is not None else max(study.seeds) + 1
    if study.search.seed is not None and search_seed in study.seeds:
        fail(
            ["search", "seed"],
            f"{search_seed} is one of the study's seeds: a search run would be reported as a "
            "result (the winner's curse); give a seed outside `seeds`, or leave it out (default: "
            "one above the highest)",
        )
    if len(set(study.seeds)) != len(study.seeds):
        fail(["seeds"], f"a seed is listed twice ({study.seeds}): list each seed once")
    return search_seed


def _lay_out(
    study: StudyConfig, datasets: list[str], methods: list, search_seed: int, source: str
) -> tuple[list[Cell], list[str], list[SearchGroup]]:
    """Per dataset, model and method that fits it: its cells on every seed (one for a deterministic method), or,
    where something is searched, its search group's candidates on the search seed."""

    cells, left_out, groups = [], [], []
    for dataset in datasets:
        for model in study.models:
            family = FAMILIES.get(model.family)
            head = family.resolve_head(model, get_spec(dataset))
            for method in methods:
                if model.methods is not None and method.key not in model.methods:
                    continue
                if method.datasets is not None and get_spec(dataset).name not in method.datasets:
                    continue
                meth = METHODS.get(method.name)
                if not meth.fits(family, head):
                    pair = f"{model.name} x {method.key}" + ("" if family.generative else f" ({head})")
                    if pair not in left_out:
                        left_out.append(pair)
                    continue
                seeds = study.seeds[:1] if meth.deterministic else study.seeds
                group = _search_group(study, dataset, model, method, meth, seeds, search_seed, source)
                if group is None:
                    cells += [_cell(study, dataset, model, method, seed, source) for seed in seeds]
                    continue
                cells += group.candidates
                groups.append(group)
    return cells, left_out, groups


def _search_group(study, dataset, model, method, meth, seeds, search_seed, source) -> SearchGroup | None:
    """The search of (dataset, model, method) with its candidates, or None where nothing is searched."""

    # the method's own space, where the study has a search block at all
    space = meth.search_space if "search" in study.model_fields_set else {}
    grid = study.search.grid_for(model.name, method.key, meth.trains, space)
    if not grid:
        return None
    named = study.search.grid_for(model.name, method.key, meth.trains)
    defaulted = sorted(f.split(".")[-1] for f in grid if f not in named)
    group = SearchGroup(
        (get_spec(dataset).name, model.name, method.key),
        list(seeds),
        search_seed,
        grid=grid,
        strategy=study.search.strategy if meth.trains else "grid",
        defaulted=f"{', '.join(defaulted)}: {method.name}'s own space, {meth.search_source}" if defaulted else "",
    )

    def make(values, index, seed):
        cell = _cell(study, dataset, model, method, seed, source, values)
        cell.search = SearchRef(group.key, values, index, final=True)
        return cell

    group.make = make
    for i, values in enumerate(candidates(grid)):
        cell = _cell(study, dataset, model, method, search_seed, source, values)
        cell.search = SearchRef(group.key, values, i)
        group.candidates.append(cell)
    return group


def _cell(
    study: StudyConfig,
    dataset: str,
    model: ModelEntry,
    method: MethodEntry,
    seed: int,
    source: str,
    candidate: dict | None = None,
) -> Cell:

    ref, dataset = dataset, get_spec(dataset).name  # the config names a dataset file by its path; cells by name
    model_fields = {k: v for k, v in model.model_dump().items() if k not in ("name", "methods")}
    data = deep_merge(
        study.defaults,
        {
            "dataset": ref,
            "model": model_fields,
            "method": {"name": method.name, "params": method.params},
            "seed": seed,
            "data_dir": study.data_dir,
        },
    )
    for axis, value in (("dataset", dataset), ("model", model.name), ("method", method.key), ("seed", str(seed))):
        data = deep_merge(data, study.overrides.get(axis, {}).get(value, {}))
    if candidate:
        data = deep_merge(data, nested(candidate))

    if data.get("keep", "auto") == "auto" and METHODS.get(method.name).trains_base:
        data["keep"] = "none"  # a study keeps no fully fine-tuned model unless told (keep: model)
    cell_id = f"{dataset}__{model.name}__{method.key}__s{seed}"
    data["name"] = cell_id
    data["tags"] = {**data.get("tags", {}), "study": study.name, "cell": cell_id}  # for trackers (not identity)
    try:
        experiment = validate_experiment(data, f"{source} (cell {cell_id})")
    except BiotuneError as e:
        raise BiotuneError(str(e)) from None
    ident = identity(experiment)
    ident_hash = hash_of(ident)
    folder = study.out / "cells" / cell_id / ident_hash
    inside(folder, study.out)  # names are checked (biotune.paths); this guards the rest
    experiment.output_dir = str(folder)
    return Cell(dataset, model.name, method.key, seed, experiment, ident, ident_hash)
