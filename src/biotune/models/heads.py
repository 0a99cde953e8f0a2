"""Task heads, one object per kind: every decision that depends on the head of a model (its transformers class
and config, how an example's gold becomes training labels and a batch's labels a tensor, how logits become a
prediction in the metric's structure, which methods fit it) is made here, named in one registry (HEADS).

| head                    | task types         | labels per example           | prediction                    |
|-------------------------|--------------------|------------------------------|-------------------------------|
| lm                      | all (generative)   | the answer's tokens          | generated text, parsed        |
| token_classification    | ner, pico          | a tag per word (1st piece)   | a tag per word                |
| sequence_classification | relation, qa       | one class index              | one label                     |
| multi_label             | doc_classification | a 0/1 vector over the labels | the labels of sigmoid > 0.5   |
| regression              | similarity         | a float                      | a score                       |

A head's name is what configs (`model.head`) and identities record; `HEADS.get(name)` is its behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from biotune.registry import Registry

IGNORE = -100  # label of a position the loss skips (transformers' convention)


class Head:
    name: str
    # under full fine-tuning of an encoder, this head's learning rate as a multiple of the body's
    # (training.head_lr_scale: auto): a classifier the checkpoint lacks needs more than a body's 2e-5 to leave the
    # label prior in a few hundred steps (HoC: dev micro F1 0.0 -> 72.6 with the prior bias and the identity pooler)
    fft_lr_scale = 10.0
    token_level = False  # the head runs at every position (the planner counts its FLOPs per token)
    soft_prompts_fit = True  # peft's virtual tokens work with it (it pads logits, not labels, of token heads)
    peft_task_type = "SEQ_CLS"
    # its layers compute in fp32 even where the model computes in bf16 (ModelFamily.precise_head): a continuous
    # output rounded to bf16 keeps 8 significant bits (a similarity score near 3 comes out a multiple of 1/64)
    full_precision = False
    reads_pooler = False  # a sequence-level head on BERT's pooler (model.pooler decides what that pooler is)

    def auto_class(self):
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification

    def config_kwargs(self, labels: list[str]) -> dict:
        """What the model's config needs for this head over `labels` (class names in index order)."""
        return {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
        }

    def encode(self, tokenizer, x, gold, labels: list[str], max_length: int) -> dict:
        """One example's model inputs and training labels: `x` is the task's encoder input (a text, a text pair,
        or words), `gold` its gold answer in the metric's structure."""
        pair = x if isinstance(x, tuple) else (x,)
        enc = dict(tokenizer(*pair, truncation="only_second" if len(pair) == 2 else True, max_length=max_length))
        enc["labels"] = self.target(gold, labels)
        return enc

    def target(self, gold, labels: list[str]) -> Any:
        return labels.index(gold)

    def batch_labels(self, labels: list, width: int):
        """A batch's labels as the tensor the model's loss reads (`width`: the padded sequence length)."""
        import torch

        return torch.tensor(labels)

    def pad(self, tokenizer, features: list[dict]) -> dict:
        """A batch of encoded examples (without their labels) padded to tensors."""
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)(features)

    def init(self, model, targets: list) -> None:
        """`model.head_bias: prior`: the new classifier's bias set from the training targets (`prior_bias`)."""
        import torch

        bias = model.classifier.bias
        with torch.no_grad():
            bias.copy_(self.prior_bias(targets, bias.shape[0]).to(bias.dtype))

    def word_starts(self, tokenizer, x, max_length: int) -> Sequence[int | None]:
        """Token heads: per word of `x`, the position of its first piece (None where max_length cut it off);
        the others read one position."""
        return ()

    def decode(self, logits, labels: list[str], word_starts: Sequence[int | None] = ()):
        """One example's prediction from its row of logits (`word_starts`: what `word_starts` gave)."""
        return labels[int(logits.argmax())]

    def prior_bias(self, targets: list, n_outputs: int):
        """The head's bias that makes it answer, before reading any input, what the training targets say
        (`targets`: the training examples' `labels` as `encode` made them): classes, the log of their smoothed
        frequency (softmax then gives the frequencies)."""
        import torch

        counts = torch.ones(n_outputs)
        for t in targets:
            counts[t] += 1
        return torch.log(counts / counts.sum())


HEADS: Registry[Head] = Registry("head")


def register(head_class):
    HEADS.add(head_class.name, head_class())
    return head_class


@register
class LmHead(Head):
    """The generative families' language-model head (answers are generated text; see biotune.tasks)."""

    name = "lm"
    token_level = True


@register
class TokenClassification(Head):
    name = "token_classification"
    token_level = True
    soft_prompts_fit = False
    peft_task_type = "TOKEN_CLS"

    def auto_class(self):
        from transformers import AutoModelForTokenClassification

        return AutoModelForTokenClassification

    def encode(self, tokenizer, x, gold, labels, max_length):
        enc = tokenizer(x, is_split_into_words=True, truncation=True, max_length=max_length)
        index = {label: i for i, label in enumerate(labels)}
        word_labels = [IGNORE] * len(enc["input_ids"])  # the first piece of each word carries its tag
        for pos, w in _first_pieces(enc.word_ids()):
            word_labels[pos] = index[gold[w]]
        out = dict(enc)
        out["labels"] = word_labels
        return out

    def word_starts(self, tokenizer, words, max_length):
        enc = tokenizer(list(words), is_split_into_words=True, truncation=True, max_length=max_length)
        starts: list[int | None] = [None] * len(words)
        for pos, w in _first_pieces(enc.word_ids()):
            starts[w] = pos
        return starts

    def batch_labels(self, labels, width):
        import torch

        return torch.tensor([lab + [IGNORE] * (width - len(lab)) for lab in labels])

    def prior_bias(self, targets, n_outputs):
        return super().prior_bias([k for seq in targets for k in seq if k != IGNORE], n_outputs)

    def decode(self, logits, labels, word_starts=()):
        # words cut off by max_length stay O
        return [labels[int(logits[pos].argmax())] if pos is not None else "O" for pos in word_starts]


def _first_pieces(word_ids) -> list[tuple[int, int]]:
    """(position, word) of each word's first piece, from a tokenizer's `word_ids()` (None: a special token)."""
    out, previous = [], None
    for pos, w in enumerate(word_ids):
        if w is not None and w != previous:
            out.append((pos, w))
        previous = w
    return out


@register
class SequenceClassification(Head):
    name = "sequence_classification"
    reads_pooler = True

    def config_kwargs(self, labels):
        return {**super().config_kwargs(labels), "problem_type": "single_label_classification"}


@register
class MultiLabel(Head):
    name = "multi_label"
    reads_pooler = True

    def config_kwargs(self, labels):
        return {**super().config_kwargs(labels), "problem_type": "multi_label_classification"}

    def target(self, gold, labels):
        return [1.0 if label in gold else 0.0 for label in labels]

    def batch_labels(self, labels, width):
        import torch

        return torch.tensor(labels, dtype=torch.float)

    def decode(self, logits, labels, word_starts=()):
        import torch

        return [label for label, p in zip(labels, torch.sigmoid(logits)) if p > 0.5]

    def prior_bias(self, targets, n_outputs):
        """Each label's log-odds among the training examples (smoothed): sigmoid gives its frequency."""
        import torch

        p = (torch.tensor(targets, dtype=torch.float).sum(0) + 0.5) / (len(targets) + 1)
        return torch.log(p / (1 - p))


@register
class Regression(Head):
    name = "regression"
    reads_pooler = True
    # measured on BIOSSES (64 training pairs, 30 epochs, lr 5e-5): dev Pearson 85.2 at 1x, 33.2 at 10x (both on 16
    # dev pairs): a score head keeps the body's rate
    fft_lr_scale = 1.0
    full_precision = True  # the score is the prediction itself: no argmax or threshold absorbs bf16's rounding

    def config_kwargs(self, labels):
        return {"num_labels": 1, "problem_type": "regression"}

    def target(self, gold, labels):
        return float(gold)

    def batch_labels(self, labels, width):
        import torch

        return torch.tensor(labels, dtype=torch.float)

    def decode(self, logits, labels, word_starts=()):
        return float(logits[0])

    def prior_bias(self, targets, n_outputs):
        """The mean training score."""
        import torch

        return torch.tensor([sum(targets) / len(targets)])


@register
class CosineSimilarity(Head):
    """Similarity as the cosine of the two sentences' mean-pooled embeddings (models/biencoder.py): for
    sentence-transformers checkpoints, which were trained for exactly this."""

    name = "cosine_similarity"
    fft_lr_scale = 1.0  # nothing new: every weight is the checkpoint's
    soft_prompts_fit = False  # two inputs per example
    peft_task_type = "FEATURE_EXTRACTION"

    def auto_class(self):
        from .biencoder import BertBiEncoderForSimilarity

        return BertBiEncoderForSimilarity

    def config_kwargs(self, labels):
        return {"num_labels": 1}

    def encode(self, tokenizer, x, gold, labels, max_length):
        a, b = (dict(tokenizer(text, truncation=True, max_length=max_length)) for text in x)
        return {
            "input_ids": a["input_ids"],
            "attention_mask": a["attention_mask"],
            "input_ids_b": b["input_ids"],
            "attention_mask_b": b["attention_mask"],
            "labels": float(gold),
        }

    def pad(self, tokenizer, features):
        first = Head.pad(
            self, tokenizer, [{"input_ids": f["input_ids"], "attention_mask": f["attention_mask"]} for f in features]
        )
        second = Head.pad(
            self,
            tokenizer,
            [{"input_ids": f["input_ids_b"], "attention_mask": f["attention_mask_b"]} for f in features],
        )
        return {**first, "input_ids_b": second["input_ids"], "attention_mask_b": second["attention_mask"]}

    def batch_labels(self, labels, width):
        import torch

        return torch.tensor(labels, dtype=torch.float)

    def decode(self, logits, labels, word_starts=()):
        return float(logits[0])

    def init(self, model, targets):
        """The cosine's scale: the training scores' largest magnitude (BIOSSES: 4), kept in the model's config."""
        model.config.similarity_scale = max(abs(float(t)) for t in targets) or 1.0
