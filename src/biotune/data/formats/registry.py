"""The registry of source-file readers: each format module registers `read(path, spec) -> list[dict]` here."""

from biotune.registry import Registry

FORMATS: Registry = Registry("format")
