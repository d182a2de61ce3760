#!/usr/bin/env bash
# The transfer-mode comparison on the cut-out world's near split (known categories drawn at
# random across all super-categories), the same protocol as benchmarks/cutout-far/run.sh
# (resumable: finished runs are found by the hash of their config and reused). Needs the
# Debian packages tuxpaint-stamps-default and openclipart-png.
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 PYTHONHASHSEED=0
.venv/bin/effowt bench accuracy --world cutout-near --modes side,head,full,lora \
  --trials 4 --seeds 3 --budget 800 --jobs 2 --out benchmarks/cutout-near

# forgetting.json: the LiT VLM's zero-shot recognition with each mode's chosen trial's trunk
# (the run folders above; each mode's recipe is accuracy.json's modes.MODE.chosen)
.venv/bin/effowt bench forgetting --lit src/effowt/assets/lit-mnv2.safetensors \
  --runs benchmarks/cutout-near/trials/{side/91f5707c9039,head/d6be43179e8e,full/a789e22fdffd,lora/e45ef5b08f0e}/run \
  --json benchmarks/cutout-near/forgetting.json
# probe.json: linear objectness probes on the cutout preset's taps, on the near test videos
.venv/bin/effowt bench probe --config cutout --gt benchmarks/cutout-near/world/val/annotations.json --frames 5 \
  --json benchmarks/cutout-near/probe.json
