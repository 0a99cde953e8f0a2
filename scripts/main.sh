#!/usr/bin/env bash
# The main job: the demo study (configs/demo.yaml): on GAD, the packaged SmolLM2-135M with 3-shot in-context
# learning and with LoRA, and MiniLM fully fine-tuned, 2 seeds; under 15 minutes on 2 CPU cores. Ends by printing
# where the report is (runs/demo/report.html). Rerun to resume.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/biotune study configs/demo.yaml "$@"
