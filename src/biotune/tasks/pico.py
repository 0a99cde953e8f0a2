"""EBM PICO: list (or mark) the Participants / Interventions / Outcomes spans; scored by word-level macro F1.

The macro mean runs over the classes present in gold or prediction, as LinkBERT's code (BLURB's reference)
computes it: it rewrites every I-x tag as B-x, so each word is an entity of its own and seqeval's per-type F1 is
the word-level F1, averaged over the types seqeval sees. A class absent from both counts for nothing (not as 0).
Output formats: biotune.tasks.mentions.
"""

from __future__ import annotations

import numpy as np

from biotune.fields import ConfigFieldError
from biotune.metrics import dice_f1_from_counts

from .base import TASKS, Parsed, TokenTaggingTask
from .mentions import inline_text, mentions_text, parse_inline, place, spans_from_tags, split_mentions

CLASSES = ("I-PAR", "I-INT", "I-OUT")
MARKS = {"I-PAR": "P", "I-INT": "I", "I-OUT": "O"}  # the inline format's markers


@TASKS.register("pico")
class PicoTask(TokenTaggingTask):
    name = "pico"
    rule = "word-level macro F1 (P, I, O)"

    @classmethod
    def check_file(cls, df) -> None:
        if df.tags and not set(df.tags) <= {"O", *CLASSES}:
            raise ConfigFieldError(
                ["tags"],
                "PICO tags are O, I-PAR, I-INT, I-OUT (EBM-NLP's); for other span types "
                "use task: ner with typed entities",
            )
        super().check_file(df)

    @property
    def max_new_tokens(self) -> int:
        return 128 if self.output_format == "list" else 384

    def _names(self) -> dict[str, str]:
        return {c: self.spec.label_names.get(c, c) for c in CLASSES}

    def default_instruction(self) -> str:
        names = self._names()
        if self.output_format == "inline":
            return (
                "Rewrite the sentence of a clinical trial abstract exactly as it is, marking the text spans that "
                f"describe the {names['I-PAR'].lower()} as <P>span</P>, the {names['I-INT'].lower()} as "
                f"<I>span</I> and the {names['I-OUT'].lower()} as <O>span</O>."
            )
        return (
            "From the sentence of a clinical trial abstract, extract the text spans that describe the "
            f"{names['I-PAR'].lower()}, the {names['I-INT'].lower()} and the {names['I-OUT'].lower()}. "
            "Answer with exactly three lines:\n"
            + "\n".join(f"{n}: <spans separated by '; ', or none>" for n in names.values())
        )

    def target(self, example: dict) -> str:
        if self.output_format == "inline":
            spans = [(s, e, MARKS[t]) for t in CLASSES for s, e in spans_from_tags(example["tags"], (t,))]
            return inline_text(example["tokens"], spans)
        lines = []
        for tag, name in self._names().items():
            spans = spans_from_tags(example["tags"], (tag,))
            lines.append(f"{name}: {'; '.join(mentions_text(example['tokens'], spans)) or 'none'}")
        return "\n".join(lines)

    def parse(self, text: str, example: dict) -> Parsed:
        tokens = example["tokens"]
        tags = ["O"] * len(tokens)
        if self.output_format == "inline":
            by_mark = {m: t for t, m in MARKS.items()}
            marked, n_mentions, n_not_found = parse_inline(text.strip(), tokens, tuple(by_mark))
            for s, e, m in marked:
                tags[s:e] = [by_mark[m]] * (e - s)
            return Parsed(tags, bool(text.strip()) and (n_mentions == 0 or n_not_found < n_mentions))
        taken = [False] * len(tokens)
        headers = {name.lower(): tag for tag, name in self._names().items()}
        n_lines = n_mentions = n_not_found = 0
        for line in text.strip().splitlines():
            head, sep, rest = line.partition(":")
            tag = headers.get(head.strip().strip("*# ").lower())
            if not sep or tag is None:
                continue
            n_lines += 1
            spans, mentions, not_found = place(split_mentions(rest), tokens, taken, strip_period=False)
            n_mentions += mentions
            n_not_found += not_found
            for s, e in spans:
                tags[s:e] = [tag] * (e - s)
        ok = n_lines > 0 and (n_mentions == 0 or n_not_found < n_mentions)
        return Parsed(tags, ok)

    def rule_stats(self, golds, predictions, ids):
        """Per sentence and class (P, I, O): words (tp, predicted, gold)."""
        rows = []
        for g, p in zip(golds, predictions):
            if len(g) != len(p):
                raise ValueError(f"{len(g)} gold tags but {len(p)} predicted")
            row = []
            for c in CLASSES:
                row += [sum(a == c and b == c for a, b in zip(g, p)), sum(b == c for b in p), sum(a == c for a in g)]
            rows.append(row)
        return np.array(rows, dtype=float).reshape(-1, 3 * len(CLASSES))

    @staticmethod
    def _per_class(totals):
        """Each class's F1 and whether it occurs in gold or prediction (the macro mean runs over those)."""
        t = np.asarray(totals, dtype=float)
        f1 = np.stack(
            [dice_f1_from_counts(*(t[..., 3 * i + j] for j in range(3))) for i in range(len(CLASSES))], axis=-1
        )
        present = np.stack([t[..., 3 * i + 1] + t[..., 3 * i + 2] > 0 for i in range(len(CLASSES))], axis=-1)
        return f1, present

    def rule_score(self, totals):
        f1, present = self._per_class(totals)
        n = present.sum(-1)
        return 100 * np.divide((f1 * present).sum(-1), n, out=np.zeros(n.shape), where=n > 0)

    def rule_details(self, totals) -> dict:
        f1, present = self._per_class(totals)
        out = {f"f1_{c}": float(100 * f1[i]) for i, c in enumerate(CLASSES) if present[i]}
        out["f1"] = float(self.rule_score(totals))
        out["n_classes"] = int(present.sum())
        return out
