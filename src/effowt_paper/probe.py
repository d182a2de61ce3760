"""``effowt bench probe``: how much of a MiniOWT world the frozen backbone already solves.

Is MiniOWT a fair proxy for COCO -> TAO-OW? The tiny VLM was pretrained on crops of
all 50 MiniOWT categories; if its frozen last block already tells objects of
*unseen* categories from the background, a pyramid on that block (``head`` mode) has
nothing left to learn that the side network could add. This measures it, per
tapped block, with a linear objectness probe::

    tokens of every tapped block   [D] per stride-p cell of the frames of a TAO split
    label of a token               known object / unknown object / background, by
                                   whether its cell centre lies inside a ground-truth box
    probe                          logistic regression known-object vs background,
                                   fit on the first half of the videos
    score                          ROC AUC on the other half: known vs background, and
                                   UNKNOWN vs background (categories the probe never saw)

Two references calibrate the numbers: the same probe on the raw pixels of each cell
(``pixels``: what colour and texture alone give) and on a randomly initialised
backbone of the same architecture (``random`` taps: what pretraining adds).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effowt.config import load_config
from effowt.errors import DataError

if TYPE_CHECKING:
    import argparse

    import torch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True,
                        help="an annotated TAO split, e.g. a MiniOWT world's val/annotations.json")
    parser.add_argument("--config", default="miniowt", help="preset name or YAML path (its backbone is probed)")
    parser.add_argument("--frames", type=int, default=10, help="frames per video")


def run(args: argparse.Namespace) -> dict[str, Any]:
    return run_probe(args.gt, args.config, args.frames)


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (Mann-Whitney U,
    tied scores counted half); NaN when a class is empty."""
    from scipy.stats import rankdata

    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(scores.numpy(), method="average")
    return float((ranks[labels.numpy()].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _token_labels(gt: dict[str, Any], image: dict[str, Any], known_ids: set[int], grid: tuple[int, int],
                  stride: float) -> torch.Tensor:
    """Per cell of ``grid``: 0 background, 1 known object, 2 unknown object (known wins)."""
    import torch

    ys = (torch.arange(grid[0]) + 0.5) * stride
    xs = (torch.arange(grid[1]) + 0.5) * stride
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    labels = torch.zeros(grid, dtype=torch.long)
    for ann in gt["_by_image"].get(image["id"], []):
        x, y, w, h = ann["bbox"]
        inside = (cx >= x) & (cx < x + w) & (cy >= y) & (cy < y + h)
        value = 1 if ann["category_id"] in known_ids else 2
        labels[inside & ((labels == 0) | (value == 1))] = value
    return labels


def _fit_probe(x: torch.Tensor, y: torch.Tensor, steps: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Logistic regression (L-BFGS, small L2) of binary ``y`` on standardised ``x``."""
    import torch
    import torch.nn.functional as F

    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")
    pos_weight = (len(y) - y.sum()) / y.sum().clamp(min=1)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = x @ w + b
        loss = F.binary_cross_entropy_with_logits(logits, y.float(), pos_weight=pos_weight) + 1e-4 * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def _probe_scores(features: torch.Tensor, labels: torch.Tensor, train: torch.Tensor) -> dict[str, float]:
    """Fit known-vs-background on the ``train`` tokens, AUCs on the others."""
    mean, std = features[train].mean(0), features[train].std(0).clamp(min=1e-6)
    x = (features - mean) / std
    fit = train & (labels != 2)
    w, b = _fit_probe(x[fit], labels[fit] == 1)
    scores = x @ w + b
    test = ~train
    known = test & (labels != 2)
    unknown = test & (labels != 1)
    return {"known_auc": roc_auc(scores[known], labels[known] == 1),
            "unknown_auc": roc_auc(scores[unknown], labels[unknown] == 2)}


def run_probe(gt_json: str | Path, config: str = "miniowt", max_frames: int = 10, seed: int = 0) -> dict[str, Any]:
    """Probe the frozen backbone of ``config`` (and a random one, and raw pixels) on the
    TAO split ``gt_json`` (``max_frames`` frames spread over each video); returns
    ``{"tokens": {class: count}, "probes": {features: {"known_auc", "unknown_auc"}}}``."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from effowt.backbones import create_backbone
    from effowt.backbones.weights import random_init_expected

    gt_json = Path(gt_json)
    gt = json.loads(gt_json.read_text())
    if not gt.get("categories") or not gt.get("annotations"):
        raise DataError(f"{gt_json}: the probe needs an annotated TAO split with categories")
    known_ids = {c["id"] for c in gt["categories"] if c.get("known")}
    gt["_by_image"] = {}
    for ann in gt["annotations"]:
        gt["_by_image"].setdefault(ann["image_id"], []).append(ann)
    cfg = load_config(config)
    backbones = {"pretrained": create_backbone(cfg.model.backbone)}
    with torch.random.fork_rng(devices=[]), random_init_expected():
        torch.manual_seed(seed)
        backbones["random"] = create_backbone(dataclasses.replace(cfg.model.backbone, weights=None))
    mean = torch.tensor(backbones["pretrained"].mean).view(1, 3, 1, 1)
    std = torch.tensor(backbones["pretrained"].std).view(1, 3, 1, 1)
    p = backbones["pretrained"].patch_size
    videos = sorted({img["video_id"] for img in gt["images"]})
    train_videos = set(videos[: len(videos) // 2])
    feats: dict[str, list[torch.Tensor]] = {}
    labels: dict[str, list[torch.Tensor]] = {}  # per feature set: a CNN's taps differ in stride
    in_train: dict[str, list[torch.Tensor]] = {}

    def add(name: str, rows: torch.Tensor, stride: int, shape: tuple[int, int], train_video: bool) -> None:
        grid = (shape[0] // stride, shape[1] // stride)
        cell = _token_labels(gt, image, known_ids, grid, float(stride)).flatten()
        feats.setdefault(name, []).append(rows[: len(cell)])
        labels.setdefault(name, []).append(cell)
        in_train.setdefault(name, []).append(torch.full_like(cell, train_video, dtype=torch.bool))

    for video in videos:
        frames = sorted((img for img in gt["images"] if img["video_id"] == video), key=lambda i: i["frame_index"])
        for image in frames[:: max(1, len(frames) // max_frames)][:max_frames]:
            pixels = np.asarray(Image.open(gt_json.parent / image["file_name"]).convert("RGB"), dtype=np.float32)
            x = (torch.from_numpy(pixels).permute(2, 0, 1)[None] / 255.0 - mean) / std
            shape = (x.shape[-2], x.shape[-1])
            grid = (shape[0] // p, shape[1] // p)
            patches = F.unfold(x[..., : grid[0] * p, : grid[1] * p], p, stride=p)[0].T  # [cells, 3 p^2]
            add("pixels", patches, p, shape, video in train_videos)
            with torch.no_grad():
                for name, backbone in backbones.items():
                    for tap, stride, f in zip(backbone.taps, backbone.tap_strides, backbone.eval()(x)):
                        rows = f[0, :, : shape[0] // stride, : shape[1] // stride].flatten(1).T
                        add(f"{name} block {tap}", rows, stride, shape, video in train_videos)
    probes = {name: _probe_scores(torch.cat(chunks), torch.cat(labels[name]), torch.cat(in_train[name]))
              for name, chunks in feats.items()}
    y = torch.cat(labels["pixels"])
    return {
        "config": config,
        "split": {"synth_seed": gt.get("info", {}).get("seed"), "videos": len(videos),
                  "frames_per_video": max_frames},
        "tokens": {"background": int((y == 0).sum()), "known": int((y == 1).sum()), "unknown": int((y == 2).sum())},
        "probes": probes,
    }


def markdown(report: dict[str, Any]) -> str:
    """One row per feature set: held-out AUC, known and unknown objects vs background."""
    t = report["tokens"]
    lines = [f"Tokens: {t['known']} known-object, {t['unknown']} unknown-object, {t['background']} background.", "",
             "| features | known vs background (AUC) | unknown vs background (AUC) |", "|---|---:|---:|"]
    for name, r in report["probes"].items():
        lines.append(f"| {name} | {r['known_auc']:.3f} | {r['unknown_auc']:.3f} |")
    return "\n".join(lines) + "\n"
