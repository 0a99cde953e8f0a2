"""Fingerprints of the BLURB catalogue: per dataset and split, the number of examples and a SHA-256 of the
examples as loaded; per dataset, the prompt pieces of the first three test examples and the score of a fixed,
deterministic set of predictions (every third example answered with another example's target).

tests/data/blurb_fingerprints.json was written by this script on the Python catalogue (commit 07123e4), before
the BLURB datasets moved into dataset files; tests/test_dataset_files.py checks the dataset files reproduce it.

    python scripts/blurb_fingerprints.py > tests/data/blurb_fingerprints.json
"""

from __future__ import annotations

import hashlib
import json
import sys


def fingerprints(data_dir: str | None = None) -> dict:
    from biotune.data import DATASETS, SPLITS, get_spec, load_split, split_exists
    from biotune.models.encoder import label_list
    from biotune.tasks import task_for

    out = {}
    for name in DATASETS.names():
        spec = get_spec(name)
        entry: dict = {
            "task": spec.task,
            "title": spec.title,
            "blurb": spec.blurb,
            "splits": {},
            "encoder_labels": label_list(spec),
        }
        for split in SPLITS:
            if not split_exists(spec, split, data_dir):
                entry["splits"][split] = None
                continue
            rows = load_split(name, split, data_dir).to_list()
            digest = hashlib.sha256(json.dumps(rows, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
            entry["splits"][split] = {"n": len(rows), "sha256": digest}
        test = load_split(name, "test", data_dir).to_list()
        task = task_for(spec)
        entry["prompt"] = [[task.instruction(), task.render_input(e), task.target(e)] for e in test[:3]]
        preds = []
        for i, e in enumerate(test):
            source = test[(i * 7 + 1) % len(test)] if i % 3 == 0 else e
            preds.append(task.parse(task.target(source), e).value)
        entry["score"] = task.score(test, preds)
        out[name] = entry
    return out


if __name__ == "__main__":
    json.dump(fingerprints(sys.argv[1] if len(sys.argv) > 1 else None), sys.stdout, indent=1, sort_keys=True)
    print()
