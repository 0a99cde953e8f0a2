"""`biotune data fetch`: the BLURB files on a fresh machine, from public copies, each verified.

- Every file the built-in dataset files read (biotune.data.builtin) except PubMedQA's splits: the files BLURB's
  data-generation pipeline wrote, as committed in hieunguyen7337/KeBioLM @ bc7c366 (`data/<folder>/<split>.tsv`).
- PubMedQA: `ori_pqal.json` and `test_ground_truth.json` from its official repository (pubmedqa/pubmedqa @
  1cbae8e), then BLURB's split (the repository's `split_dataset.py pqal`: a seeded shuffle per label) regenerated
  here by `pubmedqa_split`, which reproduces its output byte for byte.

Each file is checked against the checksum biotune ships (`blurb_checksums.txt`: SHA-256, or the git blob id where
only that is known); one that does not match is not kept. A file the source does not have is reported with what
to do (ChemProt and BioASQ are registration-gated corpora; the copy commits them anyway). Sources are read as
`<mirror>/<owner>/<repo>/<commit>/<path>` (default mirror: https://raw.githubusercontent.com), so a local or
institutional mirror in that layout (`--mirror file:///...`) serves offline machines.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path

from .location import cache_dir, download, is_url
from .spec import BLURB_ROOT, DATASETS

DEFAULT_MIRROR = "https://raw.githubusercontent.com"
KEBIOLM = ("hieunguyen7337/KeBioLM", "bc7c3667c786236252ba5b26b3b921197465b7a3", "data")
PUBMEDQA = ("pubmedqa/pubmedqa", "1cbae8e92f72f20c8d3747cbb3bf5bc53554d997", "data")
PUBMEDQA_RAW = ("pubmedqa/ori_pqal.json", "pubmedqa/test_ground_truth.json")
PUBMEDQA_SPLITS = {  # file -> what of the split it holds
    "pubmedqa/blurb_split_generated/test_set.json": "test",
    "pubmedqa/blurb_split_generated/pqal_fold0/train_set.json": "train",
    "pubmedqa/blurb_split_generated/pqal_fold0/dev_set.json": "dev",
}
# what a user does when the public copy lacks a file
HINTS = {
    "ebmnlp": "EBM-NLP 2.0 (https://github.com/bepnye/EBM-NLP): build it with BLURB's data-generation pipeline "
    "(https://microsoft.github.io/BLURB/sample_code/data_generation.tar.gz)",
    "chemprot": "ChemProt is registration-gated: register at BioCreative VI (https://biocreative.bioinformatics."
    "udel.edu/) and build it with BLURB's data-generation pipeline",
    "BioASQ": "BioASQ is registration-gated: register at http://participants-area.bioasq.org and build it with "
    "BLURB's data-generation pipeline",
}


def default_target() -> Path:
    return cache_dir() / "blurb"


@dataclass
class Outcome:
    path: str  # relative to the data folder
    status: str  # ok, present, corrupt, missing, generated
    detail: str = ""


def checksums() -> dict[str, str]:
    out = {}
    for line in (Path(__file__).parent / "blurb_checksums.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, path = line.split(None, 1)
            out[path.strip()] = digest
    return out


def blurb_files() -> list[str]:
    """Every file the built-in dataset files read, relative to the data folder."""

    return [f for _, spec in DATASETS.items() if spec.root == BLURB_ROOT for f in spec.files.values()]


def digest_matches(path: Path, expected: str) -> bool:
    data = path.read_bytes()
    if expected.startswith("gitblob:"):
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == expected.removeprefix("gitblob:")
    return hashlib.sha256(data).hexdigest() == expected


def _source_url(mirror: str, source: tuple[str, str, str], path: str) -> str:
    repo, commit, folder = source
    return f"{mirror.rstrip('/')}/{repo}/{commit}/{folder}/{path}"


_NO_NETWORK = (
    "no network here? Copy the BLURB files from a machine that has it and set BIOTUNE_DATA, or fetch "
    "from a local mirror (--mirror DIR)"
)


def fetch(target: str | Path | None = None, mirror: str = DEFAULT_MIRROR, log=print) -> list[Outcome]:
    """Fetch and verify every BLURB file into `target`; returns one outcome per file."""
    target = Path(target or default_target())
    if not is_url(mirror) and Path(mirror).is_dir():
        mirror = Path(mirror).resolve().as_uri()
    sums = checksums()
    outcomes = []
    files = [f for f in blurb_files() if f not in PUBMEDQA_SPLITS] + list(PUBMEDQA_RAW)
    for i, rel in enumerate(files, 1):
        dest, expected = target / rel, sums[rel]
        if dest.is_file() and digest_matches(dest, expected):
            outcomes.append(Outcome(rel, "present"))
            continue
        source = PUBMEDQA if rel.startswith("pubmedqa/") else KEBIOLM
        name = rel.removeprefix("pubmedqa/")
        url = _source_url(mirror, source, name)
        log(f"[{i}/{len(files)}] {rel} <- {url}")
        if not download(url, dest, hint=_NO_NETWORK):
            hint = HINTS.get(rel.split("/")[0], "")
            outcomes.append(
                Outcome(rel, "missing", f"not in {source[0]} @ {source[1][:7]}" + (f"; {hint}" if hint else ""))
            )
            continue
        if not digest_matches(dest, expected):
            dest.unlink()
            outcomes.append(Outcome(rel, "corrupt", f"checksum mismatch (expected {expected[:20]}...): not kept"))
            continue
        outcomes.append(Outcome(rel, "ok"))
    raw_ok = all((target / f).is_file() and digest_matches(target / f, sums[f]) for f in PUBMEDQA_RAW)
    for rel in PUBMEDQA_SPLITS:
        if not raw_ok:
            outcomes.append(Outcome(rel, "missing", "needs pubmedqa/ori_pqal.json and test_ground_truth.json"))
    if raw_ok:
        outcomes += write_pubmedqa_split(target, sums)
    return outcomes


# -- PubMedQA: BLURB's split, regenerated ---------------------------------------------------------------------


def _chunks(pmids: list[str], folds: int, rng: random.Random) -> list[list[str]]:
    rng.shuffle(pmids)
    size = math.ceil(len(pmids) / folds)
    return [pmids[i * size : (i + 1) * size] if i < folds - 1 else pmids[i * size :] for i in range(folds)]


def _stratified(dataset: dict, folds: int, rng: random.Random) -> list[dict]:
    """Split by label (yes, no, maybe: each label's PMIDs shuffled, cut into `folds` parts, the parts joined across
    labels); when the last part comes out smaller, one random PMID of each other part moves to it."""
    by_label: dict[str, list[str]] = {"yes": [], "no": [], "maybe": []}
    for pmid, item in dataset.items():
        by_label[item["final_decision"]].append(pmid)
    parts = {label: _chunks(pmids, folds, rng) for label, pmids in by_label.items()}
    out = [{pmid: dataset[pmid] for label in by_label for pmid in parts[label][i]} for i in range(folds)]
    if len(out[-1]) != len(out[0]):
        for i in range(folds - 1):
            pmid = rng.choice(list(out[i]))
            out[-1][pmid] = out[i].pop(pmid)
    return out


def pubmedqa_split(ori_pqal: dict) -> dict[str, dict]:
    """BLURB's PubMedQA split of PQA-L (its split script with seed 0): 500 test questions, and of the other 500
    cross-validation fold 0: 50 dev, 450 train."""
    rng = random.Random(0)
    cv, test = _stratified(ori_pqal, 2, rng)
    folds = _stratified(cv, 10, rng)
    train = {pmid: item for i in range(1, 10) for pmid, item in folds[i].items()}
    return {"test": test, "dev": folds[0], "train": train}


def write_pubmedqa_split(target: Path, sums: dict[str, str]) -> list[Outcome]:
    ori = json.loads((target / "pubmedqa/ori_pqal.json").read_text(encoding="utf-8"))
    split = pubmedqa_split(ori)
    outcomes = []
    for rel, which in PUBMEDQA_SPLITS.items():
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        tmp.write_text(json.dumps(split[which], indent=4), encoding="utf-8")
        if digest_matches(tmp, sums[rel]):
            os.replace(tmp, dest)
            outcomes.append(Outcome(rel, "generated", "BLURB's split, regenerated and verified"))
        else:
            tmp.unlink()
            outcomes.append(Outcome(rel, "corrupt", "the regenerated split does not match its checksum: not kept"))
    return outcomes
