"""The study: grid expansion and overrides, the results store (reruns, concurrent workers), bad study files."""

import io
import json
import multiprocessing as mp
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from rich.console import Console

import conftest
from biotune.errors import BiotuneError
from biotune.plan import calibration
from biotune.study.grid import load_study, only_datasets
from biotune.study.runner import run_study
from biotune.study.store import Store
from biotune.summary import RunSummary

ROOT = Path(__file__).resolve().parents[1]

TINY_LLAMA = {"name": "tiny-llama", **conftest.TINY_LLAMA}
MINILM = {"name": "minilm", "family": "encoder", "path": "minilm"}


def write_study(tmp_path, **fields):
    study = {
        "name": "t",
        "datasets": ["gad"],
        "models": [TINY_LLAMA],
        "methods": ["lora"],
        "seeds": [0],
        "output_dir": str(tmp_path / "study"),
        "defaults": {
            "training": {
                "max_steps": 2,
                "batch_size": 2,
                "train_limit": 4,
                "dev_limit": 2,
                "max_length": 160,
                "learning_rate": 0.002,
            },
            "eval": {"limit": 2},
        },
    }
    study.update(fields)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def test_grid_expansion_overrides_and_left_out_pairs(tmp_path):
    path = write_study(
        tmp_path,
        datasets=["gad", "biosses"],
        models=[TINY_LLAMA, MINILM],
        methods=[
            "zero_shot",
            {"name": "few_shot", "params": {"shots": 2}},
            {"name": "few_shot", "label": "few_shot_knn", "params": {"shots": 2, "selection": "knn"}},
            "lora",
        ],
        seeds=[0, 1, 2],
        overrides={
            "dataset": {"biosses": {"eval": {"limit": 20}}},
            "method": {"lora": {"training": {"learning_rate": 0.01}}},
            "model": {"minilm": {"training": {"batch_size": 8}}},
            "seed": {"2": {"training": {"max_steps": 3}}},
        },
    )
    study, cells, left_out = load_study(path)
    # per dataset: llama: zero_shot x1 seed + few_shot x3 + few_shot_knn x3 + lora x3 = 10; minilm: lora x3
    assert len(cells) == 2 * (10 + 3)
    assert sorted(left_out) == sorted(
        [
            "minilm x zero_shot (sequence_classification)",
            "minilm x few_shot (sequence_classification)",
            "minilm x few_shot_knn (sequence_classification)",
            # a sentence-transformers MiniLM on a similarity dataset gets the cosine head (models/encoder.py)
            "minilm x zero_shot (cosine_similarity)",
            "minilm x few_shot (cosine_similarity)",
            "minilm x few_shot_knn (cosine_similarity)",
        ]
    )
    by_id = {c.cell_id: c.experiment for c in cells}
    assert by_id["biosses__tiny-llama__lora__s0"].eval.limit == 20
    assert by_id["gad__tiny-llama__lora__s0"].eval.limit == 2
    assert by_id["gad__minilm__lora__s1"].training.learning_rate == 0.01
    assert by_id["gad__minilm__lora__s1"].training.batch_size == 8
    assert by_id["gad__tiny-llama__lora__s2"].training.max_steps == 3
    assert by_id["gad__tiny-llama__lora__s1"].training.max_steps == 2
    assert by_id["gad__tiny-llama__few_shot_knn__s1"].method.params["selection"] == "knn"
    assert len({c.cell_id for c in cells}) == len(cells)
    assert len({c.identity_hash for c in cells}) == len(cells)


def test_blurb_expands_to_13_datasets(tmp_path):
    _, cells, _ = load_study(write_study(tmp_path, datasets="blurb"))
    assert len({c.dataset for c in cells}) == 13


@pytest.mark.parametrize(
    "fields,needles",
    [
        ({"datasets": ["gad", "gadd"]}, ["study.yaml:", "datasets.1", "unknown dataset 'gadd'", "blurb"]),
        ({"methods": ["lora", "lorra"]}, ["methods.1", "unknown method 'lorra'", "qlora"]),
        ({"models": [dict(TINY_LLAMA, family="rnn")]}, ["models.0.family", "unknown model family 'rnn'", "encoder"]),
        ({"seeds": []}, ["field 'seeds'", "empty"]),
        ({"methods": []}, ["field 'methods'", "empty"]),
        ({"overrides": {"size": {}}}, ["overrides", "unknown axis 'size'"]),
        ({"defaults": {"training": {"max_steps": "many"}}}, ["cell gad__tiny-llama__lora__s0", "training.max_steps"]),
        ({"store": "postgresql://nobody@127.0.0.1:1/none"}, ["cannot open the results store"]),
    ],
)
def test_bad_study_file_is_a_clear_error_and_writes_nothing(tmp_path, fields, needles):
    path = write_study(tmp_path, **fields)
    r = subprocess.run(
        [sys.executable, "-m", "biotune", "study", str(path)], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (tmp_path / "study").exists()


def test_study_runs_cells_into_the_store_and_a_rerun_skips_them(tmp_path, data_dir, monkeypatch):
    path = write_study(tmp_path, methods=["zero_shot", "lora"], seeds=[0, 1], data_dir=str(data_dir))
    study, cells, _ = load_study(path)
    assert len(cells) == 3  # zero_shot once, lora per seed
    monkeypatch.setenv("BIOTUNE_ESTIMATE", "1")  # the time left from the plan
    monkeypatch.setattr(calibration, "MIN_PLANNED", 0.0)  # tiny cells' seconds teach the plan here
    log = io.StringIO()  # as in a log file (--no-progress): no bar, a plain line as each cell starts
    first = run_study(study, cells, console=Console(file=log, width=200), progress=False)
    starts = [line for line in log.getvalue().splitlines() if line.startswith("study: ")]
    assert [line.split(",")[0] for line in starts] == [
        "study: 0/3 cells (0 %)",
        "study: 1/3 cells (33 %)",
        "study: 2/3 cells (67 %)",
    ]
    assert all("; now gad__" in line for line in starts)
    # the time left: the plan of the work left on this machine, then corrected by how the cells run so far took
    assert re.search(r"^plan on this CPU \(.*\): about \d+ s of cells to run$", log.getvalue(), re.M)
    assert (
        "left (the plan);" in starts[0]
        and "left (the plan x " in starts[1]
        and "as the 2 cells finished so far" in starts[2]
    )
    assert "━" not in log.getvalue()  # no bar drawn
    assert {k: first[k] for k in ("cells", "ran", "failed", "skipped", "already_done")} == {
        "cells": 3,
        "ran": 3,
        "failed": 0,
        "skipped": 0,
        "already_done": 0,
    }
    assert len(first["final_cells"]) == 3 and first["pending"] == []
    # each cell that ran on this machine taught its plan here its time, per part (zero-shot: prediction alone)
    [learned] = json.loads(calibration.path().read_text()).values()
    parts = {}
    for e in learned:
        parts.setdefault(e["id"], set()).add(e["part"])
    assert parts == {
        c.identity_hash: {"prediction"} if c.experiment.method.name == "zero_shot" else {"training", "prediction"}
        for c in cells
    }
    store = Store(study.store_url)
    rows = store.rows("t")
    assert len(rows) == 3 and {r["status"] for r in rows} == {"done"}
    for r in rows:
        assert r["config_hash"] and r["versions"] and r["score"] is not None and r["finished_at"]
        # what computed it, beside the result (not in its identity): both the trained and the in-context cells
        assert json.loads(r["versions"])["cpu_kernels"] == torch.backends.cpu.get_cpu_capability()
    second = run_study(study, cells)
    assert second["ran"] == 0 and second["already_done"] == 3
    assert len(store.rows("t")) == 3
    # a study resumed with one more seed: its first time left is corrected by the cells finished before
    path = write_study(tmp_path, methods=["zero_shot", "lora"], seeds=[0, 1, 2], data_dir=str(data_dir))
    study, cells, _ = load_study(path)
    log = io.StringIO()
    assert run_study(study, cells, console=Console(file=log, width=200), progress=False)["ran"] == 1
    [start] = [line for line in log.getvalue().splitlines() if line.startswith("study: ")]
    assert "left (the plan x " in start and "as the 3 cells finished so far" in start, start


def test_results_export(tmp_path, data_dir):
    path = write_study(tmp_path, data_dir=str(data_dir))
    study, cells, _ = load_study(path)
    run_study(study, cells)
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"results.{fmt}"
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "biotune",
                "results",
                "export",
                "--store",
                study.store_url,
                "--format",
                fmt,
                "-o",
                str(out),
            ],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        import pandas as pd

        df = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
        assert len(df) == 1 and {"dataset", "method", "score", "resources.trainable_params"} <= set(df.columns)


KEYS = [("gad", "m", f"method{i}", s) for i in range(20) for s in range(2)]


def _worker(url, name, queue):
    store = Store(url)
    mine = []
    for key in KEYS:
        if store.claim("concurrent", key, "hash", worker=name):
            summary = RunSummary(
                name=name,
                dataset=key[0],
                task="relation",
                model=key[1],
                family="causal",
                method=key[2],
                seed=key[3],
                metrics={"score": 1.0},
            )
            store.finish("concurrent", key, "hash", summary, {}, None, output_dir=name)
            mine.append(key)
    queue.put((name, mine))


def test_two_concurrent_workers_lose_and_duplicate_no_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    Store(url)  # create the schema once
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(url, f"w{i}", queue)) for i in range(2)]
    for w in workers:
        w.start()
    claimed = dict(queue.get(timeout=300) for _ in workers)
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    rows = Store(url).rows("concurrent")
    assert len(rows) == len(KEYS)
    assert {(r["dataset"], r["model"], r["method"], r["seed"]) for r in rows} == set(KEYS)
    assert all(r["status"] == "done" for r in rows)
    # every cell run by exactly one worker, and recorded by that worker
    a, b = (set(claimed[w]) for w in ("w0", "w1"))
    assert not a & b and a | b == set(KEYS)
    assert all(r["output_dir"] == r["worker"] for r in rows)


def test_a_model_can_run_only_some_of_the_methods(tmp_path):
    path = write_study(tmp_path, models=[TINY_LLAMA, dict(MINILM, methods=["fft"])], methods=["lora", "fft"])
    _, cells, _ = load_study(path)
    assert sorted((c.model, c.method) for c in cells) == [
        ("minilm", "fft"),
        ("tiny-llama", "fft"),
        ("tiny-llama", "lora"),
    ]
    bad = write_study(tmp_path, models=[dict(MINILM, methods=["qlora"])], methods=["lora", "fft"])
    with pytest.raises(Exception, match=r"models\.0\.methods\.0.*'qlora' is not one of the study's methods"):
        load_study(bad)


def test_a_failing_cell_is_recorded_with_its_log_and_the_study_goes_on(tmp_path, data_dir):
    # the zero-shot cell reads its data from an empty folder: it fails inside its process, the next one runs
    (tmp_path / "empty").mkdir()
    path = write_study(
        tmp_path,
        datasets=["gad"],
        methods=["zero_shot", "lora"],
        data_dir=str(data_dir),
        overrides={"method": {"zero_shot": {"data_dir": str(tmp_path / "empty")}}},
    )
    study, cells, _ = load_study(path)
    result = run_study(study, cells)
    assert result["failed"] == 1 and result["ran"] == 1
    failed = Store(study.store_url).rows("t", "failed")
    assert len(failed) == 1 and failed[0]["method"] == "zero_shot"
    zero = next(c for c in cells if c.method == "zero_shot")
    log = Path(study.out / "cells" / "gad__tiny-llama__zero_shot__s0" / zero.identity_hash / "run.log")
    assert f"(log: {log})" in failed[0]["error"] and log.is_file() and "Traceback" in log.read_text()


def test_a_study_adopts_finished_runs_of_the_same_identity_instead_of_training_again(tmp_path, data_dir, monkeypatch):
    """Runs made with `biotune run` (here: each cell's own experiment, written elsewhere) are taken by a study that
    names their folder in `adopt:`: recorded done with where they came from, the same scores, nothing trained;
    a cell without such a run is run as usual."""
    from biotune.train import run_experiment

    runs = tmp_path / "runs"
    path = write_study(tmp_path, seeds=[0, 1], data_dir=str(data_dir), adopt=[str(runs)])
    study, cells, _ = load_study(path)
    made = {}
    for cell in cells[:1]:  # seed 0 was run on its own before the study
        summary = run_experiment(cell.experiment.model_copy(update={"output_dir": str(runs / "mine")}), progress=False)
        made[cell.key] = summary
    assert made[cells[0].key].identity_hash == cells[0].identity_hash  # the folder it ran in is not in the identity
    monkeypatch.setenv("BIOTUNE_ESTIMATE", "1")  # the time left from the plan
    log = io.StringIO()
    tally = run_study(study, cells, console=Console(file=log, width=200), progress=False)
    assert tally["adopted"] == 1 and tally["ran"] == 1
    # the adopted run's recorded compute corrects the plan before the cell that runs starts
    [start] = [line for line in log.getvalue().splitlines() if line.startswith("study: ")]
    assert "as the 1 cell finished so far took" in start, start
    rows = {(r["seed"]): r for r in Store(study.store_url).rows("t", "done")}
    adopted = json.loads(rows[0]["resources"])
    assert adopted["adopted_from"] == str(runs / "mine")
    assert rows[0]["score"] == made[cells[0].key].score
    out = Path(cells[0].experiment.output_dir)
    assert (out / "predictions.jsonl").read_text() == (runs / "mine" / "predictions.jsonl").read_text()
    assert not (out / "checkpoints").exists() and "adopted_from" not in json.loads(rows[1]["resources"])


def test_a_slice_keeps_a_datasets_cells_and_searches_and_leaves_the_study_whole(tmp_path):
    """`study --datasets`: the slice's cells and searches are the named datasets' own, with the same identities;
    the study it came from keeps all of its own. A name the study lacks, or none, is a one-line error."""
    path = write_study(
        tmp_path,
        datasets=["gad", "biosses", "hoc"],
        methods=["zero_shot", "lora"],
        seeds=[0, 1],
        search={"strategy": "halving", "grid": {"training.learning_rate": [1e-4, 1e-3, 1e-2]}},
    )
    study, cells, _ = load_study(path)
    part, mine = only_datasets(study, cells, ["biosses", "hoc"])
    assert [g.key[0] for g in part.groups] == ["biosses", "hoc"]
    assert [g.key[0] for g in study.groups] == ["gad", "biosses", "hoc"]  # the whole study untouched
    assert mine == [c for c in cells if c.dataset != "gad"] and {c.dataset for c in mine} == {"biosses", "hoc"}
    assert part.store_url == study.store_url and part.name == study.name
    with pytest.raises(BiotuneError, match=r"^--datasets: 'ddi' not in study t; its datasets: gad, biosses, hoc$"):
        only_datasets(study, cells, ["biosses", "ddi"])
    with pytest.raises(BiotuneError, match="name at least one"):
        only_datasets(study, cells, [])


def test_a_study_runs_in_slices_and_each_slice_reports_the_whole_study(tmp_path, data_dir):
    """A long study run a few datasets at a time (`--datasets`): a slice runs only its datasets' cells, its report
    is the whole study's (the other datasets 'not finished yet'), and the whole study's next run skips the slice's."""
    path = write_study(tmp_path, datasets=["gad", "biosses"], methods=["zero_shot"], seeds=[0], data_dir=str(data_dir))
    r = conftest.cli_here("study", path, "--datasets", "biosses", "--no-progress")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "study t: 1 cells, 0 already done" in r.stderr + r.stdout
    study, cells, _ = load_study(path)
    rows = Store(study.store_url).rows("t")
    assert [(x["dataset"], x["status"]) for x in rows] == [("biosses", "done")]
    report = (tmp_path / "study" / "report.md").read_text()
    table = report[report.index("## The study's table") :]
    assert re.search(r"\| biosses \| Pearson r.* \| 0\.00 ± 0\.00", table), table[:2000]  # (2 examples)
    assert re.search(r"\| gad \| not finished yet \|", table), table[:2000]
    r = conftest.cli_here("study", path, "--no-report", "--no-progress")
    assert r.returncode == 0 and "study t: 2 cells, 1 already done" in r.stderr + r.stdout, r.stdout + r.stderr
    assert sorted(x["dataset"] for x in Store(study.store_url).rows("t")) == ["biosses", "gad"]
    r = conftest.cli_here("study", path, "--datasets", "gad,pubmedqa", "--dry-run")
    assert (
        r.returncode == 2
        and r.stderr == "biotune: error: --datasets: 'pubmedqa' not in study t; its datasets: gad, biosses\n"
    )
