"""Adaptive search (study/halving.py): the rule on constructed rung scores, then real tiny studies — a survivor
goes on from its checkpoint to the model an uninterrupted run gives, a killed search resumes with the same
decisions, the range grows at its edge up to its bound, and the Ray executor decides as the local one does."""

import io
import json
from pathlib import Path

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

import conftest
from biotune.errors import BiotuneError
from biotune.plan.planner import expected_share
from biotune.study import halving
from biotune.study.cell_run import StudyInterrupted
from biotune.study.grid import load_study
from biotune.study.runner import run_study
from biotune.study.search import SearchRef
from biotune.study.store import Store
from biotune.train import run_experiment
from test_study import write_study


class _Cand:
    def __init__(self, index, values):
        self.identity_hash = f"h{index}"
        self.search = SearchRef(("gad", "m", "lora"), values, index)


def _rows(scores: dict, rung: int = 0, decision=None):
    return [{"config_hash": h, "rung": rung, "dev_score": s, "decision": decision} for h, s in scores.items()]


def test_halving_stops_the_worst_and_continues_the_best_and_waits_for_a_missing_score():
    cands = [_Cand(i, {"training.learning_rate": lr}) for i, lr in enumerate([1e-4, 3e-4, 1e-3])]
    rows = _rows({"h0": 40.0, "h1": 60.0, "h2": 55.0})
    assert [c.identity_hash for c in halving.survivors(cands, rows, 0, 1 / 3)] == ["h1"]
    assert [c.identity_hash for c in halving.survivors(cands, rows, 0, 2 / 3)] == ["h1", "h2"]
    assert halving.survivors(cands, rows[:2], 0, 1 / 3) is None  # h2 has not reached the rung yet
    # ties go to the earlier candidate; a failed one (no score) stops
    tied = _rows({"h0": 50.0, "h1": None, "h2": 50.0})
    assert [c.identity_hash for c in halving.survivors(cands, tied, 0, 1 / 3)] == ["h0"]
    # at the next rung only the candidates a decision continued train
    decided = _rows({"h0": 40.0}, decision="stop") + _rows({"h1": 60.0}, decision="continue")
    assert [c.identity_hash for c in halving.alive_at(cands, decided, 1)] == ["h1"]


@pytest.mark.parametrize(
    "best, want", [(0, [{"training.learning_rate": 3.16e-05}]), (2, [{"training.learning_rate": 0.00316}]), (1, [])]
)
def test_range_growth_adds_the_next_value_beyond_the_end_where_the_best_sits(best, want):
    grid = {"training.learning_rate": [1e-4, 3e-4, 1e-3]}
    cands = [_Cand(i, {"training.learning_rate": lr}) for i, lr in enumerate(grid["training.learning_rate"])]
    rows = _rows({c.identity_hash: (70.0 if i == best else 50.0) for i, c in enumerate(cands)})
    add, notes = halving.grow(cands, rows, grid, bound=2)
    assert [{k: pytest.approx(v, rel=1e-2) for k, v in a.items()} for a in add] == want and notes == []


def test_range_growth_needs_the_end_value_to_be_better_than_the_rest():
    """Every candidate at the same first-rung score (0 F1: nothing learned yet): the earliest, at the low end, is
    'best' by the tie rule, but nothing says the range should go on below it; no growth, and a note says why."""
    grid = {"training.learning_rate": [1e-4, 3e-4, 1e-3]}
    cands = [_Cand(i, {"training.learning_rate": lr}) for i, lr in enumerate(grid["training.learning_rate"])]
    add, notes = halving.grow(cands, _rows({c.identity_hash: 0.0 for c in cands}), grid, bound=2)
    assert add == [] and notes == ["learning_rate did not grow: the best first-rung dev score is tied by another value"]
    add, _ = halving.grow(cands, _rows({"h0": 10.0, "h1": 10.0, "h2": 5.0}), grid, bound=2)
    assert add == []  # the low end tied with the middle
    add, notes = halving.grow(cands, _rows({"h0": 5.0, "h1": 10.0, "h2": 10.0}), grid, bound=2)
    assert add == [] and notes == []  # the best (the middle, by the tie rule) is not at an end


def test_range_growth_stops_at_its_bound_and_says_so():
    grid = {"training.learning_rate": [1e-4, 3e-4, 1e-3]}
    lrs = [1e-4, 3e-4, 1e-3, 3.16e-3, 1e-2]  # two values already added above the grid (ratio sqrt(10))
    cands = [_Cand(i, {"training.learning_rate": lr}) for i, lr in enumerate(lrs)]
    rows = _rows({c.identity_hash: 50.0 + i for i, c in enumerate(cands)})  # the highest is the best
    add, notes = halving.grow(cands, rows, grid, bound=2)
    assert add == [] and notes == ["learning_rate stopped growing up at 0.01 (bound search.grow = 2)"]
    assert halving.grow(cands, rows, grid, bound=3)[0] == [{"training.learning_rate": pytest.approx(0.0316, rel=1e-2)}]


def test_bad_rungs_are_refused(tmp_path):
    for rungs in ([0.5], [0.5, 0.25, 1.0], [0.0, 1.0]):
        path = write_study(tmp_path, search={"grid": {"training.learning_rate": [1e-3]}, "rungs": rungs})
        with pytest.raises(BiotuneError, match=r"search.rungs"):
            load_study(path)


def _adaptive(
    tmp_path,
    data_dir,
    name="a",
    grow=1,
    rates=(1e-4, 1e-3, 1e-2),
    steps=8,
    every=None,
    models=None,
    seeds=(0,),
    **search,
):
    (tmp_path / name).mkdir(exist_ok=True)  # written again: the same study with other seeds
    return write_study(
        tmp_path / name,
        **({"models": models, "methods": ["fft"]} if models else {"methods": ["lora"]}),
        seeds=list(seeds),
        data_dir=str(data_dir),
        defaults={
            "training": {
                "max_steps": steps,
                "batch_size": 2,
                "train_limit": 16,
                "dev_limit": 6,
                "eval_steps": every or steps // 4,
                "save_steps": every or steps // 4,
                "max_length": 160,
            },
            "eval": {"limit": 4, "max_new_tokens": 4},
            "keep": "model" if models else "adapter",
        },
        search={"grid": {"training.learning_rate": list(rates)}, "rungs": [0.25, 1.0], "grow": grow, **search},
    )


def _decisions(study):
    return sorted(
        (r["candidate"], r["rung"], r["dev_score"], r["decision"])
        for r in Store(study.store_url).rung_rows(study.name)
        if r["decision"] != "note"
    )


def test_an_adaptive_study_halves_grows_and_continues_survivors_from_their_checkpoints(tmp_path, data_dir):
    study, cells, _ = load_study(_adaptive(tmp_path, data_dir, keep=0.67))
    assert study.groups[0].strategy == "halving" and len(cells) == 3
    tally = run_study(study, cells)
    assert tally["failed"] == 0 and not tally["pending"]
    rows = [r for r in Store(study.store_url).rung_rows("t") if r["decision"] != "note"]
    at0 = [r for r in rows if r["rung"] == 0 and r["decision"] in ("continue", "stop")]
    at1 = sorted((r for r in rows if r["rung"] == 1), key=lambda r: r["decision"])
    # 3 grid candidates (and at most one grown value) at the first rung (step 2 of 8), two go on to the end, where
    # the better one is chosen
    assert 3 <= len(at0) <= 4 and sum(r["decision"] == "continue" for r in at0) == 2
    assert [r["decision"] for r in at1] == ["chosen", "stop"] and all(r["step"] == 2 for r in at0)
    assert at1[0]["dev_score"] >= at1[1]["dev_score"]
    best0 = sorted(at0, key=lambda r: (-r["dev_score"], r["id"]))[:2]
    assert {r["config_hash"] for r in best0} == {r["config_hash"] for r in at1}
    # the survivor went on from its rung checkpoint along the curve an uninterrupted run of it gives, and stopped at
    # the end before predicting: a search run is never a result, so no candidate predicted the test split
    survivor = next(c for c in halving.candidates(study.groups[0], rows) if c.identity_hash == at1[0]["config_hash"])
    out = Path(survivor.experiment.output_dir)
    straight_cfg = survivor.experiment.model_copy(update={"output_dir": str(tmp_path / "straight")})
    straight = run_experiment(straight_cfg, progress=False)
    paused = json.loads((out / "paused.json").read_text())
    assert paused["pause_at"] == 1.0 and paused["step"] == paused["total_steps"] == 8
    assert [list(p) for p in paused["dev_score_curve"]] == [list(p) for p in straight["training"]["dev_score_curve"]]
    assert at1[0]["dev_score"] == straight["dev"]["score"]
    results = Store(study.store_url).rows("t")
    searched = {c.identity_hash for c in halving.candidates(study.groups[0], rows)}
    assert not any(r["status"] == "done" and r["config_hash"] in searched for r in results)
    # every candidate stays paused at its rung: its training is the search's cost, never a result; its checkpoints,
    # only there to go on from, are deleted once the rule stops or chooses it (paused.json stays)
    stopped = [r for r in results if r["status"] == "paused"]
    assert len(stopped) == len(at0)
    folders = {c.identity_hash: Path(c.experiment.output_dir) for c in halving.candidates(study.groups[0], rows)}
    assert {r["config_hash"] for r in stopped} == set(folders)
    for r in stopped:
        assert (folders[r["config_hash"]] / "paused.json").is_file()
        assert not (folders[r["config_hash"]] / "checkpoints").exists()
        assert not (folders[r["config_hash"]] / "predictions.jsonl").exists()
        assert not (folders[r["config_hash"]] / "metrics.json").exists()
    # training redone after kills is said per candidate, apart from its training time: none here (each paused run
    # says so), and a stopped candidate's, once its run says some
    assert all(json.loads(r["metrics"])["lost_seconds"] == 0.0 for r in stopped)
    table = halving.summary(Store(study.store_url), "t", study.groups[0], study.search.rungs)
    assert len(table) == len(at0) and all(row["lost_seconds"] == 0.0 for row in table)
    with Store(study.store_url).engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE results SET metrics = json_set(metrics, '$.lost_seconds', 7.5) WHERE config_hash = ?",
            (stopped[0]["config_hash"],),
        )
    table = halving.summary(Store(study.store_url), "t", study.groups[0], study.search.rungs)
    lost = {row["candidate"]: row["lost_seconds"] for row in table}
    assert sorted(lost.values()) == [0.0] * (len(table) - 1) + [7.5]
    # what halving saved against training every starting candidate to the end, in the report's search section
    from biotune.report.verdict import search_savings

    saved = search_savings(table)
    assert "(1 finished search," in saved and "each of the 3 starting candidates to the end" in saved, saved
    spent = sum(row["train_seconds"] for row in table)
    full = sum(row["train_seconds"] for row in table if row["reached"] == 1.0) / 2  # the two that went on
    assert f"cost {100 * spent / (3 * full):.0f} % of that" in saved and spent < 3 * full
    finals = tally["final_cells"]
    assert (
        [c.seed for c in finals] == [0]
        and finals[0].experiment.training.learning_rate == survivor.experiment.training.learning_rate
        and finals[0].identity_hash != survivor.identity_hash
    )


@pytest.mark.parametrize("family", ["causal", "encoder"])
def test_a_run_paused_at_a_rung_and_at_its_end_then_predicted_is_the_uninterrupted_run(tmp_path, data_dir, family):
    """A candidate's trajectory: paused at its first rung, then at its end (the last rung: trained, nothing
    predicted), then invoked without a pause (it only predicts): the same metrics, dev score and trained weights as
    one uninterrupted run; and a run whose first rung is already its last step pauses there instead of finishing
    (a short training split, such as BIOSSES's 64 pairs: 8 steps with one dev evaluation). 4 steps end in the
    middle of the epoch (16 examples, batch 2), where the Trainer resumed at its last step would train another."""
    models = [{"name": "tiny-bert", **conftest.TINY_BERT}] if family == "encoder" else None  # fully fine-tuned
    study, _, _ = load_study(_adaptive(tmp_path, data_dir, steps=4, models=models))
    cell = study.groups[0].candidates[0]
    straight = run_experiment(cell.experiment.model_copy(update={"output_dir": str(tmp_path / "straight")}), False)
    out = tmp_path / "rungs"
    for pause in (0.25, 1.0):
        cfg = halving.rung_cell(cell, pause).experiment.model_copy(update={"output_dir": str(out)})
        assert run_experiment(cfg, progress=False) is None
        assert json.loads((out / "paused.json").read_text())["pause_at"] == pause
        assert not (out / "metrics.json").exists() and not (out / "predictions.jsonl").exists()
    assert json.loads((out / "paused.json").read_text())["step"] == 4
    resumed = run_experiment(cell.experiment.model_copy(update={"output_dir": str(out)}), progress=False)
    assert resumed["training"]["resumed_from"].endswith("checkpoint-4") and resumed["training"]["steps"] == 4
    assert resumed["metrics"] == straight["metrics"] and resumed["dev"]["score"] == straight["dev"]["score"]
    weights = "model.safetensors" if family == "encoder" else "adapter_model.safetensors"
    a, b = (load_file(f"{d}/final/{weights}") for d in (out, tmp_path / "straight"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_search_whose_first_rung_is_the_last_step_still_decides(tmp_path, data_dir):
    """One dev evaluation in all, at the last step (a short training split, such as BIOSSES's 64 pairs in 8 steps):
    the first rung is the end of training, every candidate pauses there (a finished run's result would leave the
    rung unscored and the search without a winner), and the search chooses from those scores."""
    study, cells, _ = load_study(_adaptive(tmp_path, data_dir, grow=0, rates=(1e-4, 1e-2), steps=4, every=4))
    assert study.groups[0].candidates[0].experiment.training.model_copy(update={"pause_at": 0.25}).pause_step(8) == 4
    tally = run_study(study, cells)
    assert not tally["pending"] and [c.seed for c in tally["final_cells"]] == [0]
    rows = Store(study.store_url).rung_rows("t")
    scored = [(r["rung"], r["step"], r["decision"]) for r in rows if r["decision"] != "note"]
    assert sorted(scored) == [(0, 4, "chosen"), (0, 4, "stop")]


def test_a_rung_that_keeps_one_candidate_chooses_it_there_and_it_trains_no_further(tmp_path, data_dir):
    """The default keep (a third) of 3 candidates keeps one at the first rung: it is chosen there, since the rungs
    after would compare it with nothing and its value trains anew on the reported seeds; no candidate trains past
    step 2 of 8. A store written when the lone survivor still went on (its decision 'continue', its run towards the
    next rung interrupted) is read the same way: chosen at its rung, its row paused there again, nothing trained."""
    path = _adaptive(tmp_path, data_dir, grow=0)
    study, cells, _ = load_study(path)
    tally = run_study(study, cells)
    assert tally["failed"] == 0 and not tally["pending"]
    want = _decisions(study)
    assert sorted(d for _, _, _, d in want) == ["chosen", "stop", "stop"] and {r for _, r, _, _ in want} == {0}
    assert next(score for _, _, score, d in want if d == "chosen") == max(score for _, _, score, _ in want)
    store = Store(study.store_url)
    for r in store.rows("t"):
        if r["status"] == "paused":
            info = json.loads(r["metrics"])
            assert (info["pause_at"], info["step"]) == (0.25, 2)
    assert sum(r["status"] == "paused" for r in store.rows("t")) == 3
    (chosen,) = [r for r in store.rung_rows("t") if r["decision"] == "chosen"]
    assert expected_share([0.25, 1.0], 1 / 3, 3) == 0.25  # the planner counts the same: 3 quarter budgets of 3

    # the store as the earlier rule left it: the lone survivor sent on, its run towards the end stopped by the user
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE search_rungs SET decision = 'continue' WHERE id = ?", (chosen["id"],))
        conn.exec_driver_sql(
            "UPDATE results SET status = 'interrupted', error = 'interrupted' WHERE config_hash = ?",
            (chosen["config_hash"],),
        )
    study, cells, _ = load_study(path)
    again = run_study(study, cells)
    assert again["ran"] == 0 and again["already_done"] == 1 and not again["pending"]
    assert _decisions(study) == want
    row = next(r for r in Store(study.store_url).rows("t") if r["config_hash"] == chosen["config_hash"])
    assert row["status"] == "paused" and json.loads(row["metrics"])["pause_at"] == 0.25


def test_a_killed_adaptive_study_resumes_with_the_same_decisions(tmp_path, data_dir, monkeypatch):
    study, cells, _ = load_study(_adaptive(tmp_path, data_dir, "whole", grow=0, keep=0.67))  # two go on
    run_study(study, cells)
    want = _decisions(study)

    from biotune.study import executors

    real = executors.run_claimed

    def stop_at_the_last_rung(name, store, cell, *args, **kw):
        if cell.search is not None and cell.experiment.training.pause_at == 1.0:
            raise StudyInterrupted(cell.label)  # as a kill in the middle of the survivor's second rung
        return real(name, store, cell, *args, **kw)

    study2, cells2, _ = load_study(_adaptive(tmp_path, data_dir, "killed", grow=0, keep=0.67))
    monkeypatch.setattr(executors, "run_claimed", stop_at_the_last_rung)
    with pytest.raises(StudyInterrupted):
        run_study(study2, cells2)
    monkeypatch.setattr(executors, "run_claimed", real)
    assert all(r["rung"] == 0 for r in Store(study2.store_url).rung_rows("t"))
    tally = run_study(study2, cells2)
    assert _decisions(study2) == want and not tally["pending"]


def test_a_resumed_search_s_time_left_is_corrected_by_its_finished_final_cells(tmp_path, data_dir, monkeypatch):
    """The time left a resumed study says first is corrected by what it finished before, a search's final cells (its
    chosen candidate anew on a reported seed) included: they are most of a searched study's work, and its
    candidates end paused, never done. (The search seed is named: by default it is one above the highest reported
    seed, so a study given another seed searches again.)"""
    study, cells, _ = load_study(_adaptive(tmp_path, data_dir, "more", grow=0, seed=9))
    run_study(study, cells)
    # the search seed not named, another reported seed moves it (to 2): a new search, said, with the way back
    r = conftest.cli_here("study", str(_adaptive(tmp_path, data_dir, "more", grow=0, seeds=(0, 1))), "--dry-run")
    assert r.returncode == 0, r.stderr
    said = [line for line in r.stdout.splitlines() if line.startswith("warning: search ")]
    assert len(said) == 1 and "runs on search seed 2; the store holds its runs on seed 9 as well" in said[0], r.stdout
    assert "`search.seed: 9`" in said[0]
    assert "(with none failing or added, chosen at 0.25 of the budget)" in r.stdout  # 3 candidates keeping a third
    # seed 9 reported while the store holds the search's candidates on it: the chosen value's run there would be
    # the candidate that won on dev; refused before anything runs, naming the way out
    path = _adaptive(tmp_path, data_dir, "more", grow=0, seeds=(0, 9))
    r = conftest.cli_here("study", str(path))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "seed 9 is a reported seed" in r.stderr and "`search.seed: 9`" in r.stderr, r.stderr
    assert "refused when run: search " in conftest.cli_here("study", str(path), "--dry-run").stdout
    monkeypatch.setenv("BIOTUNE_ESTIMATE", "1")  # the time left from the plan
    study, cells, _ = load_study(_adaptive(tmp_path, data_dir, "more", grow=0, seed=9, seeds=(0, 1)))
    log = io.StringIO()
    assert run_study(study, cells, console=Console(file=log, width=200), progress=False)["ran"] == 1
    starts = [line for line in log.getvalue().splitlines() if line.startswith("study: ")]
    assert len(starts) == 1 and "as the 1 cell finished so far took" in starts[0], log.getvalue()


def test_candidates_that_failed_are_tried_again_by_the_next_run_of_the_study(tmp_path, data_dir, monkeypatch):
    """A candidate's failure stops it for the run it failed in (every candidate failing: no winner, said); the next
    run of the study tries them again, as any failed cell, and reaches the decisions of a study that never failed."""
    small = {"grow": 0, "rates": (1e-4, 1e-2), "steps": 4}
    clean, cells, _ = load_study(_adaptive(tmp_path, data_dir, "clean", **small))
    run_study(clean, cells)

    from biotune.study import executors

    real = executors.run_claimed

    def broken_environment(name, store, cell, *args, **kw):
        if cell.search is None or not store.claim(name, cell.key, cell.identity_hash):
            return real(name, store, cell, *args, **kw)
        store.fail(name, cell.key, cell.identity_hash, "ImportError: a module changed under the study")
        return "failed", "ImportError"

    study, cells, _ = load_study(_adaptive(tmp_path, data_dir, "broken", **small))
    monkeypatch.setattr(executors, "run_claimed", broken_environment)
    first = run_study(study, cells)
    assert first["pending"] and all(r["decision"] == "stop" for r in Store(study.store_url).rung_rows("t"))
    monkeypatch.setattr(executors, "run_claimed", real)
    again = run_study(study, cells)
    assert not again["pending"] and _decisions(study) == _decisions(clean)


@pytest.mark.extended  # a local Ray cluster: CI's `-m extended` run
def test_the_ray_executor_fans_cells_out_to_workers_and_makes_the_same_decisions_as_the_local_one(tmp_path, data_dir):
    """`biotune study --executor ray`: the cells run in Ray workers (their own processes), which write the store;
    an adaptive search decides there as it does on the local executor; a rerun here has nothing left to do."""
    import subprocess
    import sys

    pytest.importorskip("ray")
    small = {"grow": 0, "rates": (1e-4, 1e-2), "steps": 4}
    local, cells, _ = load_study(_adaptive(tmp_path, data_dir, "local", **small))
    run_study(local, cells)
    path = _adaptive(tmp_path, data_dir, "ray", **small)
    driver = subprocess.Popen(
        [sys.executable, "-m", "biotune", "study", str(path), "--executor", "ray", "--cpus-per-cell", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    stdout, stderr = driver.communicate(timeout=900)
    assert driver.returncode == 0, stderr[-3000:]
    on_ray, cells, _ = load_study(path)
    assert _decisions(on_ray) == _decisions(local) and len(_decisions(local)) == 2  # 2 at rung 1, the better chosen
    assert "1 cells run, 0 already done, 0 failed" in stdout, stdout[-2000:]  # the chosen rate on seed 0
    rows = Store(on_ray.store_url).rows("t")
    assert {r["status"] for r in rows} == {"done", "paused"} and len(rows) == 3  # 2 candidates paused, 1 result
    # written by the Ray workers, not by the driver; the result row is its cell's own metrics file
    assert {r["worker"].rsplit(":", 1)[1] for r in rows}.isdisjoint({str(driver.pid)})
    (done,) = [r for r in rows if r["status"] == "done"]
    assert done["score"] == json.loads((Path(done["output_dir"]) / "metrics.json").read_text())["metrics"]["score"]
    again = run_study(on_ray, cells)
    assert again["ran"] == 0 and again["already_done"] == 1


@pytest.mark.parametrize("order", ["dataset", "phase"])
def test_a_study_lands_whole_datasets_in_turn_or_runs_each_phase_over_all(tmp_path, data_dir, order):
    """order: dataset (the default) finishes a dataset's search and chosen runs before the next dataset starts, so a
    long study stopped anywhere has whole datasets; phase runs each rung over every dataset at once (for Ray)."""
    import io

    import yaml
    from rich.console import Console

    path = _adaptive(tmp_path, data_dir, order, grow=0, rates=(1e-4, 1e-2), steps=4)
    study_yaml = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**study_yaml, "datasets": ["gad", "biosses"], "order": order}, sort_keys=False))
    study, cells, _ = load_study(path)
    out = io.StringIO()
    tally = run_study(study, cells, console=Console(file=out, width=300), progress=False)
    assert tally["failed"] == 0 and not tally["pending"]
    lines = out.getvalue().splitlines()
    ran = [line.split()[1].split("__")[0] for line in lines if line.startswith(("done ", "paused "))]
    # per dataset: 2 candidates to the first rung, the better one chosen there, the chosen rate on seed 0 anew
    assert sorted(ran) == ["biosses"] * 3 + ["gad"] * 3
    if order == "dataset":
        assert ran == ["gad"] * 3 + ["biosses"] * 3
    else:
        assert ran == ["gad", "gad", "biosses", "biosses", "gad", "biosses"]
    assert sorted(c.dataset for c in tally["final_cells"]) == ["biosses", "gad"]
