"""Examples -> model inputs for training.

Generative families: the zero-shot prompt (the same one evaluation uses) followed by the target text and an
end-of-turn token; the loss falls on the answer tokens only (prompt labels are -100). Encoder families:
tokenized input with labels for the head (token labels on the first piece of each word).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .models.heads import (
    HEADS,
    IGNORE,  # the label the loss skips
)
from .prompting import PromptBuilder


def generative_features(
    task, tokenizer, examples: Sequence[dict], max_length: int, encoder_decoder: bool
) -> list[dict]:
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
            features.append(
                {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": [IGNORE] * len(prompt_ids) + target}
            )
    return features


def encoder_features(
    task, tokenizer, examples: Sequence[dict], head: str, labels: list[str], max_length: int
) -> list[dict]:

    h = HEADS.get(head)
    return [h.encode(tokenizer, task.encoder_input(ex), task.gold(ex), labels, max_length) for ex in examples]


@torch.inference_mode()
def encoder_predict(
    model,
    tokenizer,
    task,
    examples: Sequence[dict],
    head: str,
    labels: list[str],
    max_length: int,
    batch_size: int = 16,
) -> list:
    """Predictions in the metric's structure: tags per original word, a label, a label set, or a score."""

    h = HEADS.get(head)
    feats = encoder_features(task, tokenizer, examples, head, labels, max_length)
    out = []
    for start in range(0, len(feats), batch_size):
        chunk = feats[start : start + batch_size]
        batch = h.pad(tokenizer, [{k: v for k, v in f.items() if k != "labels"} for f in chunk])
        logits = model(**{k: v.to(model.device) for k, v in batch.items()}).logits.float().cpu()
        for row, ex in enumerate(examples[start : start + batch_size]):
            starts = h.word_starts(tokenizer, task.encoder_input(ex), max_length)
            out.append(h.decode(logits[row], labels, starts))
    return out
