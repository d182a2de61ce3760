#!/usr/bin/env bash
# The shipped recipe (src/effowt/assets/effowt-cutout/config.yaml: side, 800 steps, seed 0) trained
# on the same 1000 far-world images with EVERY object annotated (--train-annotates all), then scored
# like the shipped model (evaluate.sh) into all-categories/. Usage: bash ... [WORK_DIR]
set -euo pipefail
here=$(dirname "$0")
work=${1:-/tmp/all-categories}
effowt synth --world cutout --split far --train-annotates all --out "$work/world" --seed 0 --size 160 \
  --train-images 1000 --val-videos 0 --frames 1 --quiet
effowt train --config src/effowt/assets/effowt-cutout/config.yaml --data "$work/world/train/annotations.json" \
  --images "$work/world/train/images" --out "$work/run" --threads 1 --quiet
cp src/effowt/assets/effowt-cutout/vocabulary.txt "$work/run/"
bash "$here/evaluate.sh" /tmp/shipped-cutout "$work/run" "$here/all-categories"
