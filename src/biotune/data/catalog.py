"""Dataset specs and the one function that loads a split: `load_split(ref, split, data_dir)`.

A dataset is one YAML file (biotune.data.dataset_file): the 13 BLURB datasets ship as such files inside the
package (`data/builtin/*.yaml`, registered by name in DATASETS); a user's dataset is a file of its own, named by
its path wherever a built-in name is accepted (`biotune eval --datasets my.yaml`, `dataset: my.yaml`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from biotune.errors import DataFormatError, MissingSplitError, UnknownNameError
from biotune.io import read_text
from biotune.tasks import TASKS

from .dataset_file import load_dataset_file
from .formats import FORMATS
from .location import is_url, local_file, resolve_data_dir
from .schema import Split
from .spec import BLURB_ROOT, DATASETS, SPLITS, DatasetSpec, register  # noqa: F401  (the catalog's names)


def is_dataset_file(ref: str) -> bool:
    return str(ref).endswith((".yaml", ".yml"))


def get_spec(ref: str) -> DatasetSpec:
    """A built-in dataset by name, or the dataset a YAML file defines (read once per file version)."""
    if ref in DATASETS:
        return DATASETS.get(ref)
    if is_dataset_file(ref):
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
    """Load one split of one dataset as a `Split` in its task type's fields (biotune.data.schema)."""
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
    return Split(rows, TASKS.get(spec.task).fields, spec.schema)
