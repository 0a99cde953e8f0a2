"""Dataset specs and the one function that loads a split: `load_split(ref, split, data_dir)`.

A dataset is one YAML file (biotune.data.dataset_file): the 13 BLURB datasets ship as such files inside the
package (`data/builtin/*.yaml`, registered by name in DATASETS); a user's dataset is a file of its own, named by
its path wherever a built-in name is accepted (`biotune eval --datasets my.yaml`, `dataset: my.yaml`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from biotune.errors import DataFormatError, MissingSplitError, UnknownNameError
from biotune.io import read_text
from biotune.registry import Registry

from .formats import FORMATS
from .location import is_url, local_file, resolve_data_dir
from .schema import Split

SPLITS = ("train", "dev", "test")
BLURB_ROOT = "blurb"  # `source.root` of the BLURB files: the data location (--data-dir, $BIOTUNE_DATA, ../shared)


@dataclass(frozen=True, eq=False)
class DatasetSpec:
    name: str  # CLI name, e.g. "bc5-chem"
    title: str  # as BLURB names it, e.g. "BC5-chem"
    task: str  # task type: ner, pico, relation, similarity, doc_classification, qa
    schema: str  # one of schema.SCHEMA_NAMES (the task type's)
    format: str  # key of FORMATS
    files: dict[str, str]  # split -> path relative to the root (a hub dataset: the hub's split name)
    labels: tuple[str, ...] = ()  # label set (relation, qa, doc classification) in file spelling
    label_names: dict[str, str] = field(default_factory=dict)  # label -> words a prompt uses (verbalizer)
    negative: str | None = None  # the negative relation label, excluded from micro F1
    tags: tuple[str, ...] = ()  # tag set of token-tagging files
    entity: str = ""  # what an NER mention is, in words ("chemical"): one untyped kind (B / I / O tags)
    entities: dict[str, str] = field(default_factory=dict)  # typed NER: type (as tags write it) -> description
    columns: tuple[str, ...] = ()  # table files without a header line: column names in file order ("_" = ignore)
    header: bool = False  # table files: the first line is a header (names the columns unless `columns` does)
    fields: dict[str, str] = field(default_factory=dict)  # schema field -> source column, where they differ
    label_separator: str = ";"  # document labels written in one column
    instruction: str = ""  # overrides the task type's default instruction for this dataset
    description: str = ""
    missing_hint: str = ""  # how a user supplies a split that is not distributed with the data
    blurb: bool = True  # part of the BLURB score
    metric: str = "auto"  # auto: the task type's BLURB rule; else a name in biotune.tasks.METRICS
    root: str = BLURB_ROOT  # where `files` lie: the BLURB data location, or a folder / URL
    hf: str | None = None  # hub dataset id (format hf)
    hf_config: str | None = None
    hf_revision: str | None = None
    definition: str | None = None  # the dataset file this spec was read from
    builtin: bool = False  # shipped with biotune (named by its name, not its file)
    documents: str = ""  # regex on an example id: its first group (else the match) names the example's document
    reach: tuple[str, ...] = ()  # a user's local files: the folders they must lie in, symlinks followed

    def document_of(self, example_id: str) -> str | None:
        """The document an example comes from, as `documents` reads it from the id; None where the dataset does
        not say or the id does not match (then the example is its own unit)."""
        if not self.documents:
            return None
        m = re.search(self.documents, str(example_id))
        return None if m is None else (m.group(1) if m.groups() else m.group(0))

    def path(self, split: str, data_dir: str | None = None) -> str:
        """Where a split's file is (for messages): under the data location (BLURB) or the dataset's root."""
        rel = self.files[split]
        if is_url(rel) or Path(rel).is_absolute():
            return rel
        base = str(data_dir or resolve_data_dir(None)) if self.root == BLURB_ROOT else self.root
        return f"{base}/{rel}" if is_url(base) else str(Path(base) / rel)

    @property
    def ref(self) -> str:
        """How a config names this dataset: its name (built-in) or its file."""
        return self.name if self.builtin or not self.definition else self.definition


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register(spec: DatasetSpec) -> DatasetSpec:
    DATASETS.add(spec.name, spec)
    return spec


def is_dataset_file(ref: str) -> bool:
    return str(ref).endswith((".yaml", ".yml"))


def get_spec(ref: str) -> DatasetSpec:
    """A built-in dataset by name, or the dataset a YAML file defines (read once per file version)."""
    if ref in DATASETS:
        return DATASETS.get(ref)
    if is_dataset_file(ref):
        from .dataset_file import load_dataset_file

        return load_dataset_file(ref)
    raise UnknownNameError(
        f"unknown dataset {ref!r}; valid: {', '.join(DATASETS.names())}, or a dataset file "
        "(my_task.yaml, see README 'Your own dataset')"
    )


def split_file(spec: DatasetSpec, split: str, data_dir: str | None = None) -> Path | None:
    """The local file of a split (fetched into the cache first when it lies behind a URL); None if missing."""
    rel = spec.files[split]
    if is_url(rel):
        base, _, name = rel.rpartition("/")
        return local_file(base, name)
    location = resolve_data_dir(data_dir) if spec.root == BLURB_ROOT else spec.root
    return local_file(location, rel, spec.reach)


def split_exists(spec: DatasetSpec, split: str, data_dir: str | None = None) -> bool:
    if split not in spec.files:
        return False
    if spec.format == "hf":
        return True  # the hub says when it is not there
    return split_file(spec, split, data_dir) is not None


def load_split(ref: str, split: str, data_dir: str | None = None) -> Split:
    """Load one split of one dataset as a `Split` in its task type's schema (biotune.data.schema)."""
    spec = get_spec(ref)
    if split not in spec.files:
        raise MissingSplitError(
            f"{spec.name} has no split {split!r}; splits: {', '.join(spec.files)}"
            + (f" (defined in {spec.definition})" if spec.definition and not spec.builtin else "")
        )
    if spec.format == "hf":
        return _load(spec, spec.files[split], None)
    path = split_file(spec, split, data_dir)
    if path is None:
        hint = spec.missing_hint or (
            "put the BLURB file there" if spec.root == BLURB_ROOT else f"fix source.splits.{split} in {spec.definition}"
        )
        where = ", or point --data-dir / BIOTUNE_DATA at a folder that has it" if spec.root == BLURB_ROOT else ""
        raise MissingSplitError(
            f"{spec.name} {split} split is missing: expected {spec.path(split, data_dir)}. {hint}{where}."
        )
    return _load(spec, str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=32)
def _load(spec: DatasetSpec, path: str, mtime: int | None) -> Split:
    """A split's examples, read by its format's reader from a file checked first: UTF-8 text, no NUL bytes (a
    one-line error naming the file and line otherwise); a file with no examples is an error, never an empty
    split that would be trained on or scored as 0."""
    if mtime is not None:
        read_text(path, binary_ok=False)
    rows = FORMATS.get(spec.format)(path, spec)
    if not rows:
        raise DataFormatError(
            path,
            None,
            "no examples in this file (it is empty, or a header only): fill it, or "
            f"leave the split out of source.splits{f' in {spec.definition}' if not spec.builtin else ''}",
        )
    return Split(rows, spec.schema)
