#!/usr/bin/env bash
# The shipped model: the recipe the cut-out far benchmark's tuning chose for side mode
# (benchmarks/cutout-far/accuracy.json: model.side.output=replace, lr 1e-3; the cutout preset,
# 800 steps, seed 0) trained on the same 1000 far-world images with EVERY object annotated
# (--train-annotates all), made shippable by ship.py (into OUT, default the shipped folder) and
# scored like the shipped model (evaluate.sh) into all-categories/.
# Usage (from the repository root, venv active): bash ... [WORK_DIR] [OUT] [SCORES_DIR]
set -euo pipefail
here=$(dirname "$0")
work=${1:-/tmp/all-categories}
out=${2:-src/effowt/assets/effowt-cutout}
[ -f "$work/world/train/annotations.json" ] || effowt synth --world cutout --split far --train-annotates all \
  --out "$work/world" --seed 0 --size 160 --train-images 1000 --val-videos 0 --frames 1 --quiet
effowt train --config cutout --data "$work/world/train/annotations.json" --images "$work/world/train/images" \
  --out "$work/run" --max-steps 800 --threads 1 --quiet model.side.output=replace train.lr=1e-3 train.seed=0
python "$here/ship.py" "$work/run" src/effowt/assets "$out"
bash "$here/evaluate.sh" /tmp/shipped-cutout "$out" "${3:-$here/all-categories}"
