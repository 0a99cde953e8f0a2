"""Examples -> model inputs for training.

Generative families: the zero-shot prompt (the same one evaluation uses) followed by the target text and an
end-of-turn token; the loss falls on the answer tokens only (prompt labels are -100). Encoder families:
tokenized input with labels for the head (token labels on the first piece of each word).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .prompting import PromptBuilder

IGNORE = -100


def generative_features(task, tokenizer, examples: Sequence[dict], max_length: int, encoder_decoder: bool) -> list[dict]:
    builder = PromptBuilder(tokenizer, max_length)
    end = tokenizer.eos_token_id
    features = []
    for ex in examples:
        target = tokenizer(task.target(ex), add_special_tokens=False)["input_ids"][: max_length // 2] + [end]
        prompt = builder.build(task.instruction(), [], task.render_input(ex), reserve=len(target))
        prompt_ids = tokenizer(prompt.text, add_special_tokens=False)["input_ids"]
        if encoder_decoder:
            features.append({"input_ids": prompt_ids, "attention_mask": [1] * len(prompt_ids), "labels": target})
        else:
            ids = prompt_ids + target
            features.append({"input_ids": ids, "attention_mask": [1] * len(ids),
                             "labels": [IGNORE] * len(prompt_ids) + target})
    return features


def encoder_features(task, tokenizer, examples: Sequence[dict], head: str, labels: list[str], max_length: int) -> list[dict]:
    index = {label: i for i, label in enumerate(labels)}
    features = []
    for ex in examples:
        x = task.encoder_input(ex)
        gold = task.gold(ex)
        if head == "token_classification":
            enc = tokenizer(x, is_split_into_words=True, truncation=True, max_length=max_length)
            word_labels, previous = [], None
            for w in enc.word_ids():
                word_labels.append(index[gold[w]] if w is not None and w != previous else IGNORE)
                previous = w
            enc["labels"] = word_labels
        else:
            pair = x if isinstance(x, tuple) else (x,)
            enc = tokenizer(*pair, truncation="only_second" if len(pair) == 2 else True, max_length=max_length)
            if head == "multi_label":
                enc["labels"] = [1.0 if label in gold else 0.0 for label in labels]
            elif head == "regression":
                enc["labels"] = float(gold)
            else:
                enc["labels"] = index[gold]
        features.append(dict(enc))
    return features


@torch.inference_mode()
def encoder_predict(model, tokenizer, task, examples: Sequence[dict], head: str, labels: list[str],
                    max_length: int, batch_size: int = 16) -> list:
    """Predictions in the metric's structure: tags per original word, a label, a label set, or a score."""
    from transformers import DataCollatorWithPadding

    feats = encoder_features(task, tokenizer, examples, head, labels, max_length)
    collate = DataCollatorWithPadding(tokenizer)
    out = []
    for start in range(0, len(feats), batch_size):
        chunk = feats[start : start + batch_size]
        batch = collate([{k: v for k, v in f.items() if k != "labels"} for f in chunk])
        logits = model(**{k: v.to(model.device) for k, v in batch.items()}).logits.float().cpu()
        for row, (f, ex) in enumerate(zip(chunk, examples[start : start + batch_size])):
            if head == "token_classification":
                n_words = len(task.encoder_input(ex))
                tags = ["O"] * n_words  # words cut off by max_length stay O
                enc = tokenizer(task.encoder_input(ex), is_split_into_words=True, truncation=True, max_length=max_length)
                previous = None
                for pos, w in enumerate(enc.word_ids()):
                    if w is not None and w != previous:
                        tags[w] = labels[int(logits[row, pos].argmax())]
                    previous = w
                out.append(tags)
            elif head == "multi_label":
                out.append([label for label, p in zip(labels, torch.sigmoid(logits[row])) if p > 0.5])
            elif head == "regression":
                out.append(float(logits[row, 0]))
            else:
                out.append(labels[int(logits[row].argmax())])
    return out
