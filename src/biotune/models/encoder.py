"""BERT-style encoders (PubMedBERT, BioClinicalBERT, MiniLM) with a task head: the paper's baselines. A task type
names its head (`Task.encoder_head`: token_classification for ner and pico, one tag per word; sequence_classification
for relation and qa; multi_label for doc_classification, a label set; regression for similarity) and the head's
classes (`Task.head_labels`); the heads are biotune.models.heads.
"""

from __future__ import annotations

import json
from pathlib import Path

from biotune.tasks import TASKS

from .aliases import resolve
from .base import ModelFamily, register
from .heads import HEADS


def label_list(spec) -> list[str]:
    """Class names of the head, in index order (the task type's)."""
    return TASKS.get(spec.task).head_labels(spec)


@register
class EncoderFamily(ModelFamily):
    name = "encoder"
    generative = False
    head_modules = ("classifier",)

    def peft_task_type_for(self, head: str) -> str:
        return HEADS.get(head).peft_task_type

    def claims(self, config):
        # BERT-style encoders (PubMedBERT, BioClinicalBERT, MiniLM, RoBERTa, DeBERTa, ELECTRA, ...)
        return config.model_type in (
            "bert",
            "roberta",
            "xlm-roberta",
            "deberta",
            "deberta-v2",
            "electra",
            "distilbert",
            "modernbert",
        )

    @property
    def config_class(self):
        from transformers import BertConfig

        return BertConfig

    def head_for(self, task: str) -> str:
        return TASKS.get(task).encoder_head

    def resolve_head(self, mcfg, spec) -> str:
        """`model.head` where set; else on a similarity task a sentence-transformers BERT pooled by mean (such as
        all-MiniLM-L6-v2) gets the cosine head (models/biencoder.py): the checkpoint was trained to put similar
        sentences' mean embeddings at a high cosine, which scores 84.7 Pearson on BIOSSES untrained, while a
        regression head on it reached 9 to 46 (measured: issue "The seed's table"). Every other model and task
        gets its task type's head. The config records a head chosen this way (part of the result's identity)."""
        if getattr(mcfg, "head", None):
            return mcfg.head
        if spec.task == "similarity" and not getattr(mcfg, "random_init", None):
            pooling = sentence_pooling(mcfg)
            if pooling and pooling.get("pooling_mode_mean_tokens") and not pooling.get("pooling_mode_cls_token"):
                return "cosine_similarity"
        return self.head_for(spec.task)

    def pooler_for(self, mcfg, head: str) -> str:
        """'identity' where a sequence-level head would read a pooler the checkpoint never trained: a BERT whose
        checkpoint is a sentence-transformers model pooled by mean (its modules.json / 1_Pooling), such as
        all-MiniLM-L6-v2. Its pooler maps every input to nearly the same vector (measured on HoC: the frozen
        pooler output varies 5.6x less across documents than the first token's, and a linear probe on it scores
        7.8 micro F1 on dev against 51.2 on the first token's), and fine-tuning from it stays at the label prior.
        Elsewhere 'checkpoint': BERT's pooler as pretrained, what published fine-tuning recipes use."""
        if not HEADS.get(head).reads_pooler or mcfg.random_init:
            return "checkpoint"
        pooling = sentence_pooling(mcfg)
        return "identity" if pooling is not None and not pooling.get("pooling_mode_cls_token") else "checkpoint"

    def init_head(self, model, head: str, targets: list) -> None:
        """`model.head_bias: prior`: the head set from the training targets before any input is read (Head.init:
        a new classifier's bias, the cosine head's scale)."""
        HEADS.get(head).init(model, targets)

    def check_head(self, head: str | None, task: str) -> None:
        if head == "cosine_similarity" and task == "similarity":
            return  # the bi-encoder alternative to the regression head (models/biencoder.py)
        super().check_head(head, task)

    def load(self, mcfg, spec, head, device, dtype, quantization=None, seed=0, attn_implementation=None):
        model, tokenizer = super().load(mcfg, spec, head, device, dtype, quantization, seed, attn_implementation)
        if mcfg.pooler == "identity":
            identity_pooler(model)
        return model, tokenizer

    def auto_class(self, head: str):
        return HEADS.get(head).auto_class()

    def head_kwargs(self, head: str, spec) -> dict:
        return HEADS.get(head).config_kwargs(label_list(spec))


def sentence_pooling(mcfg) -> dict | None:
    """The pooling of a BERT checkpoint saved by sentence-transformers (its 1_Pooling/config.json), None for any
    other checkpoint (RoBERTa-style heads read the first token with a dense layer of their own) or one not on this
    machine."""
    folder = _local_folder(mcfg)
    if folder is None:
        return None
    try:
        if json.loads((folder / "config.json").read_text()).get("model_type") != "bert":
            return None
        return json.loads((folder / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError):
        return None


def _local_folder(mcfg) -> Path | None:
    """The checkpoint's folder on this machine: an alias's or a local path's, or a hub model's cached snapshot
    (None where it is neither: the hub is not asked from here)."""

    path = Path(resolve(mcfg.path).path)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(str(mcfg.path), "config.json", revision=mcfg.revision)
    except Exception:  # noqa: BLE001  (an id the hub library cannot parse: not a cached hub model)
        return None
    return Path(cached).parent if isinstance(cached, str) else None


def identity_pooler(model) -> None:
    """BERT's pooler (dense + tanh over the first token) set to pass the first token's vector through: dense = I,
    bias = 0 (tanh then only bounds it). The classifier sees the first token's representation, which varies across
    inputs, instead of the untrained pooler's nearly constant output; the pooler still trains with full
    fine-tuning."""
    import torch

    pooler = getattr(model.base_model, "pooler", None)
    if pooler is None or not hasattr(pooler, "dense"):
        raise ValueError("model.pooler identity needs a BERT pooler (dense + tanh) in the model")
    with torch.no_grad():
        pooler.dense.weight.copy_(torch.eye(pooler.dense.weight.shape[0], dtype=pooler.dense.weight.dtype))
        pooler.dense.bias.zero_()
