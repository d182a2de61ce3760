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

# forgetting.json: the LiT VLM's zero-shot recognition with each mode's chosen trial's trunk
# (the run folders above; each mode's recipe is accuracy.json's modes.MODE.chosen)
.venv/bin/effowt bench forgetting --lit src/effowt/assets/lit-mnv2.safetensors \
  --runs benchmarks/cutout-far/trials/{side/91f5707c9039,head/d6be43179e8e,full/a789e22fdffd,lora/46631bc79de6}/run \
  --json benchmarks/cutout-far/forgetting.json
# probe.json: linear objectness probes on the cutout preset's taps, on the far test videos
.venv/bin/effowt bench probe --config cutout --gt benchmarks/cutout-far/world/val/annotations.json --frames 5 \
  --json benchmarks/cutout-far/probe.json
