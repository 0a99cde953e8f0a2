"""NER (BC5-chem, BC5-disease, NCBI-disease, BC2GM, JNLPBA, and a user's corpus): list (or mark) the mentions;
scored by entity-level micro F1 (conlleval rules, seqeval).

A dataset has one untyped kind of mention (`entity`, tags B / I / O: every BLURB NER dataset) or typed ones
(`entities`, tags B-<type> / I-<type>): then the prompt lists the types with their descriptions, the list format
writes each mention as `<type>: <mention>`, the inline format marks it `<type>mention</type>`, and the score
counts a mention only with its type (micro F1 over all types, plus each type's F1). Output formats:
biotune.tasks.mentions.
"""

from __future__ import annotations

import re

import numpy as np

from biotune import metrics
from biotune.fields import ConfigFieldError

from .base import TASKS, MicroF1Rule, Parsed, TokenTaggingTask, clean_output
from .mentions import inline_text, mentions_text, parse_inline, place, spans_from_tags, split_mentions

MARK = "e"


@TASKS.register("ner")
class NerTask(MicroF1Rule, TokenTaggingTask):
    name = "ner"
    rule = "entity-level micro F1"
    typed_entities = True

    @classmethod
    def check_file(cls, df) -> None:
        if df.entities:  # typed: the tags default to O and B- / I- of each type
            if df.entity:
                raise ConfigFieldError(
                    ["entity"], "give either entity (one untyped kind) or entities (typed), not both"
                )
            for t in df.entities:
                if not re.fullmatch(r"[A-Za-z][\w.+-]*", t):
                    raise ConfigFieldError(
                        ["entities", t],
                        f"{t!r}: an entity type is one word as the tags write it "
                        "(B-<type>), e.g. Chemical or cell_line",
                    )
            if not df.tags:
                df.tags = ["O"] + [f"{bi}-{t}" for t in df.entities for bi in "BI"]
            for tag in df.tags:
                if tag != "O" and (tag[:2] not in ("B-", "I-") or tag[2:] not in df.entities):
                    raise ConfigFieldError(
                        ["tags"],
                        f"tag {tag!r} is not O, B-<type> or I-<type> of the entities ({', '.join(df.entities)})",
                    )
        super().check_file(df)

    @property
    def max_new_tokens(self) -> int:
        return 96 if self.output_format == "list" else 320

    @property
    def types(self) -> dict[str, str]:
        """Typed datasets: type -> description; empty for one untyped kind of mention."""
        return self.spec.entities

    def default_instruction(self) -> str:
        if self.types:
            kinds = "; ".join(f"{t} ({d})" if d != t else t for t, d in self.types.items())
            if self.output_format == "inline":
                return (
                    f"Rewrite the sentence exactly as it is, with every mention of these entity types marked as "
                    f"<type>mention</type>: {kinds}."
                )
            return (
                f"Extract every mention of these entity types from the sentence: {kinds}. Copy each mention "
                "exactly as it is written in the sentence, write it as '<type>: <mention>' and separate mentions "
                "with '; '. If there is none, answer 'none'."
            )
        if self.output_format == "inline":
            return (
                f"Rewrite the sentence exactly as it is, with every {self.spec.entity} mention marked as "
                f"<{MARK}>mention</{MARK}>."
            )
        return (
            f"Extract every {self.spec.entity} mention from the sentence. Copy each mention exactly as it is "
            "written in the sentence and separate mentions with '; '. If there is none, answer 'none'."
        )

    def _typed_spans(self, tags) -> list[tuple[int, int, str]]:
        spans = [(s, e, t) for t in self.types for s, e in spans_from_tags(tags, (f"B-{t}", f"I-{t}"))]
        return sorted(spans)

    def target(self, example: dict) -> str:
        tokens, tags = example["tokens"], example["tags"]
        if self.types:
            spans = self._typed_spans(tags)
            if self.output_format == "inline":
                return inline_text(tokens, spans)
            seen, items = set(), []
            for s, e, t in spans:
                item = f"{t}: {' '.join(tokens[s:e])}"
                if item not in seen:
                    seen.add(item)
                    items.append(item)
            return "; ".join(items) or "none"
        spans = spans_from_tags(tags, ("B", "I"))
        if self.output_format == "inline":
            return inline_text(tokens, [(s, e, MARK) for s, e in spans])
        return "; ".join(mentions_text(tokens, spans)) or "none"

    def parse(self, text: str, example: dict) -> Parsed:
        tokens = example["tokens"]
        tags = ["O"] * len(tokens)
        answer = clean_output(text)
        if self.types:
            return self._parse_typed(answer, tokens, tags)
        if self.output_format == "inline":
            marked, n_mentions, not_found = parse_inline(answer, tokens, (MARK,))
            spans = [(s, e) for s, e, _ in marked]
        else:
            spans, n_mentions, not_found = place(split_mentions(answer), tokens, [False] * len(tokens))
        for s, e in spans:
            tags[s:e] = ["B"] + ["I"] * (e - s - 1)
        return Parsed(tags, bool(answer) and (n_mentions == 0 or not_found < n_mentions))

    def _parse_typed(self, answer: str, tokens, tags) -> Parsed:
        if self.output_format == "inline":
            spans, n_mentions, not_found = parse_inline(answer, tokens, tuple(self.types))
        else:
            by_name = {t.lower(): t for t in self.types}
            items: dict[str, list[str]] = {t: [] for t in self.types}
            n_mentions = not_found = 0
            for item in split_mentions(answer):
                head, sep, mention = item.partition(":")
                kind = by_name.get(head.strip().strip("*#-• ").lower()) if sep else None
                if kind is None:
                    if item.strip().strip(".").lower() not in ("none", ""):
                        n_mentions, not_found = n_mentions + 1, not_found + 1  # a mention without a known type
                    continue
                items[kind].append(mention.strip())
            taken, spans = [False] * len(tokens), []
            for kind, mentions in items.items():
                found, n, missing = place(mentions, tokens, taken)
                spans += [(s, e, kind) for s, e in found]
                n_mentions, not_found = n_mentions + n, not_found + missing
        for s, e, kind in spans:
            tags[s:e] = [f"B-{kind}"] + [f"I-{kind}"] * (e - s - 1)
        return Parsed(tags, bool(answer) and (n_mentions == 0 or not_found < n_mentions))

    def rule_stats(self, golds, predictions, ids):
        return self.entity_stats(golds, predictions)

    def entity_stats(self, golds, predictions, strict: bool = False) -> np.ndarray:
        """Per sentence: entities (tp, predicted, gold), then the same for each type of a typed dataset; by
        conlleval's chunking rule (BLURB's), or strict IOB2's (metric `strict_entity_f1`)."""
        types = list(self.types)
        for i, (g, p) in enumerate(zip(golds, predictions)):
            if len(g) != len(p):
                raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
        rows = [metrics.entity_counts(g, p, types, strict=strict) for g, p in zip(golds, predictions)]
        return np.array(rows, dtype=float).reshape(-1, 3 * (1 + len(types)))

    def rule_details(self, totals) -> dict:
        out = super().rule_details(totals)
        for i, t in enumerate(self.types, start=1):  # each type's F1 beside the micro F1 over all
            out[f"f1_{t}"] = float(100 * metrics.f1_from_counts(*totals[3 * i : 3 * i + 3]))
        return out
