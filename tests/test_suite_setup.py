"""The suite's own set-up: `--dist loadgroup` (scripts/test.sh) keeps an xdist_group on one worker, which the
expensive shared fixtures (the real-SmolLM2 evaluations, the fault studies) rely on. Under pytest 9.2 with
pytest-xdist 3.8 it silently did not: the pin in pyproject.toml's dev extra is what this guards."""

import subprocess
import sys
from pathlib import Path


def test_an_xdist_group_runs_on_one_worker(tmp_path):
    (tmp_path / "test_grouped.py").write_text(
        "import os, time, pytest\n"
        "pytestmark = pytest.mark.xdist_group('g')\n"
        "@pytest.mark.parametrize('i', range(6))\n"
        "def test_one(i):\n"
        "    time.sleep(0.1)\n"
        "    print('WORKER', os.environ['PYTEST_XDIST_WORKER'])\n"
        "def test_free():\n"
        "    time.sleep(0.3)\n"
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rA",
            "-p",
            "no:cacheprovider",
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "test_grouped.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    workers = {line.split()[1] for line in r.stdout.splitlines() if line.startswith("WORKER")}
    assert len(workers) == 1, r.stdout


def test_the_default_suite_leaves_out_the_extended_tests_and_m_extended_runs_them():
    """conftest.py: a test marked `extended` (a set of processes started) is not in the default suite; `-m extended`
    (CI, after the suite) runs it, and another `-m` expression leaves it out as the default does."""
    here = Path(__file__).parent

    def collected(*args):
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "--collect-only",
                "-q",
                "-p",
                "no:cacheprovider",
                *args,
                "test_gpu_check.py",
            ],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return [line for line in r.stdout.splitlines() if "::" in line]

    extended = ["tests/test_gpu_check.py::test_the_gpu_check_runs_its_steps_at_tiny_shapes"]
    assert collected() == [] and collected("-m", "not model") == []
    assert collected("-m", "extended") == extended
