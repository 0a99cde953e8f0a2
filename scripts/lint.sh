#!/usr/bin/env bash
# ruff: lint (pyflakes, pycodestyle, import order, pyupgrade, bugbear) and the formatter's check, as CI runs them.
# `.venv/bin/ruff format src tests benchmarks scripts` formats; `... check --fix` fixes what it can.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/ruff format --check src tests benchmarks scripts
