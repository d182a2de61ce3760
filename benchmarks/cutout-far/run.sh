#!/usr/bin/env bash
# The transfer-mode comparison on the cut-out world's far split, as run for accuracy.json
# (resumable: finished runs are found by the hash of their config and reused). Needs the
# Debian packages tuxpaint-stamps-default and openclipart-png (the worlds are generated in
# OUT/world and OUT/val-world). head, full and lora read the CNN's taps through an FPN
# (the cutout preset's model.pyramid=fpn); one-map-pyramid.json/.md keep the earlier
# 1-trial run in which they read only the 1/32 map.
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 PYTHONHASHSEED=0
.venv/bin/effowt bench accuracy --world cutout-far --modes side,head,full,lora \
  --trials 4 --seeds 3 --budget 800 --jobs 2 --out benchmarks/cutout-far
