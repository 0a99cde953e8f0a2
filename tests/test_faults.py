"""Faults a long study meets, each survived: a kill in the middle of a cell, Ctrl-C, a full disk while a
checkpoint or a result is written, a truncated last checkpoint, a damaged or locked results store."""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from biotune.config import ExperimentConfig
from biotune.errors import BiotuneError
from biotune.identity import hash_of, identity
from biotune.io import disk_full_errors
from biotune.study.grid import load_study
from biotune.study.runner import cell_states
from biotune.study.store import Store
from biotune.train import Experiment, claim_folder, last_checkpoint, run_experiment
from conftest import cli_here, once, tmpfs
from test_study import TINY_LLAMA

pytestmark = pytest.mark.xdist_group("faults")  # the uninterrupted study (`straight`) runs once, on one worker

# two LoRA cells (seeds 0, 1) of 12 steps, a dev evaluation and a checkpoint every 3
TRAINING = {
    "max_steps": 12,
    "batch_size": 2,
    "train_limit": 24,
    "dev_limit": 4,
    "max_length": 160,
    "learning_rate": 0.002,
    "eval_steps": 3,
    "save_steps": 3,
    "save_total_limit": 10,
    "logging_steps": 3,
}


def _study(folder: Path, data_dir) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "study.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "faults",
                "datasets": ["gad"],
                "models": [TINY_LLAMA],
                "methods": ["lora"],
                "seeds": [0, 1],
                "output_dir": str(folder / "out"),
                "data_dir": str(data_dir),
                "defaults": {"training": TRAINING, "eval": {"limit": 4}},
            },
            sort_keys=False,
        )
    )
    return path


def _biotune(*args, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "biotune", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **popen,
    )


def _finish(proc: subprocess.Popen, timeout=600) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _rows(path: Path) -> dict:
    study, _, _ = load_study(path)
    return {
        (r["dataset"], r["model"], r["method"], r["seed"]): (
            r["status"],
            r["score"],
            r["dev_score"],
            json.loads(r["metrics"] or "null"),
        )
        for r in Store(study.store_url).rows("faults")
    }


def _when_a_cell_has_a_checkpoint(folder: Path, proc: subprocess.Popen, deadline_s=300) -> None:
    deadline = time.time() + deadline_s
    while time.time() < deadline and proc.poll() is None:
        if any((c / "trainer_state.json").is_file() for c in folder.rglob("checkpoint-3")):
            return
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint came before the study ended or the deadline: {_finish(proc)}")


@pytest.fixture
def straight(tmp_path_factory, data_dir):
    """The uninterrupted study: what the interrupted ones must end with."""
    from biotune.study.runner import run_study

    def make():
        path = _study(tmp_path_factory.mktemp("straight"), data_dir)
        study, cells, _ = load_study(path)
        assert run_study(study, cells)["ran"] == 2  # in this process: the CLI's code without its start-up
        rows = _rows(path)
        assert len(rows) == 2 and {r[0] for r in rows.values()} == {"done"}
        return rows

    return once("faults-straight", make)


def test_a_study_killed_in_the_middle_of_a_cell_resumes_to_the_same_rows_and_scores(tmp_path, data_dir, straight):
    """kill -9 of the study's process alone: its cell's process (a child of the fork server) ends with it instead
    of training on as an orphan, and a rerun started at once cannot train into the cell's folder while the orphan
    is still going (the folder is locked by the process writing in it) - it waits, then resumes the cell."""
    import psutil

    path = _study(tmp_path, data_dir)
    proc = _biotune("study", path, "--no-report")
    _when_a_cell_has_a_checkpoint(tmp_path / "out", proc)
    below = psutil.Process(proc.pid).children(recursive=True)  # the fork server and the cell's process
    assert len(below) >= 2
    os.kill(proc.pid, signal.SIGKILL)  # the study only
    proc.wait()
    assert {r[0] for r in _rows(path).values()} == {"running"}  # claimed by a process that is gone
    r = cli_here("study", path, "--no-report")  # the rerun, at once, in this process: it has only to finish
    rc, out, err = r.returncode, r.stdout, r.stderr
    assert rc == 0, err
    gone, alive = psutil.wait_procs(below, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    logs = "".join(p.read_text() for p in (tmp_path / "out").rglob("run.log"))
    assert f"the study's process {proc.pid} has ended: this cell stops with it" in logs
    assert "1 cells run" not in out and "2 cells run, 0 already done, 0 failed" in out
    assert _rows(path) == straight
    resumed = json.loads(next((tmp_path / "out").glob("cells/gad__tiny-llama__lora__s0/*/metrics.json")).read_text())
    assert re.search(r"checkpoint-(3|6|9)$", resumed["training"]["resumed_from"])  # the orphan may save one more


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm", "sigint-to-a-background-job"])
def test_ctrl_c_records_the_running_cell_as_interrupted_and_the_next_run_resumes_it(tmp_path, data_dir, straight, stop):
    """Ctrl-C in a terminal (SIGINT to the whole foreground group), SIGTERM to the study alone (`kill`, a
    scheduler's preemption), and SIGINT to a study started as a script's background job (which inherits SIGINT
    ignored: `biotune study ... &`) all stop it the same way."""
    path = _study(tmp_path, data_dir)
    proc = _biotune(
        "study", path, "--no-report", **({"preexec_fn": _ignore_sigint} if stop == "sigint-to-a-background-job" else {})
    )
    _when_a_cell_has_a_checkpoint(tmp_path / "out", proc)
    if stop == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGTERM if stop == "sigterm" else signal.SIGINT)
    rc, out, err = _finish(proc)
    assert rc == 130, err
    assert "interrupted: gad__tiny-llama__lora__s0 recorded as interrupted" in " ".join(out.split())
    rows = _rows(path)
    assert rows[("gad", "tiny-llama", "lora", 0)][0] == "interrupted" and len(rows) == 1  # not failed
    study, cells, _ = load_study(path)
    assert [s for s, _ in cell_states(Store(study.store_url), "faults", cells)] == ["interrupted", "new"]
    if stop != "ctrl-c":
        return  # recorded the same way: the resume after it is the Ctrl-C case's
    r = cli_here("study", path, "--no-report")
    rc, out, err = r.returncode, r.stdout, r.stderr
    assert rc == 0, err
    assert "1 interrupted (resumed)" in " ".join(err.split())
    assert _rows(path) == straight


# -- a full disk -------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB filesystem of its own (tmpfs), so the test can fill it; needs root (mount)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    with tmpfs(disk, "size=16m"):
        yield disk


def _fill(disk: Path, leave_bytes: int = 0) -> Path:
    """A ballast file taking all of `disk` but `leave_bytes`."""
    ballast = disk / "ballast"
    with open(ballast, "wb") as f:
        try:
            while shutil.disk_usage(disk).free > leave_bytes:
                f.write(b"\0" * min(1 << 16, max(4096, shutil.disk_usage(disk).free - leave_bytes)))
                f.flush()
        except OSError:
            pass
    return ballast


def _lora(out: Path, data_dir, method="lora", **training) -> ExperimentConfig:
    model = {k: v for k, v in TINY_LLAMA.items() if k != "name"}
    return ExperimentConfig(
        dataset="gad",
        model=model,
        method={"name": method},
        training={**TRAINING, "max_steps": 6, **training},
        eval={"limit": 4},
        output_dir=str(out),
        data_dir=str(data_dir),
    )


def test_a_full_disk_while_a_checkpoint_is_written_is_one_line_and_the_rerun_finishes(small_disk, data_dir):
    out = small_disk / "run"
    cfg = small_disk / "run.yaml"
    cfg.write_text(yaml.safe_dump(_lora(out, data_dir).model_dump(mode="json")))
    ballast = _fill(small_disk, leave_bytes=1 << 20)  # 1 MB: a checkpoint (with its tokenizer) needs more
    rc, _, err = _finish(_biotune("run", cfg, "--no-progress"))
    assert rc == 2
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert last.startswith("biotune: error: no space left on the disk of ") and "rerun" in last
    assert "Traceback" not in err
    assert not (out / "metrics.json").exists() and not list(out.rglob("*.tmp"))
    assert last_checkpoint(out / "checkpoints") is None  # the half-written one does not count (and is gone)
    ballast.unlink()  # space freed: the rerun finishes
    r = cli_here("run", cfg, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "metrics.json").read_text())["metrics"]["n"] == 4


def test_a_full_disk_while_the_result_is_written_leaves_nothing_half_written(small_disk, data_dir):
    out = small_disk / "zero"
    exp = Experiment(_lora(out, data_dir, method="zero_shot"), progress=False)
    exp.setup()
    result, rows = exp.predict()
    ballast = _fill(small_disk)
    with pytest.raises(BiotuneError, match=r"^no space left on the disk of .*zero \(0\.0 MB free\)"):
        with disk_full_errors(out):
            exp.write(result, rows)
    assert not out.exists() or sorted(p.name for p in out.iterdir()) == []  # no half file, no temporary one
    ballast.unlink()
    exp.write(result, rows)
    assert json.loads((out / "metrics.json").read_text())["metrics"] == result


# -- a truncated checkpoint -----------------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: _truncate(c / "adapter_model.safetensors"),
        lambda c: _truncate(c / "optimizer.pt"),
        lambda c: (c / "trainer_state.json").write_text('{"global_step": 6, "log_hist'),
    ],
    ids=["weights", "optimizer", "state"],
)
def test_a_truncated_last_checkpoint_resumes_from_the_one_before(tmp_path, data_dir, damage):
    straight = run_experiment(_lora(tmp_path / "straight", data_dir), progress=False)
    cfg = _lora(tmp_path / "damaged", data_dir)
    claim_folder(tmp_path / "damaged", identity(cfg), hash_of(identity(cfg)))
    exp = Experiment(cfg, progress=False)  # trains to the end, then is "killed" before its result
    exp.setup()
    exp.train()
    ckpts = tmp_path / "damaged" / "checkpoints"
    assert last_checkpoint(ckpts).endswith("checkpoint-6")
    damage(ckpts / "checkpoint-6")
    resumed = run_experiment(cfg, progress=False)
    assert resumed["training"]["resumed_from"].endswith("checkpoint-3")
    # its cost includes the training before the resume (written into checkpoint-3), not just the resumed part
    res = resumed["resources"]
    assert 0 < res["train_seconds_before_resume"] < res["train_seconds"]
    assert straight["resources"]["train_seconds_before_resume"] == 0
    # what the first invocation trained past checkpoint-3 (steps 4-6) was redone: lost work, listed apart
    assert res["resumes"] == 1 and 0 < res["lost_seconds"] < res["train_seconds"]
    assert (straight["resources"]["resumes"], straight["resources"]["lost_seconds"]) == (0, 0.0)
    assert resumed["metrics"] == straight["metrics"]
    assert resumed["training"]["dev_score_curve"] == straight["training"]["dev_score_curve"]


# -- a damaged or locked store -------------------------------------------------------------------------------

KEY = ("gad", "m", "lora", 0)


def _store_with_rows(tmp_path, n=40) -> tuple[Path, Store]:
    path = tmp_path / "results.sqlite"
    store = Store(f"sqlite:///{path}")
    for seed in range(n):
        key = KEY[:3] + (seed,)
        store.claim("s", key, "h")
        store.fail("s", key, "h", "x" * 3000)  # rows over several database pages
    store.engine.dispose()
    return path, store


def test_a_file_that_is_no_database_is_a_clear_error_and_is_left_as_it_is(tmp_path):
    path = tmp_path / "results.sqlite"
    path.write_bytes(b"these are not the rows you are looking for\n" * 200)
    before = path.read_bytes()
    with pytest.raises(
        BiotuneError,
        match=r"results store .*results.sqlite: cannot open \(file is not a database\)"
        r": it is damaged: restore it from a copy",
    ):
        Store(f"sqlite:///{path}")
    assert path.read_bytes() == before


def test_a_damaged_page_is_a_clear_error_and_the_file_is_not_written(tmp_path):
    path, _ = _store_with_rows(tmp_path)
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 6 * page
    last = len(data) // page - 1
    data[last * page : (last + 1) * page] = b"\xff" * page  # a page of rows overwritten (rows are written last)
    path.write_bytes(bytes(data))
    before = path.read_bytes()
    with pytest.raises(
        BiotuneError,
        match=r"results store .*results.sqlite: cannot (open|read its rows) \(.*"
        r"malformed\): it is damaged",
    ):
        Store(f"sqlite:///{path}").rows("s")
    assert path.read_bytes() == before


def test_a_locked_store_is_a_clear_error_and_no_row_is_lost(tmp_path):
    path, _ = _store_with_rows(tmp_path, n=3)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process writing it and holding the lock
    try:
        with pytest.raises(
            BiotuneError,
            match=r"results store .*results.sqlite: cannot (open|claim a cell) "
            r"\(database is locked\): another process holds its lock",
        ):
            Store(f"sqlite:///{path}", timeout=0.5).claim("s", KEY[:3] + (7,), "h")
    finally:
        other.execute("ROLLBACK")
        other.close()
    store = Store(f"sqlite:///{path}", timeout=0.5)
    assert store.claim("s", KEY[:3] + (7,), "h")
    assert [r["seed"] for r in store.rows("s")] == [0, 1, 2, 7]


def test_a_claim_of_another_machine_is_left_to_it_unless_reclaimed_and_a_live_one_here_always(tmp_path):
    import socket

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    elsewhere, key = "other-machine:4242", ("gad", "m", "lora", 0)
    assert store.claim("s", key, "h", worker=elsewhere)
    assert not store.claim("s", key, "h")  # its holder cannot be checked from here: trusted
    assert [r["worker"] for r in store.held_elsewhere("s")] == [elsewhere]
    assert store.claim("s", key, "h", reclaim=True)  # the user says that machine is gone
    assert store.rows("s", "running")[0]["worker"].startswith(socket.gethostname() + ":")
    assert store.held_elsewhere("s") == []
    live = subprocess.Popen(["sleep", "60"])
    try:
        here = f"{socket.gethostname()}:{live.pid}"
        assert store.claim("s", key[:3] + (1,), "h", worker=here)
        assert not store.claim("s", key[:3] + (1,), "h", reclaim=True)  # alive on this machine: never taken
    finally:
        live.kill()
        live.wait()
    assert store.claim("s", key[:3] + (1,), "h")  # its process is gone: taken without asking


def test_a_study_store_brought_from_another_machine_runs_its_unfinished_claims_with_reclaim(
    tmp_path, data_dir, straight
):
    """A store copied from a machine that stopped in the middle of a cell (or a cluster node lost while it ran
    one): the rerun leaves that cell to its worker and says how to take it; --reclaim runs it here, to the
    same rows and scores as the uninterrupted study."""
    path = _study(tmp_path, data_dir)
    study, cells, _ = load_study(path)
    Store(study.store_url).claim("faults", cells[0].key, cells[0].identity_hash, worker="lost-node:77")
    r = cli_here("study", path, "--dry-run")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "1 running" in text and "claimed by lost-node:77" in text and "--reclaim" in text
    r = cli_here("study", path, "--no-report")
    assert r.returncode == 0, r.stderr
    said = " ".join((r.stdout + r.stderr).split())
    assert "1 cells run, 0 already done, 0 failed, 1 taken by another worker" in said
    assert "1 cells claimed by workers of other machines (lost-node:77" in said and "rerun with --reclaim" in said
    r = cli_here("study", path, "--no-report", "--reclaim")
    assert r.returncode == 0, r.stderr
    assert "1 cells run, 1 already done, 0 failed, 0 taken" in " ".join(r.stdout.split())
    assert _rows(path) == straight
