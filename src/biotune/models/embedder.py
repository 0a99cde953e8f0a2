"""Sentence embeddings from a BERT-style encoder (mean pooling, L2-normalized), for nearest-neighbour shots."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from .aliases import resolve


class Embedder:
    def __init__(self, model: str = "minilm", device: torch.device | None = None, max_length: int = 256):
        from transformers import AutoModel, AutoTokenizer

        ref = resolve(model)
        self.tokenizer = AutoTokenizer.from_pretrained(ref.path)
        self.model = AutoModel.from_pretrained(ref.path, use_safetensors=True).eval().to(device or "cpu")
        self.max_length = max_length

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = torch.empty(len(texts), self.model.config.hidden_size)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.model.device)
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu()
        return out


@functools.cache
def shared_embedder(device: str = "cpu") -> Embedder:
    """The MiniLM embedder of this process on `device`, loaded once: kNN shot selection over many datasets (a
    `biotune eval` of all of BLURB) reuses it."""
    return Embedder(device=torch.device(device))
