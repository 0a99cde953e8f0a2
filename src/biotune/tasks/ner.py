"""NER (BC5-chem, BC5-disease, NCBI-disease, BC2GM, JNLPBA): list (or mark) the mentions; scored by entity-level
F1. Output formats: biotune.tasks.mentions."""

from __future__ import annotations

from biotune import metrics

from .base import TASKS, Parsed, TokenTaggingTask, clean_output
from .mentions import inline_text, mentions_text, parse_inline, place, spans_from_tags, split_mentions

MARK = "e"


@TASKS.register("ner")
class NerTask(TokenTaggingTask):
    name = "ner"
    metric = "entity-level micro F1"

    @property
    def max_new_tokens(self) -> int:
        return 96 if self.output_format == "list" else 320

    def default_instruction(self) -> str:
        if self.output_format == "inline":
            return (
                f"Rewrite the sentence exactly as it is, with every {self.spec.entity} mention marked as "
                f"<{MARK}>mention</{MARK}>."
            )
        return (
            f"Extract every {self.spec.entity} mention from the sentence. Copy each mention exactly as it is "
            "written in the sentence and separate mentions with '; '. If there is none, answer 'none'."
        )

    def target(self, example: dict) -> str:
        spans = spans_from_tags(example["tags"], ("B", "I"))
        if self.output_format == "inline":
            return inline_text(example["tokens"], [(s, e, MARK) for s, e in spans])
        return "; ".join(mentions_text(example["tokens"], spans)) or "none"

    def parse(self, text: str, example: dict) -> Parsed:
        tokens = example["tokens"]
        tags = ["O"] * len(tokens)
        answer = clean_output(text)
        if self.output_format == "inline":
            marked, n_mentions, not_found = parse_inline(answer, tokens, (MARK,))
            spans = [(s, e) for s, e, _ in marked]
        else:
            spans, n_mentions, not_found = place(split_mentions(answer), tokens, [False] * len(tokens))
        for s, e in spans:
            tags[s:e] = ["B"] + ["I"] * (e - s - 1)
        return Parsed(tags, bool(answer) and (n_mentions == 0 or not_found < n_mentions))

    def score_gold(self, golds, predictions, ids) -> dict:
        m = metrics.entity_f1(golds, predictions)
        return {"score": 100 * m["f1"], **{k: 100 * v for k, v in m.items()}}
