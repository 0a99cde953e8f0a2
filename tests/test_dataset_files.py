"""Datasets defined in one YAML file: the BLURB datasets as shipped files (reproducing the Python catalogue they
replaced exactly), a user's own files in each source kind (local CSV / CoNLL, URL, hub), typed entities, the
metric choice, and bad dataset files as one-line errors that name file, line and field."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from biotune.config import ExperimentConfig, load_experiment
from biotune.data import DATASETS, get_spec, load_split
from biotune.data.dataset_file import load_dataset_file
from biotune.errors import BiotuneError
from biotune.identity import hash_of, identity
from biotune.tasks import task_for
from conftest import TINY_BERT_INIT, TINY_LLAMA, cli_here, once

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "configs" / "datasets"
TRAINING = {
    "max_steps": 2,
    "batch_size": 2,
    "train_limit": 4,
    "dev_limit": 2,
    "learning_rate": 0.002,
    "max_length": 192,
}


def biotune(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "biotune", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


def one_line_error(result) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def examples(tmp_path_factory, data_dir) -> Path:
    """A copy of the repository's layout: configs/datasets/*.yaml and the data scripts/example_data.py writes."""

    def make():
        root = tmp_path_factory.mktemp("examples")
        shutil.copytree(EXAMPLES, root / "configs" / "datasets")
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "example_data.py"),
                "--blurb",
                str(data_dir),
                "--out",
                str(root / "configs" / "datasets" / "data"),
            ],
            check=True,
            capture_output=True,
        )
        return root

    return once("dataset-file-examples", make)


# -- the BLURB datasets as dataset files ---------------------------------------------------------------------


def test_the_blurb_dataset_files_reproduce_the_catalogue_they_replaced(data_dir):
    """Every split's size and examples, the prompts and a fixed scored run per dataset: as the Python catalogue
    (commit 07123e4) gave them (tests/data/blurb_fingerprints.json, scripts/blurb_fingerprints.py)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from blurb_fingerprints import fingerprints

    expected = json.loads((ROOT / "tests" / "data" / "blurb_fingerprints.json").read_text())
    got = json.loads(json.dumps(fingerprints(str(data_dir))))
    assert sorted(got) == sorted(expected) == sorted(DATASETS.names())
    for name in expected:
        assert got[name] == expected[name], name
    assert {t for t in (v["task"] for v in got.values())} == {
        "ner",
        "pico",
        "relation",
        "similarity",
        "doc_classification",
        "qa",
    }


def test_builtin_datasets_are_shipped_files_read_like_a_users():
    for name, spec in DATASETS.items():
        assert spec.builtin and Path(spec.definition).name == f"{name}.yaml"
        assert Path(spec.definition).parent.name == "builtin"


# -- a user's dataset files ------------------------------------------------------------------------------------


def test_each_example_dataset_loads_and_shows(examples):
    env = {**__import__("os").environ, "BIOTUNE_HF_MIRROR": str(examples / "configs/datasets/data/hf-mirror")}
    for name in ("gad-csv", "bc5cdr", "ncbi-disease-hub"):
        r = cli_here("data", "show", f"configs/datasets/{name}.yaml", "-n", "2", cwd=examples, env=env)
        assert r.returncode == 0, r.stderr
        assert '"target"' in r.stdout
    r = cli_here("data", "list", "--include", "configs/datasets", cwd=examples, env=env)
    assert r.returncode == 0, r.stderr
    for name in ("gad-csv", "bc5cdr", "ncbi-disease-hub", "bioasq-url", "chemprot"):
        assert name in r.stdout


def test_csv_columns_and_verbalizers_map_onto_the_schema(examples, data_dir):
    spec = load_dataset_file(examples / "configs/datasets/gad-csv.yaml")
    csv_rows = load_split(spec.ref, "test").to_list()
    blurb_rows = load_split("gad", "test", str(data_dir)).to_list()
    assert len(csv_rows) == len(blurb_rows) == 534
    to_label = {"1": "associated", "0": "not associated"}
    assert [r["text"] for r in csv_rows] == [r["text"] for r in blurb_rows]
    assert [r["label"] for r in csv_rows] == [to_label[r["label"]] for r in blurb_rows]
    task = task_for(spec)
    assert task.target(csv_rows[0]) in ("yes", "no")
    assert task.parse("yes", csv_rows[0]).value == "associated"
    # the same predictions score the same as on the BLURB file (the negative label renamed)
    preds = ["associated" if i % 3 else "not associated" for i in range(534)]
    blurb_preds = ["1" if p == "associated" else "0" for p in preds]
    assert task.score(csv_rows, preds)["score"] == pytest.approx(
        task_for(get_spec("gad")).score(blurb_rows, blurb_preds)["score"]
    )


def test_a_hub_dataset_read_from_a_local_mirror(examples, monkeypatch, data_dir):
    monkeypatch.setenv("BIOTUNE_HF_MIRROR", str(examples / "configs/datasets/data/hf-mirror"))
    spec = load_dataset_file(examples / "configs/datasets/ncbi-disease-hub.yaml")
    rows = load_split(spec.ref, "test").to_list()
    blurb = load_split("ncbi-disease", "test", str(data_dir)).to_list()
    assert len(rows) == len(blurb) == 940
    assert rows[5]["tokens"] == blurb[5]["tokens"]
    assert rows[5]["tags"] == [t if t == "O" else f"{t}-Disease" for t in blurb[5]["tags"]]


def test_a_url_dataset_is_fetched_once_into_the_cache(tmp_path, monkeypatch, data_dir):
    """The URL source through a file:// copy of the files (no network here); https goes the same way."""
    monkeypatch.setenv("BIOTUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BIOTUNE_ALLOW_FILE_URLS", "1")  # a local mirror, allowed by the user
    mirror = tmp_path / "mirror" / "BioASQ"
    shutil.copytree(data_dir / "BioASQ", mirror)
    definition = yaml.safe_load((EXAMPLES / "bioasq-url.yaml").read_text())
    definition["source"]["root"] = mirror.as_uri()
    path = tmp_path / "bioasq-url.yaml"
    path.write_text(yaml.safe_dump(definition))
    spec = load_dataset_file(path)
    rows = load_split(spec.ref, "test").to_list()
    assert len(rows) == 140 and rows == load_split("bioasq", "test", str(data_dir)).to_list()
    assert list((tmp_path / "cache" / "data").rglob("test.tsv"))
    # macro F1 instead of accuracy: always "yes" is no better than chance
    task = task_for(spec)
    always_yes = task.score(rows, ["yes"] * len(rows))
    golds = [r["answer"] for r in rows]
    from sklearn.metrics import f1_score

    assert always_yes["score"] == pytest.approx(
        100 * f1_score(golds, ["yes"] * len(rows), average="macro", labels=["yes", "no"], zero_division=0)
    )
    assert always_yes["score"] < task_for(get_spec("bioasq")).score(rows, ["yes"] * len(rows))["score"]


# -- typed entities --------------------------------------------------------------------------------------------


def _typed(tmp_path, text: str) -> object:
    (tmp_path / "d").mkdir(exist_ok=True)
    (tmp_path / "d" / "test.conll").write_text(text)
    path = tmp_path / "typed.yaml"
    path.write_text(
        "name: typed\ntask: ner\nsource: {format: conll, root: d, splits: {test: test.conll}}\n"
        "entities: {Chemical: a chemical or drug, Disease: a disease}\n"
    )
    return load_dataset_file(path)


def test_typed_ner_is_prompted_parsed_and_scored_per_type(tmp_path):
    spec = _typed(
        tmp_path,
        "Aspirin B-Chemical\ncaused O\nsevere B-Disease\nheadache I-Disease\nand O\n"
        "naproxen B-Chemical\nrash B-Disease\n\n",
    )
    assert spec.tags == ("O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease")
    [ex] = load_split(spec.ref, "test").to_list()
    task = task_for(spec, "list")
    assert "Chemical (a chemical or drug); Disease (a disease)" in task.instruction()
    assert task.target(ex) == "Chemical: Aspirin; Disease: severe headache; Chemical: naproxen; Disease: rash"
    for fmt in ("list", "inline"):
        t = task_for(spec, fmt)
        assert t.parse(t.target(ex), ex).value == ex["tags"]
    # one chemical right, one chemical typed as a disease, one disease cut short, one missed
    pred = task.parse("Chemical: Aspirin; Disease: naproxen; Disease: headache", ex)
    assert pred.ok
    s = task.score([ex], [pred.value])
    # entities gold: Chem Aspirin, Dis severe headache, Chem naproxen, Dis rash; predicted: Chem Aspirin (right),
    # Dis naproxen (wrong type), Dis headache (wrong span)
    assert s["precision"] == pytest.approx(100 / 3) and s["recall"] == pytest.approx(25.0)
    assert s["f1_Chemical"] == pytest.approx(100 * 2 * 1 / (1 + 2))  # tp 1, predicted 1, gold 2
    assert s["f1_Disease"] == 0.0
    assert task.score_stats(task.stats([ex["tags"]], [pred.value], ["0"]).sum(axis=0)) == pytest.approx(s["score"])


def test_an_answer_cut_at_the_cap_keeps_its_complete_mentions(tmp_path):
    """An answer that ran to the token cap ends inside its last item: the items before the cut are placed as
    they would be in a finished answer, the cut item names no span and adds nothing."""
    spec = _typed(
        tmp_path,
        "Aspirin B-Chemical\ncaused O\nsevere B-Disease\nheadache I-Disease\nand O\n"
        "naproxen B-Chemical\nrash B-Disease\n\n",
    )
    [ex] = load_split(spec.ref, "test").to_list()
    task = task_for(spec, "list")
    cut = task.parse("Chemical: Aspirin; Disease: severe headache; Chemical: napro", ex)
    assert cut.ok
    assert cut.value == ["B-Chemical", "O", "B-Disease", "I-Disease", "O", "O", "O"]
    inline = task_for(spec, "inline").parse(
        "<Chemical>Aspirin</Chemical> caused <Disease>severe headache</Disease> and <Chem", ex
    )
    assert inline.value == cut.value


def test_strict_iob2_is_a_metric_option_equal_to_seqevals_strict_mode(tmp_path):
    """`metric: strict_entity_f1` scores NER by strict IOB2 (seqeval's strict mode): a stray I- starts no entity,
    where conlleval's rule (BLURB's, the default) starts one."""
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "test.conll").write_text("a O\n\n")
    (tmp_path / "s.yaml").write_text(
        "name: s\ntask: ner\nsource: {format: conll, root: d, splits: {test: test.conll}}\n"
        "entities: {Chemical: a drug, Disease: a disease}\nmetric: strict_entity_f1\n"
    )
    strict = task_for(load_dataset_file(tmp_path / "s.yaml"), "list")
    conll = task_for(_typed(tmp_path, "a O\n\n"), "list")
    rng = np.random.default_rng(0)
    tags = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]
    golds = [list(rng.choice(tags, 12, p=[0.5, 0.15, 0.1, 0.15, 0.1])) for _ in range(30)]
    preds = [[t if rng.random() < 0.7 else rng.choice(tags) for t in g] for g in golds]
    ids = [str(i) for i in range(30)]
    expected = 100 * f1_score(golds, preds, mode="strict", scheme=IOB2)
    assert strict.score_gold(golds, preds, ids)["score"] == pytest.approx(expected)
    assert strict.score_stats(strict.stats(golds, preds, ids).sum(axis=0)) == pytest.approx(expected)
    assert conll.score_gold(golds, preds, ids)["score"] == pytest.approx(100 * f1_score(golds, preds))
    assert conll.score_gold(golds, preds, ids)["score"] != pytest.approx(expected)  # stray I- tags decide points
    assert strict.metric == "entity-level micro F1, strict IOB2"


def test_typed_tags_train_an_encoder_head(tmp_path):
    from biotune.models.encoder import label_list

    spec = _typed(tmp_path, "Aspirin B-Chemical\nrash B-Disease\n\n")
    assert label_list(spec) == ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]


# -- metrics a dataset file may choose -----------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1", "spearman"])
def test_chosen_metrics_equal_the_libraries_and_their_bootstrap_statistics(tmp_path, metric):
    from scipy.stats import spearmanr
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(0)
    (tmp_path / "test.jsonl").write_text("")
    if metric == "spearman":
        task_type, extra, golds = "similarity", "", list(rng.integers(0, 5, 40).astype(float))
        preds = [g + rng.normal() for g in golds]
        expected = 100 * spearmanr(golds, preds).statistic
    else:
        task_type, extra = "relation", "labels: [a, b, c]\n"
        golds = list(rng.choice(["a", "b", "c"], 40))
        preds = [g if rng.random() < 0.6 else rng.choice(["a", "b", "c"]) for g in golds]
        expected = 100 * (
            accuracy_score(golds, preds)
            if metric == "accuracy"
            else f1_score(golds, preds, average="macro", labels=["a", "b", "c"], zero_division=0)
        )
    (tmp_path / "m.yaml").write_text(
        f"name: m\ntask: {task_type}\nsource: {{format: jsonl, splits: {{test: "
        f"test.jsonl}}}}\n{extra}metric: {metric}\n"
    )
    task = task_for(load_dataset_file(tmp_path / "m.yaml"))
    ids = [str(i) for i in range(40)]
    assert task.score_gold(golds, preds, ids)["score"] == pytest.approx(expected)
    assert task.score_stats(task.stats(golds, preds, ids).sum(axis=0)) == pytest.approx(expected)


# -- bad dataset files -----------------------------------------------------------------------------------------

GOOD = {
    "name": "bad",
    "task": "relation",
    "source": {"format": "csv", "header": True, "splits": {"test": "test.csv"}},
    "fields": {"text": "sentence"},
    "labels": {"pos": "yes", "neg": "no"},
    "negative": "neg",
}


def _bad(tmp_path, change, csv_text="sentence,label\nA @GENE$ and @DISEASE$,pos\n"):
    definition = json.loads(json.dumps(GOOD))
    change(definition)
    (tmp_path / "test.csv").write_text(csv_text)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return path


@pytest.mark.parametrize(
    "change, csv_text, needles",
    [
        (
            lambda d: d.update(task="relations"),
            None,
            ["bad.yaml:2:", "field 'task'", "unknown task type 'relations'", "relation"],
        ),
        (lambda d: d["labels"].update(pos=None), None, ["bad.yaml:", "field 'labels'", "'pos' has no verbalizer"]),
        (lambda d: d.update(negative="none"), None, ["bad.yaml:", "field 'negative'", "not one of the labels"]),
        (lambda d: d["source"].update(format="xlsx"), None, ["bad.yaml:", "field 'source.format'", "unknown format"]),
        (lambda d: d.update(fields={"txt": "sentence"}), None, ["field 'fields.txt'", "valid: id, text, label"]),
        (
            lambda d: d.update(published={"BERT-base": 8452}),
            None,
            ["bad.yaml:", "field 'published'", "'BERT-base': 8452.0 is not a score x100", "e.g. 84.52"],
        ),
        (
            lambda d: d.update(fields={"text": "sentense"}),
            None,
            ["test.csv:1:", "no column 'sentense'", "fields.text", "columns are: sentence, label"],
        ),
        (lambda d: None, "sentence,label\nA @GENE$ and @DISEASE$,maybe\n", ["test.csv:2:", "unknown label 'maybe'"]),
        (lambda d: None, 'sentence,label\n"A @GENE$ and, @DISEASE$,pos\n', ["test.csv:", "columns"]),
        (
            lambda d: d["source"]["splits"].update(test="nosuch.csv"),
            None,
            ["bad test split is missing", "nosuch.csv", "source.splits.test"],
        ),
    ],
)
def test_a_bad_dataset_file_is_one_line_naming_file_line_and_field_and_writes_nothing(
    tmp_path, change, csv_text, needles
):
    path = _bad(tmp_path, change, **({"csv_text": csv_text} if csv_text else {}))
    r = biotune("data", "show", str(path), "--split", "test")
    line = one_line_error(r)
    for needle in needles:
        assert needle in line, line
    if not any(n.startswith(("field 'task'", "test.csv:2:")) for n in needles):
        return
    # the same file in an experiment (a bad definition; a bad data line): refused before anything is written
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        yaml.safe_dump(
            {
                "dataset": "bad.yaml",
                "model": TINY_LLAMA,
                "method": {"name": "zero_shot"},
                "output_dir": str(tmp_path / "run"),
            }
        )
    )
    r = biotune("run", str(exp))
    line = one_line_error(r)
    assert "bad" in line
    assert not (tmp_path / "run").exists()


def test_a_builtin_name_cannot_be_taken(tmp_path):
    path = _bad(tmp_path, lambda d: d.update(name="gad"))
    with pytest.raises(BiotuneError, match="'gad' is a built-in dataset"):
        load_dataset_file(path)


# -- used wherever a built-in name is --------------------------------------------------------------------------


def test_identity_follows_the_dataset_files_content_not_its_place(examples, tmp_path, monkeypatch):
    monkeypatch.setenv("BIOTUNE_DATA_ROOTS", str(examples / "configs/datasets/data"))  # the moved file reads there

    def cfg(ref):
        return ExperimentConfig(dataset=str(ref), model=TINY_LLAMA, method={"name": "lora"}, training=TRAINING)

    original = examples / "configs/datasets/gad-csv.yaml"
    a = identity(cfg(original))
    assert a["experiment"]["dataset"] == "gad-csv" and "definition" in a["data"]
    moved = tmp_path / "elsewhere" / "gad-csv.yaml"
    moved.parent.mkdir()
    moved.write_text(
        original.read_text().replace("root: data/gad-csv", "root: " + str(examples / "configs/datasets/data/gad-csv"))
    )
    edited = tmp_path / "edited" / "gad-csv.yaml"
    edited.parent.mkdir()
    edited.write_text(moved.read_text().replace('associated: "yes"', 'associated: "related"'))
    b, c = identity(cfg(moved)), identity(cfg(edited))
    assert b["data"]["train"] == a["data"]["train"] and b["experiment"] == a["experiment"]
    assert hash_of(c) != hash_of(b)


def test_an_experiment_names_a_dataset_file_relative_to_itself(examples, tmp_path):
    exp = examples / "configs" / "exp.yaml"
    exp.write_text(
        yaml.safe_dump(
            {"dataset": "datasets/gad-csv.yaml", "model": TINY_LLAMA, "method": {"name": "lora"}, "training": TRAINING}
        )
    )
    cfg = load_experiment(exp)
    assert cfg.dataset == str((examples / "configs/datasets/gad-csv.yaml").resolve())
    assert cfg.resolved_name() == "gad-csv-smollm2-135m-lora-s0"


def _scored_two(run_dir, name):
    """A run of an example dataset file scored its 2 test examples under the file's name (BC5CDR per type too)."""
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["dataset"] == name and m["metrics"]["n"] == 2
    if name == "bc5cdr":  # typed: scored per type
        assert "f1_Chemical" in m["metrics"] and "f1_Disease" in m["metrics"]


def test_every_example_dataset_through_eval_run_and_study(examples, tmp_path, data_dir):
    """Each example dataset file (the URL one through a file:// copy of its files: no network here) through
    `biotune eval` (zero- and 3-shot) beside a BLURB dataset, `biotune run` (the encoder baseline, a tiny BERT) and
    a study with a BLURB dataset beside them (LoRA on a tiny LLaMA: generation and parsing of typed mentions); then
    the study's rows exported and its report. (The real SmolLM2 on an own CSV file, 3-shot: the README's example,
    test_the_readme_example_from_a_csv_to_an_evaluation.)"""
    import os

    env = {
        **os.environ,
        "BIOTUNE_HF_MIRROR": str(examples / "configs/datasets/data/hf-mirror"),
        "BIOTUNE_ALLOW_FILE_URLS": "1",
    }
    shutil.copytree(data_dir / "BioASQ", tmp_path / "mirror" / "BioASQ")
    url = yaml.safe_load((examples / "configs/datasets/bioasq-url.yaml").read_text())
    url["source"]["root"] = (tmp_path / "mirror" / "BioASQ").as_uri()
    (examples / "configs/mirrored").mkdir(exist_ok=True)
    (examples / "configs/mirrored/bioasq-url.yaml").write_text(yaml.safe_dump(url))
    files = {
        "gad-csv": "datasets/gad-csv.yaml",
        "bc5cdr": "datasets/bc5cdr.yaml",
        "ncbi-disease-hub": "datasets/ncbi-disease-hub.yaml",
        "bioasq-url": "mirrored/bioasq-url.yaml",
    }
    # every example file, zero- and 3-shot, with a tiny random-init LLaMA saved as a model folder (prompts, parsing
    # and scores as the real model's; generation time is its steps, which a real model's long answers multiply)
    from test_eval_path import _folder

    tiny = _folder("causal")
    for model, names, shots in ((tiny, list(files), "0"), (tiny, list(files), "3")):
        out = tmp_path / f"eval-{len(names)}-{shots}"
        r = cli_here(
            "eval",
            "--model",
            model,
            "--datasets",
            ",".join([*(f"configs/{files[n]}" for n in names), "gad"]),
            "--limit",
            "2",
            "--shots",
            shots,
            "--output-dir",
            str(out),
            cwd=examples,
            env=env,
        )
        assert r.returncode == 0, r.stderr
        summary = json.loads((out / "metrics.json").read_text())
        assert set(summary["datasets"]) == {*names, "gad"}
        for name in names:
            rows = [json.loads(line) for line in (out / name / "predictions.jsonl").read_text().splitlines()]
            # shots that do not fit the tiny model's 1,024 positions (BioASQ's contexts) are dropped, and counted
            dropped = summary["datasets"][name]["n_shots_dropped"]
            assert len(rows) == 2 and sum(len(r["shot_ids"]) for r in rows) + dropped == 2 * int(shots)
        assert summary["blurb"]["n_task_types"] == 1  # only gad counts toward the BLURB score
    assert summary["datasets"]["bioasq-url"]["metric"].startswith("macro F1")
    bert = dict(
        TINY_LLAMA,
        family="encoder",
        path="minilm",
        random_init=TINY_BERT_INIT,
    )
    # `biotune run` of an experiment file naming each example file: the encoder baseline (its head, label list and
    # word-to-token alignment from the file); LoRA on the tiny LLaMA runs on the same files in the study below
    for name, file in files.items():
        exp = examples / "configs" / f"run-{name}-encoder.yaml"
        exp.write_text(
            yaml.safe_dump(
                {
                    "dataset": file,
                    "model": bert,
                    "method": {"name": "fft"},
                    "training": TRAINING,
                    "eval": {"limit": 2},
                    "output_dir": str(tmp_path / f"run-{name}-encoder"),
                }
            )
        )
        r = cli_here("run", str(exp), cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stderr
        _scored_two(tmp_path / f"run-{name}-encoder", name)
    study = examples / "configs" / "study.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "name": "own",
                "datasets": [*files.values(), "gad"],
                "output_dir": str(tmp_path / "study"),
                "models": [dict(TINY_LLAMA, name="tiny-llama")],
                "methods": ["lora"],
                "seeds": [0],
                "defaults": {"training": TRAINING, "eval": {"limit": 2}},
            }
        )
    )
    r = cli_here("study", str(study), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    r = cli_here(
        "results",
        "export",
        "--store",
        f"sqlite:///{tmp_path / 'study' / 'results.sqlite'}",
        "-o",
        str(tmp_path / "rows.csv"),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    import pandas as pd

    rows = pd.read_csv(tmp_path / "rows.csv")
    assert sorted(rows.dataset) == sorted([*files, "gad"]) and set(rows.status) == {"done"}
    for name in [*files, "gad"]:  # each LoRA cell generated and parsed its 2 test answers
        (folder,) = (tmp_path / "study" / "cells").glob(f"{name}__tiny-llama__lora__s0/*/")
        _scored_two(folder, name)
    r = cli_here("report", str(study), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr


def test_the_readme_example_from_a_csv_to_an_evaluation(tmp_path):
    """The README's "Your own dataset" block, run as it is written (in a scratch folder beside the scripts)."""
    import os
    import re

    block = re.search(
        r"<!-- own-dataset -->\n```bash\n(.*?)```\n<!-- /own-dataset -->", (ROOT / "README.md").read_text(), re.S
    ).group(1)
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    r = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert '"target"' in r.stdout
    summary = json.loads((tmp_path / "runs/my-task-eval/metrics.json").read_text())
    result = summary["datasets"]["my-task"]
    assert result["n"] == 20 and result["metric"] == "micro F1, negative class excluded"
    assert 0 <= result["score"] <= 100


def test_pico_tags_are_ebm_nlps(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\ntask: pico\nsource: {format: conll, splits: {test: t.conll}}\ntags: [O, B-X]\n")
    with pytest.raises(BiotuneError, match=r"p.yaml:4: field 'tags': PICO tags are O, I-PAR, I-INT, I-OUT"):
        load_dataset_file(path)


def test_a_study_cell_sees_the_environment_of_the_moment(examples, tmp_path, monkeypatch):
    """The study's fork server keeps the environment it started with; a cell gets the study's as it is when the
    cell starts (here: the hub mirror, set after the fork server was started)."""
    import os

    from biotune.study.cell_run import process_context

    monkeypatch.delenv("BIOTUNE_HF_MIRROR", raising=False)
    started = process_context().Process(target=os.getpid)  # the fork server runs from here on (if it did not already)
    started.start()
    started.join()
    study = tmp_path / "study.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "name": "env",
                "datasets": [str(examples / "configs/datasets/ncbi-disease-hub.yaml")],
                "output_dir": str(tmp_path / "out"),
                "models": [dict(TINY_LLAMA, name="tiny-llama")],
                "methods": ["zero_shot"],
                "seeds": [0],
                "defaults": {"eval": {"limit": 2}, "training": {"dev_limit": 2}},
            }
        )
    )
    mirror = {"BIOTUNE_HF_MIRROR": str(examples / "configs/datasets/data/hf-mirror")}
    r = cli_here("study", str(study), "--no-report", env=mirror)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 cells run, 0 already done, 0 failed" in " ".join(r.stdout.split())
