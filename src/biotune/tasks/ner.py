"""NER (BC5-chem, BC5-disease, NCBI-disease, BC2GM, JNLPBA): list the mentions; scored by entity-level F1."""

from __future__ import annotations

from biotune import metrics

from .base import TASKS, Parsed, TokenTaggingTask, clean_output
from .mentions import mentions_text, place, spans_from_tags, split_mentions


@TASKS.register("ner")
class NerTask(TokenTaggingTask):
    name = "ner"
    metric = "entity-level micro F1"
    max_new_tokens = 96

    def default_instruction(self) -> str:
        return (
            f"Extract every {self.spec.entity} mention from the sentence. Copy each mention exactly as it is "
            "written in the sentence and separate mentions with '; '. If there is none, answer 'none'."
        )

    def target(self, example: dict) -> str:
        spans = spans_from_tags(example["tags"], ("B", "I"))
        return "; ".join(mentions_text(example["tokens"], spans)) or "none"

    def parse(self, text: str, example: dict) -> Parsed:
        tokens = example["tokens"]
        mentions = split_mentions(clean_output(text))
        spans, not_found = place(mentions, tokens, [False] * len(tokens))
        tags = ["O"] * len(tokens)
        for s, e in spans:
            tags[s:e] = ["B"] + ["I"] * (e - s - 1)
        ok = bool(clean_output(text)) and (not mentions or not_found < len(mentions))
        return Parsed(tags, ok)

    def score_gold(self, golds, predictions, ids) -> dict:
        m = metrics.entity_f1(golds, predictions)
        return {"score": 100 * m["f1"], **{k: 100 * v for k, v in m.items()}}
