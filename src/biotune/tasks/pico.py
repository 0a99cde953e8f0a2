"""EBM PICO: list Participants / Interventions / Outcomes spans; scored by word-level macro F1 over P, I, O.

`score` also reports `span_macro_f1`, the way LinkBERT's code computes PICO (seqeval per-type entity F1,
averaged): the two differ whenever a predicted span overlaps a gold span without matching its boundaries.
The BLURB score uses the word-level rule, as ../shared/docs/blurb.md states it.
"""

from __future__ import annotations

from biotune import metrics

from .base import TASKS, Parsed, TokenTaggingTask
from .mentions import mentions_text, place, spans_from_tags, split_mentions

CLASSES = ("I-PAR", "I-INT", "I-OUT")


@TASKS.register("pico")
class PicoTask(TokenTaggingTask):
    name = "pico"
    metric = "word-level macro F1 (P, I, O)"
    max_new_tokens = 128

    def _names(self) -> dict[str, str]:
        return {c: self.spec.label_names.get(c, c) for c in CLASSES}

    def default_instruction(self) -> str:
        names = self._names()
        return (
            "From the sentence of a clinical trial abstract, extract the text spans that describe the "
            f"{names['I-PAR'].lower()}, the {names['I-INT'].lower()} and the {names['I-OUT'].lower()}. "
            "Answer with exactly three lines:\n"
            + "\n".join(f"{n}: <spans separated by '; ', or none>" for n in names.values())
        )

    def target(self, example: dict) -> str:
        lines = []
        for tag, name in self._names().items():
            spans = spans_from_tags(example["tags"], (tag,))
            lines.append(f"{name}: {'; '.join(mentions_text(example['tokens'], spans)) or 'none'}")
        return "\n".join(lines)

    def parse(self, text: str, example: dict) -> Parsed:
        tokens = example["tokens"]
        taken = [False] * len(tokens)
        tags = ["O"] * len(tokens)
        headers = {name.lower(): tag for tag, name in self._names().items()}
        n_lines = n_mentions = n_not_found = 0
        for line in text.strip().splitlines():
            head, sep, rest = line.partition(":")
            tag = headers.get(head.strip().strip("*# ").lower())
            if not sep or tag is None:
                continue
            n_lines += 1
            mentions = split_mentions(rest, strip_period=False)
            spans, not_found = place(mentions, tokens, taken)
            n_mentions += len(mentions)
            n_not_found += not_found
            for s, e in spans:
                tags[s:e] = [tag] * (e - s)
        ok = n_lines > 0 and (n_mentions == 0 or n_not_found < n_mentions)
        return Parsed(tags, ok)

    def score_gold(self, golds, predictions, ids) -> dict:
        word = metrics.word_macro_f1(golds, predictions, CLASSES)
        span = metrics.span_macro_f1(golds, predictions, CLASSES)
        return {
            "score": 100 * word["f1"],
            **{k: 100 * v for k, v in word.items()},
            "span_macro_f1": 100 * span["f1"],
        }
