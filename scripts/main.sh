#!/usr/bin/env bash
# The main job: a small real BLURB benchmark of the packaged SmolLM2-135M, zero-shot, 20 examples per dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/biotune eval --model smollm2-135m --datasets all --shots 0 --limit 20 --seed 0 \
  --output-dir runs/main "$@"
