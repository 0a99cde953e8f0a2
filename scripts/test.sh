#!/usr/bin/env bash
# Installs (first time) and runs the test suite, in parallel (pytest-xdist): one pytest worker per CPU core and one
# more, so that a worker waiting on a subprocess's start-up, on files or on Ray leaves its core to the others (the
# README's Development section has the timings); tests go to whichever worker is free, except a module marked
# xdist_group, whose tests share an expensive fixture and stay on one worker.
# BIOTUNE_TEST_WORKERS=N: N workers (1: one process).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -n "${BIOTUNE_TEST_WORKERS:-$(($(nproc) + 1))}" --dist loadgroup "$@"
