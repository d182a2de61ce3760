#!/usr/bin/env bash
# A cut-out model on held-out cut-out worlds it never saw (far split, synth seeds 7, 8, 9):
# OWTA known / unknown and label accuracy with its default vocabulary. Writes OUT/seedS/metrics.json
# and their mean over the three worlds, OUT/mean.json.
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
# the mean over the three worlds (the issue's targets are on held-out worlds, not one of them)
python - "$out" <<'PY'
import json, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
runs = [json.loads((out / f"seed{s}" / "metrics.json").read_text()) for s in (7, 8, 9)]
mean = {split: {"OWTA": statistics.fmean(r[split]["OWTA"] for r in runs),
                "label_accuracy": statistics.fmean(r["label_accuracy"][split] for r in runs)}
        for split in ("known", "unknown")}
(out / "mean.json").write_text(json.dumps({"seeds": [7, 8, 9], "mean": mean}, indent=2) + "\n")
print(out / "mean.json", json.dumps(mean))
PY
