"""End to end with the real SmolLM2-135M on real BLURB data: `biotune eval` zero-shot and 3-shot on one
dataset per task type; the metric is recomputed here, independently, from the predictions file."""

import json

import numpy as np
import pytest

from biotune.cli import main
from biotune.io import read_jsonl
from conftest import once

pytestmark = pytest.mark.model

ONE_PER_TASK = ["ncbi-disease", "ebm-pico", "gad", "biosses", "hoc", "bioasq"]
LIMIT = 2  # examples per dataset: real generation on 2 cores (EBM PICO's abstracts: ~25 s each)


def run(out_dir, *args):
    with pytest.raises(SystemExit) as e:
        main(["eval", "--limit", str(LIMIT), "--seed", "0", "--no-progress", "--output-dir", str(out_dir), *args])
        raise SystemExit(0)
    assert e.value.code == 0
    return json.loads((out_dir / "metrics.json").read_text())


class _Runs(dict):
    """The eval runs, each made when a test first asks for it (so a worker makes only those its tests use)."""

    def __init__(self, root, data_dir):
        super().__init__()
        common = ("--data-dir", str(data_dir))
        # generation is bound by its steps (one pass over the weights each): answers capped at 32 tokens (the
        # untrained model's NER and PICO answers run on to the tasks' 96 and 128)
        capped = (*common, "--max-new-tokens", "32")
        self.root, self.recipes = (
            root,
            {
                "zero": ("zero", "--datasets", ",".join(ONE_PER_TASK), "--shots", "0", *capped),
                # EBM PICO has no train split here: its shots come from dev, chosen explicitly. HoC's abstracts and
                # BioASQ's contexts make 3-shot prompts of thousands of tokens (BioASQ took 185 of this run's 231 s):
                # their shots are checked in the likelihood run (1 shot)
                "three": (
                    "three",
                    "--datasets",
                    ",".join(d for d in ONE_PER_TASK if d not in ("hoc", "bioasq")),
                    "--shots",
                    "3",
                    "--shot-split",
                    "dev",
                    *capped,
                ),
                "three_again": ("again", "--datasets", "gad,ebm-pico", "--shots", "3", "--shot-split", "dev", *capped),
                "likelihood": ("ll", "--datasets", "gad,bioasq", "--shots", "1", "--scoring", "likelihood", *common),
                # HoC asks one yes/no question per hallmark: ten prompts of a whole abstract (twenty with a shot)
                "likelihood_hoc": ("ll-hoc", "--datasets", "hoc", "--shots", "0", "--scoring", "likelihood", *common),
            },
        )

    def __missing__(self, setting):
        folder, *args = self.recipes[setting]
        self[setting] = (self.root / folder, run(self.root / folder, *args))
        return self[setting]


@pytest.fixture
def runs(tmp_path_factory, data_dir):
    return once("eval-e2e", lambda: _Runs(tmp_path_factory.mktemp("eval"), data_dir))


# --- independent re-implementations of the scoring rules, from the predictions file only ---------------


def _entities(tags):
    out, start, kind = set(), None, None
    for i, t in enumerate(list(tags) + ["O"]):
        begins = t.startswith("B") or (t != "O" and start is None) or (t != "O" and t[2:] != kind)
        if start is not None and (t == "O" or begins):
            out.add((start, i, kind))
            start = None
        if t != "O" and start is None:
            start, kind = i, t[2:]
    return out


def recompute(name, rows):
    gold = [r["gold"] for r in rows]
    pred = [r["prediction"] for r in rows]
    if name == "ncbi-disease":
        g = {(i, *e) for i, t in enumerate(gold) for e in _entities(t)}
        p = {(i, *e) for i, t in enumerate(pred) for e in _entities(t)}
        tp = len(g & p)
        return 0.0 if not tp else 100 * 2 * tp / (len(g) + len(p))
    if name == "ebm-pico":  # LinkBERT's rule: the mean over the classes present in gold or prediction
        f1s = []
        pairs = [(a, b) for gs, ps in zip(gold, pred) for a, b in zip(gs, ps)]
        for c in ("I-PAR", "I-INT", "I-OUT"):
            tp = sum(a == c and b == c for a, b in pairs)
            n_p, n_g = sum(b == c for _, b in pairs), sum(a == c for a, _ in pairs)
            if n_p + n_g:
                f1s.append(0.0 if not tp else 2 * tp / (n_p + n_g))
        return 100 * sum(f1s) / len(f1s) if f1s else 0.0
    if name == "gad":
        tp = sum(g == p == "1" for g, p in zip(gold, pred))
        n_p, n_g = sum(p != "0" for p in pred), sum(g != "0" for g in gold)
        return 0.0 if not tp else 100 * 2 * tp / (n_p + n_g)
    if name == "biosses":
        if np.std(pred) == 0:
            return 0.0
        return 100 * float(np.corrcoef(gold, pred)[0, 1])
    if name == "hoc":
        tp = sum(len(set(g) & set(p)) for g, p in zip(gold, pred))
        n_p, n_g = sum(len(p) for p in pred), sum(len(g) for g in gold)
        return 0.0 if not tp else 100 * 2 * tp / (n_p + n_g)
    if name == "bioasq":
        return 100 * sum(g == p for g, p in zip(gold, pred)) / len(gold)
    raise AssertionError(name)


def _check_recomputes(runs, setting):
    out_dir, summary = runs[setting]
    assert summary["settings"]["limit"] == LIMIT
    assert summary["settings"]["max_new_tokens"] == (32 if setting in ("zero", "three") else None)
    for name, result in summary["datasets"].items():
        rows = read_jsonl(out_dir / name / "predictions.jsonl")
        assert len(rows) == result["n"] == LIMIT
        for row in rows:
            assert {"id", "prompt", "raw_output", "prediction", "gold", "parsed"} <= set(row)
        # an answer cut at the token cap is counted apart (n_truncated), never as unparsed
        assert result["n_unparsed"] == sum(not r["parsed"] and not r.get("at_cap") for r in rows)
        if result["scoring"] == "generate":
            assert result["n_truncated"] == sum(r["at_cap"] for r in rows)
        assert result["score"] == pytest.approx(recompute(name, rows), abs=1e-9)
    assert "blurb_score" in summary["blurb"]


# Two classes, each with its own runs (a class-scoped fixture), each kept on one pytest-xdist worker (its group):
# the generation runs and the likelihood run go to different workers, and no run is made twice.
@pytest.mark.xdist_group("eval-generation")
class TestGeneration:
    @pytest.mark.parametrize("setting", ["zero", "three"])
    def test_eval_writes_predictions_and_metrics_that_recompute(self, runs, setting):
        _check_recomputes(runs, setting)

    def test_zero_and_three_shot_prompts(self, runs):
        _zero_and_three_shot_prompts(runs)

    def test_same_seed_gives_identical_prompts_and_predictions(self, runs):
        _same_seed(runs)


@pytest.mark.xdist_group("eval-likelihood")
class TestLikelihood:
    @pytest.mark.parametrize("setting", ["likelihood", "likelihood_hoc"])
    def test_eval_writes_predictions_and_metrics_that_recompute(self, runs, setting):
        _check_recomputes(runs, setting)

    def test_likelihood_scoring_picks_the_best_option(self, runs):
        _likelihood_picks_the_best_option(runs)


def _zero_and_three_shot_prompts(runs):
    zero = read_jsonl(runs["zero"][0] / "gad" / "predictions.jsonl")
    three = read_jsonl(runs["three"][0] / "gad" / "predictions.jsonl")
    assert all(r["shot_ids"] == [] for r in zero)
    assert all(len(r["shot_ids"]) == 3 for r in three)
    assert all(r["prompt"].count("<|im_start|>user") == 4 for r in three)
    assert runs["three"][1]["blurb"]["n_task_types"] == 4  # NER, PICO, relations, similarity (not HoC, BioASQ)
    assert runs["zero"][1]["blurb"]["n_task_types"] == 6


def _same_seed(runs):
    for name in ("gad", "ebm-pico"):
        a = read_jsonl(runs["three"][0] / name / "predictions.jsonl")
        b = read_jsonl(runs["three_again"][0] / name / "predictions.jsonl")
        assert a == b


def _likelihood_picks_the_best_option(runs):
    out_dir, summary = runs["likelihood"]
    assert {r["scoring"] for r in summary["datasets"].values()} == {"likelihood"}
    for row in read_jsonl(out_dir / "bioasq" / "predictions.jsonl"):
        scores = row["option_scores"]
        assert row["raw_output"] == max(scores, key=scores.get)
        assert row["parsed"] and row["prediction"] == row["raw_output"]
    hoc = read_jsonl(runs["likelihood_hoc"][0] / "hoc" / "predictions.jsonl")
    assert all(len(r["option_scores"]) == 10 and len(r["prompt"]) == 10 for r in hoc)
