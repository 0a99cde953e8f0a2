"""A config file's fields and what is wrong with them: the one-line error naming file, line and field
(`field_error`), a cross-field problem naming its field (`ConfigFieldError`) and a name checked against a registry
(`known_name`). A leaf: the config, data and model layers all raise through it.
"""

from __future__ import annotations

from pydantic import ValidationError

from .errors import BiotuneError, UnknownNameError
from .yamlfile import line_of


def known_name(registry, name: str) -> str:
    """`name` if the registry has it; else a ValueError listing the valid names (pydantic then names the field)."""
    try:
        registry.get(name)
    except UnknownNameError as e:
        raise ValueError(str(e)) from None  # pydantic then names the field
    return name


class ConfigFieldError(ValueError):
    """A cross-field problem; `field` is the dotted path to report, or the path's parts (a key with a dot in it)."""

    def __init__(self, field: str | list | tuple, message: str):
        super().__init__(message)
        self.loc = list(field) if isinstance(field, (list, tuple)) else field.split(".")
        self.field = ".".join(str(x) for x in self.loc)


_UNION_MEMBERS = {"MethodEntry", "ModelEntry", "str", "int", "float", "bool"}


def field_error(e: ValidationError, source: str, root=None) -> BiotuneError:
    """One line for the first problem of a config or study file: `file:line: field 'a.b': what is wrong`."""
    err = e.errors()[0]
    # a union's member is named in the location (methods.0.MethodEntry.label): not a field of the file
    loc = [x for x in err["loc"] if x not in _UNION_MEMBERS]
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, ConfigFieldError):
        loc, msg = ctx_error.loc, str(ctx_error)
    else:
        msg = err["msg"].removeprefix("Value error, ")
    line = line_of(root, loc) if root is not None else None
    where = f"{source}:{line}" if line else source
    field = ".".join(str(x) for x in loc) or "(top level)"
    return BiotuneError(f"{where}: field '{field}': {msg}")
