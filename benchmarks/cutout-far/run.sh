#!/usr/bin/env bash
# The transfer-mode comparison on the cut-out world's far split, as run for accuracy.json
# (resumable: finished runs are found by their config hash and reused). Needs the Debian
# packages tuxpaint-stamps-default and openclipart-png (the worlds are generated in OUT/world
# and OUT/val-world). This session ran 1 trial per mode (no tuning) and side, head, full only:
# the issue's protocol asks --trials 4 (or more) and --modes side,head,full,lora.
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 PYTHONHASHSEED=0
.venv/bin/effowt bench accuracy --world cutout-far --modes side,head,full \
  --trials 1 --seeds 3 --budget 800 --jobs 2 --out benchmarks/cutout-far
