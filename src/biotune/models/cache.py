"""Model folders written once into the cache (`$BIOTUNE_CACHE/...`): de-quantized GGUF copies and tiny
random-init checkpoints. Written to a temporary folder and renamed, so a reader never sees half a folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def save_model_folder(model, tokenizer, target: Path) -> None:
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    except BaseException:  # nothing half-written stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.replace(tmp, target)
    except OSError:  # another process got there first
        shutil.rmtree(tmp, ignore_errors=True)
