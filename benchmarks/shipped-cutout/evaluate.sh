#!/usr/bin/env bash
# A cut-out model on held-out cut-out worlds it never saw (far split, synth seeds 7, 8, 9):
# OWTA known / unknown and label accuracy with its default vocabulary. Writes OUT/seedS/metrics.json.
# Usage (from the repository root, venv active):
#   bash benchmarks/shipped-cutout/evaluate.sh [WORK_DIR] [RUN] [OUT]
# RUN: a run folder (default: the shipped default model); OUT: where seedS/ go (default: this folder).
set -euo pipefail
here=$(dirname "$0")
work=${1:-/tmp/shipped-cutout}
run=${2:-}
out=${3:-$here}
suffix=${run:+-$(basename "$out")}  # tracks of another run go beside the shipped model's
for seed in 7 8 9; do
  gt="$work/world$seed/val/annotations.json" tracks="$work/tracks$seed$suffix"
  [ -f "$gt" ] || effowt synth --world cutout --split far \
    --out "$work/world$seed" --seed "$seed" --size 160 --train-images 0 --val-videos 8 --frames 40 --quiet
  effowt track --source "$gt" --out "$tracks" ${run:+--weights "$run"} --quiet
  effowt eval --gt "$gt" --pred "$tracks/results.json" --out "$out/seed$seed"
done
