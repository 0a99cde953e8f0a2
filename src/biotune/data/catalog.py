"""Dataset specs and the one function that loads a split: `load_split(name, split, data_dir)`.

A dataset is one `DatasetSpec` entry in the DATASETS registry (see `blurb.py` for the 13 BLURB entries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import datasets

from biotune.errors import MissingSplitError
from biotune.registry import Registry

from .formats import FORMATS
from .location import is_url, local_file, resolve_data_dir
from .schema import SCHEMAS

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True, eq=False)
class DatasetSpec:
    name: str  # CLI name, e.g. "bc5-chem"
    title: str  # as BLURB names it, e.g. "BC5-chem"
    task: str  # task type: ner, pico, relation, similarity, doc_classification, qa
    schema: str  # key of SCHEMAS
    format: str  # key of FORMATS
    files: dict[str, str]  # split -> path relative to the data dir
    labels: tuple[str, ...] = ()  # label set (relation, qa, doc classification) in file spelling
    label_names: dict[str, str] = field(default_factory=dict)  # label -> words a prompt uses
    negative: str | None = None  # the negative relation label, excluded from micro F1
    tags: tuple[str, ...] = ()  # tag set of token-tagging files
    entity: str = ""  # what an NER mention is, in words ("chemical")
    columns: tuple[str, ...] = ()  # tsv_table column -> schema field ("_" = ignore)
    header: bool = False
    instruction: str = ""  # overrides the task type's default instruction for this dataset
    missing_hint: str = ""  # how a user supplies a split that is not distributed with the data
    blurb: bool = True  # part of the BLURB score

    def path(self, split: str, data_dir: str) -> str:
        return f"{data_dir}/{self.files[split]}" if is_url(data_dir) else str(Path(data_dir) / self.files[split])


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register(spec: DatasetSpec) -> DatasetSpec:
    DATASETS.add(spec.name, spec)
    return spec


def get_spec(name: str) -> DatasetSpec:
    return DATASETS.get(name)


def split_exists(spec: DatasetSpec, split: str, data_dir: str | None = None) -> bool:
    return local_file(resolve_data_dir(data_dir), spec.files[split]) is not None


def load_split(name: str, split: str, data_dir: str | None = None) -> datasets.Dataset:
    """Load one split of one dataset as a `datasets.Dataset` in the dataset's schema."""
    spec = get_spec(name)
    if split not in spec.files:
        raise MissingSplitError(f"{name} has no split {split!r}; splits: {', '.join(spec.files)}")
    location = resolve_data_dir(data_dir)
    path = local_file(location, spec.files[split])
    if path is None:
        hint = spec.missing_hint or "put the BLURB file there"
        raise MissingSplitError(
            f"{name} {split} split is missing: expected {spec.path(split, location)}. {hint}, "
            "or point --data-dir / BIOTUNE_DATA at a folder that has it."
        )
    return _load(spec, str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=32)
def _load(spec: DatasetSpec, path: str, mtime: int) -> datasets.Dataset:
    rows = FORMATS.get(spec.format)(path, spec)
    return datasets.Dataset.from_list(rows, features=SCHEMAS[spec.schema])
