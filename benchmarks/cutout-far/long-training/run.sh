#!/usr/bin/env bash
# The long-training curves on the cut-out world's far split (issue 23, item 4): the default
# side network (the far tuning's recipe: model.side.output=replace, lr 1e-3), the
# pure-Transformer side network (width matched to default's trainable parameters) and full
# fine-tuning (its tuned backbone multiplier 0.1, lr 1e-3), trained to 3x the protocol's
# 800-step budget and scored on the test world at 6 evenly spaced steps. Resumable.
# The committed ablation.json was written by this command with `--seeds 1` (default and
# pure_transformer first, with `--jobs 3`; full later, with `--jobs 1 --threads 1`: finished runs
# are reused, nothing retrains); seed 1 of each later with `--seeds 2 --jobs 1 --threads 1`
# (default and full in one process, pure_transformer in another), and the report then written by
# `--seeds 2`; seed 2 of all three a session later by this command as it stands, with
# `--jobs 2 --threads 1` (seeds 0 and 1 reused). Running it again retrains nothing.
# Needs the Debian packages tuxpaint-stamps-default and openclipart-png.
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 PYTHONHASHSEED=0
.venv/bin/effowt bench ablation --world cutout-far --variants default,pure_transformer,full \
  --budget 2400 --curve-points 6 --seeds 3 --jobs 2 --out benchmarks/cutout-far/long-training \
  model.side.output=replace train.lr=1e-3
