#!/usr/bin/env bash
# Installs (first time) and runs the test suite, in parallel: one pytest worker per CPU core (pytest-xdist;
# a module's tests stay on one worker, so its shared fixtures load once). BIOTUNE_TEST_WORKERS=1: one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -n "${BIOTUNE_TEST_WORKERS:-logical}" --dist loadscope "$@"
