#!/usr/bin/env bash
# The main job: the demo study (configs/demo.yaml): on NCBI-disease, the packaged SmolLM2-135M with 3-shot in-context
# learning and with LoRA, and MiniLM fully fine-tuned, 2 seeds; under 15 minutes on 2 CPU cores. Ends by printing
# where the report is (runs/demo/report.html). Rerun to resume. On a machine without the BLURB files (no
# ../shared/data/blurb, no $BIOTUNE_DATA) it fetches them first (`biotune data fetch`, verified by checksum).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! .venv/bin/python -c "from biotune.data import resolve_data_dir; resolve_data_dir()" 2>/dev/null; then
  echo "no BLURB data folder here: fetching the BLURB files (biotune data fetch)" >&2
  .venv/bin/biotune data fetch >&2 || { echo "could not fetch the BLURB files (no network?): put them in ../shared/data/blurb or set BIOTUNE_DATA" >&2; exit 1; }
fi
exec .venv/bin/biotune study configs/demo.yaml "$@"
