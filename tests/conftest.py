import contextlib
import os
import tempfile
from pathlib import Path

import pytest
import torch

# Under pytest-xdist (scripts/test.sh) the cores are shared out between the workers: each worker's torch, and
# the biotune subprocesses its tests start, use cores / workers threads instead of every core each.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _THREADS = max(1, (os.cpu_count() or 1) // _WORKERS)
    os.environ.setdefault("OMP_NUM_THREADS", str(_THREADS))
    torch.set_num_threads(_THREADS)

# this machine's matmul peak (biotune.plan.machine) in a file of the test run's own: a peak measured while tests load
# the cores must not become the user's
os.environ["BIOTUNE_PEAK_FILE"] = os.path.join(tempfile.gettempdir(), "biotune-test-peak.json")
# what runs took against their plan (biotune.plan.calibration) in a file of each test's own (the fixture below):
# a test's plan is the planner's arithmetic alone unless the test teaches it
os.environ["BIOTUNE_CALIBRATION_FILE"] = os.path.join(tempfile.gettempdir(), "biotune-test-calibration.json")
# runs and studies do not plan before they start (a few seconds each, hundreds of short runs here); the tests of
# the estimate turn it on
os.environ["BIOTUNE_ESTIMATE"] = "0"

from biotune.data.location import default_candidates  # noqa: E402 (after the thread count is set)
from biotune.models import tiny  # noqa: E402

# The tiny random-init models most tests train: the real architectures, built by transformers, in seconds
# (biotune.models.tiny: their one home)
TINY_LLAMA_INIT = tiny.LLAMA
TINY_BERT_INIT = tiny.BERT
TINY_LLAMA = {"family": "causal", "path": "smollm2-135m", "random_init": TINY_LLAMA_INIT}
TINY_BERT = {"family": "encoder", "path": "minilm", "random_init": TINY_BERT_INIT}

SHARED_DATA = next((p.resolve() for p in default_candidates() if p.is_dir()), None)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if SHARED_DATA is None:
        pytest.fail("the BLURB data (../shared/data/blurb) is required for the tests")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _no_hub(monkeypatch):
    """No test may reach a model or data hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _own_calibration(monkeypatch, tmp_path_factory, request):
    """Each test's runs teach a plan-correction file of the test's own (biotune.plan.calibration)."""
    import hashlib

    name = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]
    monkeypatch.setenv("BIOTUNE_CALIBRATION_FILE", str(tmp_path_factory.getbasetemp() / f"calibration-{name}.json"))


def pytest_collection_modifyitems(config, items):
    """The tests marked `extended` (each starts a set of processes: a local Ray cluster, 2-process DDP or FSDP, the
    GPU check's runs) are left out of the default suite, which stays under 10 minutes on 2 cores of either kind;
    a `-m` expression that names them runs them (`bash scripts/test.sh -m extended`: CI runs it after the suite)."""
    if "extended" in (config.option.markexpr or ""):
        return
    left = [item for item in items if item.get_closest_marker("extended")]
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = [item for item in items if not item.get_closest_marker("extended")]


def pytest_collection_finish(session):
    """The libraries the test modules imported (transformers, peft, torch: millions of objects) are moved out
    of the garbage collector's sight once: the Trainer calls gc.collect() at every train() (accelerate's
    free_memory), which otherwise walks them all, ~0.5 s a time."""
    import gc

    gc.collect()
    gc.freeze()


def cli_here(*args, env=None, cwd=None):
    """The CLI in this process (its libraries already imported): for runs that must succeed, where a fresh
    process adds only its imports. What must be one line on a fresh process's stderr runs as a subprocess."""
    import contextlib
    import io
    import subprocess

    from biotune.cli import main

    out, err, before, here = io.StringIO(), io.StringIO(), dict(os.environ), os.getcwd()
    try:
        os.environ.update(env or {})
        os.chdir(cwd or here)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(before)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def tmpfs(folder: Path, options: str):
    """A tmpfs mounted at `folder` with `options` (e.g. size=16m, or ro) while the block runs; skips the test where
    it cannot be mounted (mounting needs root)."""
    import shutil
    import subprocess

    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


_ONCE: dict = {}


def once(key: str, make):
    """`make()`, once per test process. pytest-xdist can tear a module- or class-scoped fixture down in the middle
    of its module and set it up again (measured: the real-SmolLM2 evaluation runs made twice); what is expensive to
    make is kept here for the process's life instead (its files in the session's temporary folder)."""
    if key not in _ONCE:
        _ONCE[key] = make()
    return _ONCE[key]
