#!/bin/bash
# The own-corpus walkthrough, timed from nothing (the corpus written) to the study's report:
#   mkdir /tmp/walk && cp docs/walkthroughs/own-corpus/*.yaml /tmp/walk/
#   BLURB=$PWD/../shared/data/blurb bash docs/walkthroughs/own-corpus/walk.sh /tmp/walk > /tmp/walk/walk.log 2>&1
HERE=$(cd "$(dirname "$0")" && pwd)
cd "${1:?a scratch folder holding this folder's YAML files}"
step() { echo "=== $(date -u +%H:%M:%S) $*"; local t0=$(date +%s.%N); "$@" 2>&1; echo "=== rc $? took $(echo "$(date +%s.%N) - $t0" | bc) s"; }
T0=$(date +%s)
step python "$HERE/make_corpus.py" --blurb "${BLURB:?the BLURB data folder}" --out data
step biotune data show drugdis.yaml -n 1
step biotune run minilm.yaml --plan
step biotune run minilm.yaml --no-progress
step biotune run lora.yaml --plan
step biotune run lora.yaml --no-progress
step biotune study study.yaml --plan
step biotune study study.yaml --no-progress
step biotune report study.yaml
echo "=== total $(( $(date +%s) - T0 )) s"
