"""The corpus of the own-corpus walkthrough (issue "The first hour with your own corpus"): a typed NER corpus in a
user's layout, not a file biotune ships. Its text: BC5CDR's training abstracts (the only typed biomedical NER text
on this offline machine: BLURB's BC5-chem and BC5-disease files tag the same sentences, one type each), re-split
by blocks of 10 running sentences into this corpus's own train / dev / test (600 / 150 / 200 sentences, seeded),
written as JSONL with its own field names and type names (DRUG, DISEASE-OR-SYMPTOM: hyphenated, as a user's may
be).

    python docs/walkthroughs/own-corpus/make_corpus.py --blurb ../shared/data/blurb --out /tmp/walk/data
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def read(path: Path) -> list[tuple[str, list[str], list[str]]]:
    """(document id, tokens, tags) of each sentence; the id from a -DOCSTART- line before it, where there is one."""
    out, doc, tokens, tags = [], "", [], []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if line.startswith("-DOCSTART-"):
            doc = line.split()[-1] if len(line.split()) > 1 else doc
            continue
        if not line.strip():
            if tokens:
                out.append((doc, tokens, tags))
            tokens, tags = [], []
            continue
        token, tag = line.split("\t")
        tokens.append(token)
        tags.append(tag)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--blurb", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    chem = read(args.blurb / "BC5CDR-chem" / "train.tsv")
    disease = read(args.blurb / "BC5CDR-disease" / "train.tsv")
    assert [t for _, t, _ in chem] == [t for _, t, _ in disease], "the two files tag different sentences"
    docs: dict[str, list] = {}  # BLURB's BC5CDR files name no abstract: blocks of 10 running sentences stand in
    for i, ((_, tokens, c), (_, _, d)) in enumerate(zip(chem, disease)):
        tags = [f"{x}-DRUG" if x != "O" else f"{y}-DISEASE-OR-SYMPTOM" if y != "O" else "O" for x, y in zip(c, d)]
        docs.setdefault(f"block{i // 10:04d}", []).append({"sid": f"s{i:05d}", "words": tokens, "labels": tags})
    order = sorted(docs)
    random.Random(13).shuffle(order)
    sizes = {"train": 600, "dev": 150, "test": 200}
    args.out.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        rows = []
        while len(rows) < n:
            rows += docs[order.pop()]
        with open(args.out / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for r in rows[:n]:
                f.write(json.dumps(r) + "\n")
        print(f"{split}: {n} sentences")


if __name__ == "__main__":
    main()
