"""Mentions as text, and back onto the original tokens (shared by NER and PICO).

A model writes mentions as it reads them ("5-fluorouracil"), the data has them tokenized ("5 - fluorouracil"),
so a mention is matched to token spans by comparing text with whitespace removed, case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

NONE_WORDS = {"none", "no", "n/a", "nothing", "-", ""}
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


def _norm(s: str) -> str:
    return re.sub(r"\s+", "", s).lower()


def spans_from_tags(tags: Sequence[str], inside: Sequence[str]) -> list[tuple[int, int]]:
    """Maximal runs of tags in `inside`, a B tag starting a new run. (start, end) end-exclusive."""
    spans, start = [], None
    for i, tag in enumerate(tags):
        if tag in inside and not (tag.startswith("B") and start is not None):
            if start is None:
                start = i
            continue
        if start is not None:
            spans.append((start, i))
            start = None
        if tag in inside:  # a B right after another mention
            start = i
    if start is not None:
        spans.append((start, len(tags)))
    return spans


def mentions_text(tokens: Sequence[str], spans: Sequence[tuple[int, int]]) -> list[str]:
    """Unique mention strings in order of first appearance."""
    seen, out = set(), []
    for s, e in spans:
        text = " ".join(tokens[s:e])
        if text.lower() not in seen:
            seen.add(text.lower())
            out.append(text)
    return out


def split_mentions(text: str, strip_period: bool = True) -> list[str]:
    """'a; b\\n- c' -> ['a', 'b', 'c']; 'none' -> []. `strip_period`: drop a final '.' from each mention
    (NER entities almost never end with one; PICO spans often do, and `locate` retries without it)."""
    items = []
    for part in re.split(r"[;\n]", text):
        part = _BULLET.sub("", part).strip().strip("\"'`")
        if strip_period:
            part = part.rstrip(".")
        part = part.strip()
        if part.lower() not in NONE_WORDS:
            items.append(part)
    return items


def locate(mention: str, tokens: Sequence[str]) -> list[tuple[int, int]]:
    """Every token span whose text equals `mention` (ignoring whitespace and case); failing that, `mention`
    without its final '.'."""
    spans = _locate(_norm(mention), tokens)
    if not spans and mention.endswith("."):
        spans = _locate(_norm(mention.rstrip(".")), tokens)
    return spans


def _locate(target: str, tokens: Sequence[str]) -> list[tuple[int, int]]:
    if not target:
        return []
    normed = [_norm(t) for t in tokens]
    spans = []
    for start in range(len(tokens)):
        acc = ""
        for end in range(start, len(tokens)):
            acc += normed[end]
            if acc == target:
                spans.append((start, end + 1))
                break
            if not target.startswith(acc):
                break
    return spans


def place(mentions: Sequence[str], tokens: Sequence[str], taken: list[bool]) -> tuple[list[tuple[int, int]], int]:
    """Spans for `mentions` that don't overlap spans already `taken` (updated in place), longest mention
    first. Returns the spans and how many mentions matched nowhere in the sentence."""
    spans, not_found = [], 0
    for mention in sorted(set(mentions), key=lambda m: -len(_norm(m))):
        found = locate(mention, tokens)
        if not found:
            not_found += 1
        for s, e in found:
            if not any(taken[s:e]):
                taken[s:e] = [True] * (e - s)
                spans.append((s, e))
    return sorted(spans), not_found
