#!/usr/bin/env bash
# Transfer-mode comparison on the cut-out world's far split (resumable: finished runs are reused).
cd "$(dirname "$0")"
export PYTHONPATH=$PWD/src HF_HUB_OFFLINE=1 PYTHONHASHSEED=0
/work/main/.venv/bin/python -m effowt bench accuracy --world cutout-far --modes side,head,full \
  --trials 1 --seeds 3 --budget 800 --jobs 2 --out benchmarks/cutout-far
