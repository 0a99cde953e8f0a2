"""One evaluation path: `biotune eval` evaluates every generative family (causal, seq2seq, GLM) as zero-/few-shot
experiments through the same code as `biotune run`, with the run's metrics.json layout, on tiny random-init
models of the real architectures saved as model folders."""

import json

import pytest
import yaml

from biotune.config import validate_experiment
from biotune.errors import BiotuneError
from biotune.eval_run import EvalConfig, run_eval
from biotune.models import FAMILIES, family_of
from biotune.train import run_experiment
from test_engine import TINY


def _folder(family: str) -> str:
    """The tiny random-init model of `family` as a model folder (what a user's local checkpoint is)."""
    from biotune.data import get_spec

    cfg = validate_experiment(
        {
            "dataset": "gad",
            "model": dict(TINY[family], family=family),
            "method": {"name": "zero_shot" if family != "encoder" else "fft"},
        }
    )
    fam = FAMILIES.get(family)
    tokenizer = fam.load_tokenizer(cfg.model)
    head = fam.head_for("relation")
    return fam.checkpoint(cfg.model, tokenizer, head, get_spec("gad"), 0)


def _small_blurb(folder, data_dir):
    """GAD and BIOSSES as BLURB lays them out, GAD cut to its first lines: `biotune run` of an in-context
    experiment predicts the whole dev split for its dev score (535 GAD sentences), which would be most of this
    test's time and none of its point."""
    for name, lines in (("GAD", 16), ("BIOSSES", None)):
        (folder / name).mkdir(parents=True)
        for split in ("train", "dev", "test"):
            text = (data_dir / name / f"{split}.tsv").read_text(encoding="utf-8")
            keep = text.splitlines(keepends=True)[:lines] if lines else [text]
            (folder / name / f"{split}.tsv").write_text("".join(keep), encoding="utf-8")
    return folder


@pytest.mark.parametrize("family", ["causal", "seq2seq", "glm"])
def test_eval_runs_every_generative_family_as_run_does(family, tmp_path, data_dir):
    folder = _folder(family)
    assert family_of(folder) == family
    small = _small_blurb(tmp_path / "blurb", data_dir)
    cfg = EvalConfig(
        model=folder,
        datasets=["gad", "biosses"],
        shots=1,
        limit=2,
        batch_size=2,
        output_dir=str(tmp_path / "eval"),
        data_dir=str(small),
        progress=False,
    )
    summary = run_eval(cfg)
    assert set(summary["datasets"]) == {"gad", "biosses"} and summary["settings"]["family"] == family
    for name in ("gad", "biosses"):
        run_dir = tmp_path / "eval" / summary["runs"][name]
        written = json.loads((run_dir / "metrics.json").read_text())
        # the run's layout, and the numbers of the table
        assert {
            "name",
            "dataset",
            "model",
            "family",
            "method",
            "seed",
            "identity_hash",
            "metrics",
            "resources",
            "versions",
        } <= set(written)
        assert written["method"] == "few_shot" and written["family"] == family
        assert written["metrics"]["score"] == summary["datasets"][name]["score"]
        # `biotune run` of the experiment the evaluation wrote gives the same identity and result
        experiment = yaml.safe_load((run_dir / "config.yaml").read_text())
        experiment["output_dir"] = str(tmp_path / "run" / name)
        again = run_experiment(validate_experiment(experiment), progress=False)
        assert again["identity_hash"] == written["identity_hash"]
        assert again["metrics"] == written["metrics"]
        rows = (tmp_path / "run" / name / "predictions.jsonl").read_text()
        assert (run_dir / "predictions.jsonl").read_text() == rows


def test_eval_resumes_at_the_next_dataset_and_refuses_another_identity(tmp_path, data_dir):
    folder = _folder("causal")
    common = dict(
        model=folder, limit=2, batch_size=2, output_dir=str(tmp_path / "eval"), data_dir=str(data_dir), progress=False
    )
    first = run_eval(EvalConfig(datasets=["gad"], **common))
    stamp = (tmp_path / "eval" / "gad" / "metrics.json").stat().st_mtime_ns
    both = run_eval(EvalConfig(datasets=["gad", "biosses"], **common))
    assert (tmp_path / "eval" / "gad" / "metrics.json").stat().st_mtime_ns == stamp  # kept, not recomputed
    assert both["datasets"]["gad"]["score"] == first["datasets"]["gad"]["score"]
    with pytest.raises(BiotuneError, match="another experiment.*eval.limit: 2 -> 3"):
        run_eval(EvalConfig(datasets=["gad"], **{**common, "limit": 3}))
    again = run_eval(EvalConfig(datasets=["gad"], force=True, **{**common, "limit": 3}))
    assert again["datasets"]["gad"]["n"] == 3


def test_eval_tells_an_encoder_needs_a_trained_head(tmp_path, data_dir):
    folder = _folder("encoder")
    assert family_of(folder) == "encoder"
    with pytest.raises(BiotuneError, match="zero_shot"):
        run_eval(
            EvalConfig(
                model=folder,
                datasets=["gad"],
                limit=2,
                output_dir=str(tmp_path / "e"),
                data_dir=str(data_dir),
                progress=False,
            )
        )


def test_max_new_tokens_caps_the_answers_and_enters_the_identity_only_when_set(tmp_path, data_dir):
    from biotune.identity import identity
    from biotune.io import read_jsonl

    folder = _folder("causal")  # random weights: the answers run on to their budget
    common = dict(
        model=folder, datasets=["ncbi-disease"], limit=2, batch_size=2, data_dir=str(data_dir), progress=False
    )
    full, capped = (
        EvalConfig(output_dir=str(tmp_path / "full"), **common),
        EvalConfig(output_dir=str(tmp_path / "capped"), max_new_tokens=5, **common),
    )
    exp_full, exp_capped = full.experiment("ncbi-disease", "causal"), capped.experiment("ncbi-disease", "causal")
    assert "max_new_tokens" not in identity(exp_full)["experiment"]["eval"]  # earlier results stay current
    assert identity(exp_capped)["experiment"]["eval"]["max_new_tokens"] == 5
    run_eval(full), run_eval(capped)
    from biotune.models import FAMILIES

    tokenizer = FAMILIES.get("causal").load_tokenizer(exp_full.model)
    answers = {
        out: [r["raw_output"] for r in read_jsonl(tmp_path / out / "ncbi-disease" / "predictions.jsonl")]
        for out in ("full", "capped")
    }
    # greedy decoding: a capped answer is the first 5 generated tokens of the uncapped one (as text: its last
    # token may end inside a character). Re-tokenizing a random model's text need not give its generated tokens
    # back, so the cap is checked as a prefix, not by counting.
    for capped_text, full_text in zip(answers["capped"], answers["full"], strict=True):
        assert full_text.startswith(capped_text.rstrip("\ufffd"))
    n_tokens = [len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers["full"]]
    assert max(n_tokens) > 10 and all(len(c) < len(f) for c, f in zip(answers["capped"], answers["full"]))
    # every capped answer ran to its cap: counted apart (the row says so), never as unparsed, the cap recorded
    rows = read_jsonl(tmp_path / "capped" / "ncbi-disease" / "predictions.jsonl")
    metrics = json.loads((tmp_path / "capped" / "ncbi-disease" / "metrics.json").read_text())["metrics"]
    assert [r["at_cap"] for r in rows] == [True, True]
    assert metrics["n_truncated"] == 2 and metrics["max_new_tokens"] == 5 and metrics["n_unparsed"] == 0
