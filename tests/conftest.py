import os
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

from biotune.data.location import default_candidates

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
