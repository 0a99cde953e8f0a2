"""Names that become parts of paths (an experiment's or a study's name, a study's model names and method labels):
one safe form, checked where a file is read, so nothing is ever written outside the folder meant for it."""

from __future__ import annotations

import re
from pathlib import Path

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def check_name(value: str, what: str = "name") -> str:
    """`value` if it is one path segment of letters, digits and . _ + - (not starting with a dot or a dash, no
    `..`), else ValueError saying so (pydantic then names the field and the file's line)."""
    if not _SAFE.fullmatch(value) or ".." in value or len(value) > 200:
        raise ValueError(
            f"{value!r}: a {what} becomes part of a folder name: use letters, digits and . _ + - "
            "(starting with a letter or digit, no '..', no '/'), e.g. my-study_2"
        )
    return value


def inside(path: str | Path, root: str | Path) -> Path:
    """`path` resolved, if it lies under `root`; else ValueError (a last guard before anything is written)."""
    resolved, base = Path(path).resolve(), Path(root).resolve()
    if resolved != base and base not in resolved.parents:
        raise ValueError(f"{path} lies outside {root}")
    return resolved
