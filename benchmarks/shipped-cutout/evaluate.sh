#!/usr/bin/env bash
# The shipped cut-out model on held-out cut-out worlds it never saw (far split, synth seeds 7, 8, 9):
# OWTA known / unknown and label accuracy with its default vocabulary. Writes seedS/metrics.json.
# Usage: bash benchmarks/shipped-cutout/evaluate.sh [WORK_DIR]   (from the repository root, venv active)
set -euo pipefail
here=$(dirname "$0")
work=${1:-/tmp/shipped-cutout}
for seed in 7 8 9; do
  effowt synth --world cutout --split far --out "$work/world$seed" --seed "$seed" --size 160 \
    --train-images 0 --val-videos 8 --frames 40 --quiet
  effowt track --source "$work/world$seed/val/annotations.json" --out "$work/tracks$seed" --quiet
  effowt eval --gt "$work/world$seed/val/annotations.json" --pred "$work/tracks$seed/results.json" \
    --out "$here/seed$seed"
done
