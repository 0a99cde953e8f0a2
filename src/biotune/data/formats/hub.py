"""Hub datasets (`format: hf`, `hf: org/name`), read through `datasets.load_dataset`; class-label columns (e.g.
`ner_tags` as integers) become their names. `source.splits` maps biotune's splits to the hub's split names.

Without network, `$BIOTUNE_HF_MIRROR` names a folder of local copies of hub dataset repositories
(`<mirror>/<org>/<name>/`, as `git clone https://huggingface.co/datasets/<org>/<name>` or
`Dataset.push_to_hub`'s layout: data files plus README): the same id is then read from there.
"""

from __future__ import annotations

import os
from pathlib import Path

from biotune.errors import BiotuneError, MissingSplitError

from .records import check_columns, to_example
from .registry import FORMATS

MIRROR_VAR = "BIOTUNE_HF_MIRROR"


def hub_source(spec) -> str:
    """The local mirror folder of the hub id when there is one, else the hub id."""
    mirror = os.environ.get(MIRROR_VAR)
    if mirror and (Path(mirror) / spec.hf).is_dir():
        return str(Path(mirror) / spec.hf)
    return spec.hf


def _names(feature):
    """A value -> name function for class-label features (also inside a Sequence), else None."""
    from datasets import ClassLabel, Sequence

    if isinstance(feature, ClassLabel):
        return feature.int2str
    if isinstance(feature, Sequence) and isinstance(feature.feature, ClassLabel):
        return lambda values: [feature.feature.int2str(v) for v in values]
    if isinstance(feature, list) and feature and isinstance(feature[0], ClassLabel):
        return lambda values: [feature[0].int2str(v) for v in values]
    return None


@FORMATS.register("hf")
def read(split_name, spec) -> list[dict]:
    import datasets

    source = hub_source(spec)
    try:
        ds = datasets.load_dataset(source, spec.hf_config, split=split_name, revision=spec.hf_revision)
    except ValueError as e:
        if "split" in str(e).lower():
            raise MissingSplitError(
                f"{spec.name}: hub dataset {spec.hf} has no split {split_name!r} ({e}); fix "
                f"source.splits in {spec.definition}"
            ) from None
        raise BiotuneError(f"{spec.name}: cannot read hub dataset {spec.hf}: {e}") from None
    except Exception as e:  # no network, unknown id, gated
        raise BiotuneError(
            f"{spec.name}: cannot read hub dataset {spec.hf} ({type(e).__name__}: {e}); without "
            f"network, point ${MIRROR_VAR} at a folder holding {spec.hf}/"
        ) from None
    where = f"{spec.hf}[{split_name}]"
    check_columns(spec, ds.column_names, where, None)
    convert = {c: f for c in ds.column_names if (f := _names(ds.features[c]))}
    rows = []
    for i, rec in enumerate(ds):
        rec = {c: convert[c](v) if c in convert else v for c, v in rec.items()}
        rows.append(to_example(rec, spec, i, where, i + 1))
    return rows
