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
        return "TOKEN_CLS" if head == "token_classification" else "SEQ_CLS"

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
        from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

        return AutoModelForTokenClassification if head == "token_classification" else AutoModelForSequenceClassification

    def head_kwargs(self, head: str, spec) -> dict:
        if head == "regression":
            return {"num_labels": 1, "problem_type": "regression"}
        labels = label_list(spec)
        kwargs = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                  "label2id": {label: i for i, label in enumerate(labels)}}
        if head == "multi_label":
            kwargs["problem_type"] = "multi_label_classification"
        elif head == "sequence_classification":
            kwargs["problem_type"] = "single_label_classification"
        return kwargs
