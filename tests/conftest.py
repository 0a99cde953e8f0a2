from pathlib import Path

import pytest

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
