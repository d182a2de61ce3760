#!/usr/bin/env bash
# The transfer-mode comparison on the cut-out world's near split (known categories drawn at
# random across all super-categories), the same protocol as benchmarks/cutout-far/run.sh
# (resumable: finished runs are found by the hash of their config and reused). Needs the
# Debian packages tuxpaint-stamps-default and openclipart-png.
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 PYTHONHASHSEED=0
.venv/bin/effowt bench accuracy --world cutout-near --modes side,head,full,lora \
  --trials 4 --seeds 3 --budget 800 --jobs 2 --out benchmarks/cutout-near
