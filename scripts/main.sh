#!/usr/bin/env bash
# The main job: the demo study (configs/demo.yaml): the packaged SmolLM2-135M and MiniLM on one BLURB dataset
# per task type, zero-shot / 3-shot / LoRA / QLoRA / P-tuning / FFT and the MiniLM baseline, 2 seeds; about 20
# minutes on 2 CPU cores. Ends by printing where the report is (runs/demo/report.html). Rerun to resume.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/biotune study configs/demo.yaml "$@"
