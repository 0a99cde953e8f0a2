"""Data layer: dataset files (dataset_file.py; the 13 BLURB ones in builtin/, registered by blurb.py), specs and
split loading (catalog.py), readers per source format (formats/), schemas (schema.py), `biotune data fetch`
(fetch.py)."""

from . import blurb  # noqa: F401  (registers the 13 BLURB datasets)
from .catalog import DATASETS, SPLITS, DatasetSpec, get_spec, load_split, split_exists
from .location import resolve_data_dir

__all__ = ["DATASETS", "SPLITS", "DatasetSpec", "get_spec", "load_split", "split_exists", "resolve_data_dir"]
