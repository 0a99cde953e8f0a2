"""Mentions as text, and back onto the original tokens (shared by NER and PICO).

Two output formats (`OUTPUT_FORMATS`):

- `list`: the mentions, separated by '; ' ("5-fluorouracil; cisplatin"). A model writes a mention as it reads it
  ("5-fluorouracil"), the data has it tokenized ("5 - fluorouracil"), so a mention is matched to token spans by
  its text with whitespace removed: case-sensitively first, case-insensitively only where that finds nothing
  ("IN" never tags "in"); as written first, then without a list bullet, quotes or a final '.' ("2. mg" keeps its
  "2."); a none-word ("none", "no") is no mention, unless written in capitals as the sentence has it ("NO",
  nitric oxide). A mention that
  occurs several times in the sentence is tagged at every occurrence: the format cannot say which one is meant.
- `inline`: the sentence rewritten with every mention marked in place ("... with <e>5 - fluorouracil</e> and
  ..."; PICO: <P>, <I>, <O>). It names each occurrence, so the perfect model's round trip is exact.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

OUTPUT_FORMATS = ("list", "inline")
NONE_WORDS = {"none", "no", "n/a", "nothing", "-", ""}
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def _norm(s: str, fold: bool = False) -> str:
    s = re.sub(r"\s+", "", s)
    return s.lower() if fold else s


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
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def split_mentions(text: str) -> list[str]:
    """'a; b\\n- c' -> ['a', 'b', '- c']: the items as written (whitespace trimmed); `place` reads them."""
    return [part.strip() for part in re.split(r"[;\n]", text) if part.strip()]


def variants(item: str, strip_period: bool) -> list[str]:
    """What an item may stand for, in the order tried: as written, without a list bullet, without quotes around
    it, without a final '.' (NER, `strip_period`: without the '.' first: entities almost never end with one)."""
    out = [item]
    bare = _BULLET.sub("", item).strip()
    out.append(bare)
    unquoted = bare.strip("\"'`").strip()
    out.append(unquoted)
    no_period = unquoted.rstrip(".").strip()
    if strip_period:
        out.insert(0, item.rstrip(".").strip())
        out.insert(1, no_period)
    out.append(no_period)
    return [v for i, v in enumerate(out) if v and v not in out[:i]]


def locate(mention: str, tokens: Sequence[str], fold: bool = False) -> list[tuple[int, int]]:
    """Every token span whose text equals `mention`, whitespace ignored (and case, with `fold`)."""
    target = _norm(mention, fold)
    if not target:
        return []
    normed = [_norm(t, fold) for t in tokens]
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


def find(item: str, tokens: Sequence[str], strip_period: bool = True) -> list[tuple[int, int]]:
    """The spans an output item names: the first variant found case-sensitively, else case-insensitively."""
    for fold in (False, True):
        for v in variants(item, strip_period):
            spans = locate(v, tokens, fold)
            if spans:
                return spans
    return []


def is_none(item: str) -> bool:
    return _BULLET.sub("", item).strip().strip("\"'`.").strip().lower() in NONE_WORDS


def place(
    items: Sequence[str], tokens: Sequence[str], taken: list[bool], strip_period: bool = True
) -> tuple[list[tuple[int, int]], int, int]:
    """Spans for the output items that don't overlap spans already `taken` (updated in place), longest item
    first. Returns (spans, mentions, not found): a none-word the sentence does not have is no mention."""
    spans, n_mentions, not_found = [], 0, 0
    for item in sorted(set(items), key=lambda m: -len(_norm(m))):
        if is_none(item) and not (item.isupper() and locate(item, tokens)):  # "NO" in the sentence: nitric oxide
            continue
        found = find(item, tokens, strip_period)
        n_mentions += 1
        if not found:
            not_found += 1
        for s, e in found:
            if not any(taken[s:e]):
                taken[s:e] = [True] * (e - s)
                spans.append((s, e))
    return sorted(spans), n_mentions, not_found


# -- the inline format ---------------------------------------------------------------------------------------


def inline_text(tokens: Sequence[str], labelled: Sequence[tuple[int, int, str]]) -> str:
    """The sentence with each (start, end, marker) span written as <marker>tokens</marker>."""
    starts = {s: (e, m) for s, e, m in labelled}
    out, i = [], 0
    while i < len(tokens):
        if i in starts:
            e, m = starts[i]
            out.append(f"<{m}>{' '.join(tokens[i:e])}</{m}>")
            i = e
        else:
            out.append(tokens[i])
            i += 1
    return " ".join(out)


def parse_inline(
    text: str, tokens: Sequence[str], markers: Sequence[str]
) -> tuple[list[tuple[int, int, str]], int, int]:
    """(start, end, marker) spans of a rewritten sentence, the number of marked mentions, and how many of them
    matched no tokens. Where the rewritten text equals the sentence (whitespace aside) each mark lands exactly
    where it was written; otherwise each marked text is looked up and the occurrence nearest to where it was
    written is taken."""
    alt = "|".join(re.escape(m) for m in markers)
    pattern = re.compile(rf"<({alt})>(.*?)</\1>", re.S)
    plain_parts, marks, pos = [], [], 0  # marks: (char start, char end in the plain text, marker, text)
    cursor = 0
    for m in pattern.finditer(text):
        before = _norm(text[pos : m.start()])
        plain_parts.append(before)
        cursor += len(before)
        inner = _norm(m.group(2))
        marks.append((cursor, cursor + len(inner), m.group(1), m.group(2)))
        plain_parts.append(inner)
        cursor += len(inner)
        pos = m.end()
    plain_parts.append(_norm(text[pos:]))
    plain = "".join(plain_parts)
    bounds, c = [], 0  # each token's char range in the sentence's whitespace-free text
    for t in tokens:
        n = len(_norm(t))
        bounds.append((c, c + n))
        c += n
    aligned = plain == "".join(_norm(t) for t in tokens)
    spans, not_found = [], 0
    for start, end, marker, inner in marks:
        if aligned:
            inside = [i for i, (a, b) in enumerate(bounds) if a >= start and b <= end and b > a]
            found = [(inside[0], inside[-1] + 1)] if inside else []
        else:
            found = find(inner, tokens, strip_period=False)
            if found:
                total = max(len(plain), 1)
                where = start / total
                found = [min(found, key=lambda s: abs(bounds[s[0]][0] / max(c, 1) - where))]
        if not found:
            not_found += 1
        spans += [(s, e, marker) for s, e in found]
    return _non_overlapping(spans), len(marks), not_found


def _non_overlapping(spans):
    out, taken = [], set()
    for s, e, m in sorted(spans, key=lambda x: (x[0], -x[1])):
        if not taken & set(range(s, e)):
            taken |= set(range(s, e))
            out.append((s, e, m))
    return out
