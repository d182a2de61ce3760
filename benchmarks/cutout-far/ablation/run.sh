#!/usr/bin/env bash
# The paper's design claims on the cut-out world's far split (issue 23, item 4), at the far
# tuning's side recipe (model.side.output=replace, lr 1e-3; the default variant) and the
# protocol's 800-step budget (where that recipe's validation score stopped rising:
# 33.5 at 600 steps, 33.4 at 800, benchmarks/cutout-far/accuracy.json tuning.side), 3 seeds,
# on the far test world. Variants: the core claims without random_init (the cutout preset's
# side network already starts random: a CNN has no blocks to prune from) and the SIM placement
# study (default = SIM at 1/4; sim_s8, sim_s16, sim_all). Resumable (finished runs are kept).
# The committed results: all 33 runs, by this command with `--threads 1`, stopped and resumed
# over three sessions (a resumed run's train_s counts only its time after resuming).
# Needs the Debian packages tuxpaint-stamps-default and openclipart-png.
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 PYTHONHASHSEED=0
.venv/bin/effowt bench ablation --world cutout-far --seeds 3 --budget 800 --jobs 2 \
  --out benchmarks/cutout-far/ablation model.side.output=replace train.lr=1e-3
