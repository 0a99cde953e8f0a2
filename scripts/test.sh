#!/usr/bin/env bash
# Installs (first time) and runs the test suite, in parallel: one pytest worker per CPU core (pytest-xdist;
# tests go to whichever worker is free, except a module marked xdist_group, whose tests share an expensive
# fixture and stay on one worker). BIOTUNE_TEST_WORKERS=1: one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -n "${BIOTUNE_TEST_WORKERS:-logical}" --dist loadgroup "$@"
