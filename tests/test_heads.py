"""The encoder's task heads (biotune.models.heads): each head's training labels, decoded from logits that put all
weight on them, give back the gold answer of real BLURB examples in the metric's structure."""

import pytest
import torch

from biotune.config import ModelConfig
from biotune.data import get_spec, load_split
from biotune.models import FAMILIES
from biotune.models.encoder import label_list
from biotune.models.heads import HEADS, IGNORE
from biotune.tasks import task_for


def _logits_for(head, enc, labels):
    """Logits that say exactly the training labels of one encoded example."""
    y = enc["labels"]
    if head.name == "token_classification":
        out = torch.full((len(y), len(labels)), -10.0)
        for pos, k in enumerate(y):
            if k != IGNORE:
                out[pos, k] = 10.0
        return out
    if head.name == "multi_label":
        return torch.tensor([10.0 if v else -10.0 for v in y])
    if head.name == "regression":
        return torch.tensor([y])
    out = torch.full((len(labels),), -10.0)
    out[y] = 10.0
    return out


@pytest.mark.parametrize("dataset", ["ncbi-disease", "ebm-pico", "gad", "bioasq", "hoc", "biosses"])
def test_labels_decode_back_to_the_gold_answer(dataset, data_dir):
    spec = get_spec(dataset)
    encoder = FAMILIES.get("encoder")
    head = HEADS.get(encoder.head_for(spec.task))
    tokenizer = encoder.load_tokenizer(ModelConfig(family="encoder", path="minilm"))
    task, labels = task_for(spec, None), label_list(spec)
    examples = load_split(dataset, "dev", str(data_dir)).select(range(5))
    for ex in examples:
        x, gold = task.encoder_input(ex), task.gold(ex)
        enc = head.encode(tokenizer, x, gold, labels, max_length=512)
        pred = head.decode(_logits_for(head, enc, labels), labels, head.word_starts(tokenizer, x, 512))
        if head.name == "multi_label":
            assert sorted(pred) == sorted(gold)
        elif head.name == "regression":
            assert pred == pytest.approx(float(gold))
        else:
            assert pred == gold
    # a sentence cut off by max_length: its last words stay O
    if head.token_level:
        x = task.encoder_input(examples[0])
        starts = head.word_starts(tokenizer, x, 8)
        assert starts[-1] is None and head.decode(torch.zeros(8, len(labels)), labels, starts)[-1] == "O"


def test_each_head_builds_its_transformers_class_and_config():
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    labels = ["O", "B", "I"]
    assert HEADS.get("token_classification").auto_class() is AutoModelForTokenClassification
    assert HEADS.get("multi_label").auto_class() is AutoModelForSequenceClassification
    assert HEADS.get("regression").config_kwargs(labels) == {"num_labels": 1, "problem_type": "regression"}
    assert HEADS.get("multi_label").config_kwargs(labels)["problem_type"] == "multi_label_classification"
    assert HEADS.get("sequence_classification").config_kwargs(labels)["id2label"] == {0: "O", 1: "B", 2: "I"}
    assert [n for n, h in HEADS.items() if not h.soft_prompts_fit] == ["token_classification"]
    assert {n for n, h in HEADS.items() if h.token_level} == {"lm", "token_classification"}
