"""What a dataset is (`DatasetSpec`: its task type, labels, files, metric, where its documents are) and the
registry of the built-in ones (DATASETS). A leaf of the data layer: dataset files become specs (dataset_file.py),
the catalog loads their splits (catalog.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from biotune.registry import Registry

from .location import is_url, resolve_data_dir

SPLITS = ("train", "dev", "test")
BLURB_ROOT = "blurb"  # `source.root` of the BLURB files: the data location (--data-dir, $BIOTUNE_DATA, ../shared)


@dataclass(frozen=True, eq=False)
class DatasetSpec:
    name: str  # CLI name, e.g. "bc5-chem"
    title: str  # as BLURB names it, e.g. "BC5-chem"
    task: str  # task type: ner, pico, relation, similarity, doc_classification, qa
    schema: str  # the name of the task type's example fields (Task.schema)
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
    published: dict[str, float] = field(default_factory=dict)  # system -> its published test score (x100)
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
