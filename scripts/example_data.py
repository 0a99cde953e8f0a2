"""Write the data of the example dataset files (configs/datasets/) from the BLURB files, as a user reproduces it:

    python scripts/example_data.py [--blurb DIR] [--out configs/datasets/data]

- `bc5cdr/{train,dev,test}.conll`: BC5CDR with typed entities (Chemical, Disease) in one file, merged from BLURB's
  BC5-chem and BC5-disease files (the same sentences, tagged once for each type; read by configs/datasets/bc5cdr.yaml);
- `gad-csv/{train,dev,test}.csv`: GAD as a spreadsheet would write it (columns pmid_sentence, sentence, relation
  with values associated / not associated; configs/datasets/gad-csv.yaml and the README's "Your own dataset");
- `hf-mirror/ncbi/ncbi_disease/`: a local copy of the hub dataset ncbi/ncbi_disease in the hub's layout (parquet
  files under data/, columns id, tokens, ner_tags as class labels O / B-Disease / I-Disease), built from BLURB's
  NCBI-disease files, for reading configs/datasets/ncbi-disease-hub.yaml without network
  (BIOTUNE_HF_MIRROR=configs/datasets/data/hf-mirror).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def read_conll(path: Path) -> list[tuple[list[str], list[str]]]:
    sentences, tokens, tags = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if tokens:
                sentences.append((tokens, tags))
            tokens, tags = [], []
            continue
        token, tag = line.split("\t")
        tokens.append(token)
        tags.append(tag)
    if tokens:
        sentences.append((tokens, tags))
    return sentences


def bc5cdr(blurb: Path, out: Path) -> None:
    (out / "bc5cdr").mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "test"):
        chem = read_conll(blurb / "BC5CDR-chem" / f"{split}.tsv")
        disease = read_conll(blurb / "BC5CDR-disease" / f"{split}.tsv")
        if [t for t, _ in chem] != [t for t, _ in disease]:
            sys.exit(f"BC5CDR-chem and BC5CDR-disease {split} do not hold the same sentences")
        lines = []
        for (tokens, c_tags), (_, d_tags) in zip(chem, disease):
            for token, c, d in zip(tokens, c_tags, d_tags):
                tag = f"{c}-Chemical" if c != "O" else f"{d}-Disease" if d != "O" else "O"
                lines.append(f"{token}\t{tag}")
            lines.append("")
        (out / "bc5cdr" / f"{split}.conll").write_text("\n".join(lines), encoding="utf-8")


def gad_csv(blurb: Path, out: Path) -> None:
    (out / "gad-csv").mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "test"):
        rows = [line.split("\t") for line in (blurb / "GAD" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()]
        with open(out / "gad-csv" / f"{split}.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["pmid_sentence", "sentence", "relation"])
            for index, sentence, label in rows[1:]:
                w.writerow([index, sentence, "associated" if label == "1" else "not associated"])


def ncbi_hub_mirror(blurb: Path, out: Path) -> None:
    import datasets

    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-Disease", "I-Disease"])),
        }
    )
    root = out / "hf-mirror" / "ncbi" / "ncbi_disease"
    (root / "data").mkdir(parents=True, exist_ok=True)
    to_int = {"O": 0, "B": 1, "I": 2}
    for split, hub_split in (("train", "train"), ("dev", "validation"), ("test", "test")):
        rows = [
            {"id": str(i), "tokens": tokens, "ner_tags": [to_int[t] for t in tags]}
            for i, (tokens, tags) in enumerate(read_conll(blurb / "NCBI-disease" / f"{split}.tsv"))
        ]
        datasets.Dataset.from_list(rows, features=features).to_parquet(
            str(root / "data" / f"{hub_split}-00000-of-00001.parquet")
        )
    (root / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n"
        "  - split: validation\n    path: data/validation-*\n  - split: test\n    path: data/test-*\n---\n"
        "A local copy of ncbi/ncbi_disease's layout, built from BLURB's NCBI-disease files by biotune's "
        "scripts/example_data.py.\n",
        encoding="utf-8",
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blurb", default=None, help="BLURB data folder (default: biotune's data location)")
    ap.add_argument("--out", default="configs/datasets/data")
    args = ap.parse_args(argv)
    from biotune.data import resolve_data_dir

    blurb, out = Path(resolve_data_dir(args.blurb)), Path(args.out)
    bc5cdr(blurb, out)
    gad_csv(blurb, out)
    ncbi_hub_mirror(blurb, out)
    print(f"wrote {out}/bc5cdr, {out}/gad-csv, {out}/hf-mirror/ncbi/ncbi_disease")


if __name__ == "__main__":
    main()
