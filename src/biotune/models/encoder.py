"""BERT-style encoders (PubMedBERT, BioClinicalBERT, MiniLM) with a task head: the paper's baselines.

| task type          | head                    | output                       |
|--------------------|-------------------------|------------------------------|
| ner, pico          | token_classification    | one tag per word (1st piece) |
| relation, qa       | sequence_classification | one label                    |
| doc_classification | multi_label             | a label set (sigmoid > 0.5)  |
| similarity         | regression              | a score                      |
"""

from __future__ import annotations

from .base import ModelFamily, register
from .heads import HEADS

HEAD_OF_TASK = {
    "ner": "token_classification",
    "pico": "token_classification",
    "relation": "sequence_classification",
    "qa": "sequence_classification",
    "doc_classification": "multi_label",
    "similarity": "regression",
}


def label_list(spec) -> list[str]:
    """Class names of the head, in index order."""
    if spec.task in ("ner", "pico"):
        return ["O"] + [t for t in spec.tags if t != "O"]
    return list(spec.labels)


@register
class EncoderFamily(ModelFamily):
    name = "encoder"
    generative = False
    head_modules = ("classifier",)

    def peft_task_type_for(self, head: str) -> str:
        return HEADS.get(head).peft_task_type

    def claims(self, config):
        # BERT-style encoders (PubMedBERT, BioClinicalBERT, MiniLM, RoBERTa, DeBERTa, ELECTRA, ...)
        return config.model_type in ("bert", "roberta", "xlm-roberta", "deberta", "deberta-v2", "electra",
                                     "distilbert", "modernbert")

    @property
    def config_class(self):
        from transformers import BertConfig

        return BertConfig

    def head_for(self, task: str) -> str:
        return HEAD_OF_TASK[task]

    def auto_class(self, head: str):
        return HEADS.get(head).auto_class()

    def head_kwargs(self, head: str, spec) -> dict:
        return HEADS.get(head).config_kwargs(label_list(spec))
