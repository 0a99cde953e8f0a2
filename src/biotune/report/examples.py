"""The test examples behind a report's numbers, one click away: per dataset, where the recommended configuration
and the best alternative answer differently (the input, the gold answer and both answers, written as answer
text), and the answers a parser could not read. Read from the runs' stored predictions and the dataset's test
split; where the split is not on this machine, the example's id stands for its text."""

from __future__ import annotations

import pandas as pd

from biotune.data import load_split
from biotune.errors import BiotuneError
from biotune.tasks import task_for

from .compare import config_label, dataset_spec, predictions

CAP = 20  # examples listed per dataset (the count says how many there are)
UNPARSED_CAP = 5  # unparsed answers listed per configuration


def _inputs(spec) -> dict[str, dict]:
    """The test split's examples by id ({} where it cannot be read here)."""
    try:
        return {e["id"]: e for e in load_split(spec.ref, "test").to_list()}
    except (BiotuneError, OSError):
        return {}


def _short(text: str, limit: int = 320) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def alternative(agg: pd.DataFrame, dataset: str, recommended: str) -> str | None:
    """The best other configuration on dev (on test where no configuration has a dev score)."""
    g = agg[agg.dataset == dataset].assign(label=lambda x: [config_label(m, k) for m, k in zip(x.model, x.method)])
    g = g[g.label != recommended]
    if g.empty:
        return None
    key = "dev_mean" if g.dev_mean.notna().any() else "score_mean"
    return g.sort_values(key, ascending=False, na_position="last").label.iloc[0]


def disagreements(df: pd.DataFrame, agg: pd.DataFrame, decisions: dict, cap: int = CAP) -> dict[str, dict]:
    """Per dataset: the recommended configuration, the best alternative, the seed compared (the first both ran),
    how many test examples they answer differently out of how many, and up to `cap` of them (input, gold, both
    answers, which is right)."""
    out = {}
    for dataset, dec in decisions.items():
        rec = dec["recommended"]
        alt = alternative(agg, dataset, rec)
        if alt is None:
            continue
        g = df[df.dataset == dataset]
        label = [config_label(m, k) for m, k in zip(g.model, g.method)]
        runs = {(lab, s): o for lab, s, o in zip(label, g.seed, g.output_dir)}
        seeds_a = sorted(s for (lab, s) in runs if lab == rec)
        seeds_b = sorted(s for (lab, s) in runs if lab == alt)
        both = [s for s in seeds_a if s in seeds_b] or [None]
        sa, sb = (both[0], both[0]) if both[0] is not None else (seeds_a[0], seeds_b[0])
        a, b = predictions(runs[(rec, sa)]), predictions(runs[(alt, sb)])
        ids = [i for i in a if i in b]
        differ = [i for i in ids if a[i]["prediction"] != b[i]["prediction"]]
        spec = dataset_spec(dataset, g.output_dir)
        task = task_for(spec)
        examples = _inputs(spec) if differ else {}
        rows = []
        for i in differ[:cap]:
            ex = examples.get(i)
            gold, pa, pb = a[i]["gold"], a[i]["prediction"], b[i]["prediction"]

            def show(v, ex=ex, task=task):
                return _short(task.answer_text(v, ex) if ex else v)

            rows.append(
                {
                    "id": i,
                    "input": _short(task.render_input(ex)) if ex else "(test split not on this machine)",
                    "gold": show(gold),
                    rec: show(pa) + (" ✔" if pa == gold else ""),
                    alt: show(pb) + (" ✔" if pb == gold else ""),
                }
            )
        right_a = sum(a[i]["prediction"] == a[i]["gold"] for i in differ)
        right_b = sum(b[i]["prediction"] == b[i]["gold"] for i in differ)
        out[dataset] = {
            "recommended": rec,
            "alternative": alt,
            "seeds": (sa, sb),
            "n": len(ids),
            "differ": len(differ),
            "right": (right_a, right_b),
            "rows": pd.DataFrame(rows, columns=["id", "input", "gold", rec, alt]),
        }
    return out


def unparsed(df: pd.DataFrame, cap: int = UNPARSED_CAP) -> pd.DataFrame:
    """Per dataset and configuration with unparsed answers: the count over its seeds and up to `cap` of the raw
    answers (generative methods write them; an unparsed answer is scored as a wrong prediction)."""
    rows, seen = [], set()
    for r in df.sort_values(["dataset", "model", "method", "seed"], kind="stable").itertuples():
        key = (r.dataset, r.model, r.method)
        if key in seen or not r.n_unparsed:
            continue
        bad = [p for p in predictions(r.output_dir).values() if p.get("parsed") is False]
        for p in bad[:cap]:
            rows.append(
                {
                    "dataset": r.dataset,
                    "configuration": config_label(r.model, r.method),
                    "seed": r.seed,
                    "unparsed (this seed)": f"{int(r.n_unparsed)} of {int(r.n_test)}",
                    "id": p["id"],
                    "raw answer": _short(p.get("raw_output", ""), 200),
                }
            )
        if bad:
            seen.add(key)  # one run per configuration is enough to see what its unparsed answers look like
    return pd.DataFrame(rows, columns=["dataset", "configuration", "seed", "unparsed (this seed)", "id", "raw answer"])
