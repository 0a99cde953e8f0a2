#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): on a machine with one CUDA GPU, from the repository's root, the kit
# written beforehand (python benchmarks/gpu_check.py --kit) beside it. Runs biotune from src/ (no install: the
# machine may reach no registry); results in benchmarks/results/gpu-check-<machine>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
exec "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
