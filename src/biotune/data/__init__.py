"""Data layer: dataset specs (catalog.py, blurb.py), readers per file format (formats/), schemas (schema.py)."""

from . import blurb  # noqa: F401  (registers the 13 BLURB datasets)
from .catalog import DATASETS, SPLITS, DatasetSpec, get_spec, load_split, split_exists
from .location import resolve_data_dir

__all__ = ["DATASETS", "SPLITS", "DatasetSpec", "get_spec", "load_split", "split_exists", "resolve_data_dir"]
