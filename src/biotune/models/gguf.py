"""GGUF files (a model shipped as one quantized file) de-quantized once, exactly (fp32), into a cached model
folder that `from_pretrained` loads fast; every family loads a model reference through `materialize`."""

from __future__ import annotations

import hashlib
from pathlib import Path

from biotune.data.location import cache_dir

from .aliases import ModelRef
from .cache import save_model_folder


def _gguf_cache(ref: ModelRef) -> Path:
    gguf = Path(ref.path) / ref.gguf_file
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir() / "models" / f"{gguf.stem}-{key}"


def materialize(ref: ModelRef) -> str:
    """A folder `from_pretrained` loads fast. GGUF files are de-quantized once (fp32, exact) and cached."""
    if not ref.gguf_file:
        return ref.path
    target = _gguf_cache(ref)
    if (target / "config.json").is_file():
        return str(target)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ref.path, gguf_file=ref.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(ref.path, gguf_file=ref.gguf_file, dtype=torch.float32)
    # The weights are already plain fp32 tensors; drop the GGUF marker so the copy saves and loads as such.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    save_model_folder(model, tokenizer, target)
    return str(target)


def load_tokenizer(ref: ModelRef):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(materialize(ref))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
