"""A tiny CLIP-style vision-language model, pretrained on MiniOWT, standing in for CLIP / EVA.

Why: the EffOWT claim is about *transferring* a VLM that has seen every category
(including those unknown to the tracker's training set). On a laptop we cannot
use EVA-02-L, so we pretrain a small open_clip ``CLIP`` (config
``effowt/configs/open_clip/EffOWT-Tiny.json``: ViT 6x128, patch 8, 64 px; text
tower 2x64) on object crops of MiniOWT ``pretrain/`` covering ALL categories.
The result loads through the same backbone interface as real VLMs
(``open_clip:EffOWT-Tiny`` + a local weight file) and is frozen downstream.

Choices (the paper pretrains nothing; these are ours):

- Samples are 64x64 windows centred on each annotated object at its native
  scale (objects larger than the window are shrunk to fit), so patch features
  match the scale at which the tracker later sees objects in whole frames.
- Captions are ``"a photo of a {category name}"``; MiniOWT names describe colour,
  pattern and shape ("red striped star").
- Loss: cross-entropy of each image embedding against the text embeddings of
  *all* category captions (text-supervised classification, UniCL-style). The
  symmetric in-batch CLIP loss is ill-posed here because a batch holds many
  crops of one category.
- Weights are stored as float16 safetensors (the file must stay small enough to
  ship); they are cast back to float32 on load.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from tqdm import tqdm

from effowt.errors import DataError
from effowt.fileio import atomic_write_json
from effowt.pretrain_config import PretrainConfig as PretrainConfig  # torch-free, for the command line
from effowt.progress import bar_disable

TINY_VLM_NAME = "EffOWT-Tiny"
VLM_WEIGHTS_FILE = "tiny-vlm.safetensors"


def create_tiny_vlm() -> torch.nn.Module:
    """A randomly initialised tiny open_clip ``CLIP`` model (never downloads)."""
    from effowt.backbones.open_clip_backbone import create_open_clip_model

    return create_open_clip_model(TINY_VLM_NAME)


def caption(category_name: str) -> str:
    """The caption used for a category in pretraining and zero-shot evaluation."""
    return f"a photo of a {category_name}"


def load_object_crops(ann_file: str | Path, image_dir: str | Path,
                      crop: int) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """Cut a ``crop``-sized window around every annotated object of a COCO json.

    Returns:
        crops: ``uint8[N, 3, crop, crop]``,
        labels: ``int64[N]`` index into ``categories``,
        categories: the json's category records, in index order.
    """
    from pycocotools.coco import COCO

    ann_file = Path(ann_file)
    if not ann_file.is_file():
        raise DataError(f"{ann_file}: annotation file not found")
    try:
        coco = COCO(str(ann_file))
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(f"{ann_file}: not a COCO annotation file ({err})") from None
    categories = sorted(coco.loadCats(coco.getCatIds()), key=lambda c: c["id"])
    if not categories:
        raise DataError(f"{ann_file}: no categories")
    index_of = {c["id"]: i for i, c in enumerate(categories)}
    crops, labels = [], []
    for image_id in tqdm(sorted(coco.getImgIds()), desc="cutting crops", disable=bar_disable()):
        info = coco.loadImgs(image_id)[0]
        path = Path(image_dir) / info["file_name"]
        try:
            image = np.asarray(Image.open(path).convert("RGB"))
        except (FileNotFoundError, OSError) as err:
            raise DataError(f"{path}: cannot read image ({err})") from None
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=False)):
            x, y, w, h = ann["bbox"]
            if w <= 1 or h <= 1:
                continue
            window = object_window(image, np.array([x, y, x + w, y + h]), crop)
            crops.append(torch.from_numpy(window.copy()).permute(2, 0, 1))  # PIL arrays are read-only
            labels.append(index_of[ann["category_id"]])
    if not crops:
        raise DataError(f"{ann_file}: no usable annotations")
    return torch.stack(crops), torch.tensor(labels), categories


def object_window(image: np.ndarray, box: np.ndarray, crop: int, fill: bool = False) -> np.ndarray:
    """The pretraining view of one object: a ``crop``-sized uint8[crop, crop, 3] window of
    ``image`` [H, W, 3] centred on ``box`` ([x1, y1, x2, y2] px) at its native scale, or
    a window 1.25x the box's long side shrunk to ``crop`` when the box is larger.
    ``fill``: always the 1.25x window, resized to ``crop`` (small objects enlarged: the
    LiT VLM's view, :mod:`effowt.lit`, since an ImageNet CNN sees a 20 px object in a
    96 px window poorly)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    long_side = int(math.ceil(max(x2 - x1, y2 - y1) * 1.25))
    size = max(8, long_side) if fill else max(crop, long_side)
    window = _window(image, (x1 + x2) / 2, (y1 + y2) / 2, size)
    if size != crop:
        window = np.asarray(Image.fromarray(window).resize((crop, crop), Image.BILINEAR))
    return np.ascontiguousarray(window)


def _window(image: np.ndarray, cx: float, cy: float, size: int) -> np.ndarray:
    """The ``size x size`` window of ``image`` [H, W, 3] centred on (cx, cy), edge-padded."""
    x0, y0 = int(round(cx)) - size // 2, int(round(cy)) - size // 2
    h, w = image.shape[:2]
    pad = ((max(0, -y0), max(0, y0 + size - h)), (max(0, -x0), max(0, x0 + size - w)), (0, 0))
    padded = np.pad(image, pad, mode="edge")
    y0, x0 = y0 + pad[0][0], x0 + pad[1][0]
    return padded[y0 : y0 + size, x0 : x0 + size]


def normalise_crops(crops: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    """uint8 crops ``[N, 3, h, w]`` -> float, normalised with the VLM's ``image_mean`` / ``image_std``."""
    mean = torch.tensor(model.visual.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(model.visual.image_std).view(1, 3, 1, 1)
    return (crops.float() / 255.0 - mean) / std


def _augment(crops: torch.Tensor, jitter: int, generator: torch.Generator) -> torch.Tensor:
    """Random shift (by rolling, up to ``jitter`` px) and horizontal flip of a uint8 batch."""
    dx, dy = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
    out = torch.roll(crops, shifts=(dy, dx), dims=(2, 3))
    flip = torch.rand(len(crops), generator=generator) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


@torch.no_grad()
def zero_shot_accuracy(model: torch.nn.Module, crops: torch.Tensor, labels: torch.Tensor,
                       text_tokens: torch.Tensor) -> torch.Tensor:
    """Per-sample correctness ``bool[N]`` of zero-shot classification against all captions."""
    model.eval()
    text = F.normalize(model.encode_text(text_tokens), dim=-1)
    hits = []
    for start in range(0, len(crops), 256):
        image = F.normalize(model.encode_image(normalise_crops(crops[start : start + 256], model)), dim=-1)
        hits.append((image @ text.T).argmax(-1) == labels[start : start + 256])
    return torch.cat(hits)


def pretrain_vlm(ann_file: str | Path, image_dir: str | Path, out_dir: str | Path, cfg: PretrainConfig,
                 known_ids: set[int] | None = None) -> dict:
    """Pretrain the tiny VLM on object crops; write ``out_dir/tiny-vlm.safetensors`` and
    ``out_dir/pretrain.json`` (config, loss, zero-shot accuracy on held-out crops,
    split into known / unknown categories when ``known_ids`` is given)."""
    import open_clip

    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    crops, labels, categories = load_object_crops(ann_file, image_dir, cfg.crop)
    order = torch.randperm(len(crops), generator=generator)
    n_val = max(1, int(len(crops) * cfg.val_fraction))
    val_idx, train_idx = order[:n_val], order[n_val:]

    model = create_tiny_vlm()
    tokenizer = open_clip.get_tokenizer(TINY_VLM_NAME)
    text_tokens = tokenizer([caption(c["name"]) for c in categories])
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    start = time.perf_counter()
    losses = []
    bar = tqdm(range(cfg.steps), desc="pretraining tiny VLM", disable=bar_disable())
    for step in bar:
        model.train()
        batch = train_idx[torch.randint(len(train_idx), (cfg.batch_size,), generator=generator)]
        images = normalise_crops(_augment(crops[batch], cfg.jitter, generator), model)
        image_emb = F.normalize(model.encode_image(images), dim=-1)
        text_emb = F.normalize(model.encode_text(text_tokens), dim=-1)
        logits = model.logit_scale.exp() * image_emb @ text_emb.T
        loss = F.cross_entropy(logits, labels[batch])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite pretraining loss at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
    train_s = time.perf_counter() - start

    hits = zero_shot_accuracy(model, crops[val_idx], labels[val_idx], text_tokens)
    result = {
        "config": asdict(cfg),
        "open_clip_model": TINY_VLM_NAME,
        "num_crops": len(crops),
        "num_categories": len(categories),
        "train_s": round(train_s, 1),
        "final_loss": float(np.mean(losses[-20:])),
        "zero_shot_acc": {"all": float(hits.float().mean())},
    }
    if known_ids is not None:
        is_known = torch.tensor([categories[i]["id"] in known_ids for i in labels[val_idx].tolist()])
        for name, mask in (("known", is_known), ("unknown", ~is_known)):
            if mask.any():
                result["zero_shot_acc"][name] = float(hits[mask].float().mean())
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    tmp = out_dir / f".{VLM_WEIGHTS_FILE}.tmp"
    save_file(state, str(tmp), metadata={"open_clip_model": TINY_VLM_NAME, "format": "effowt-tiny-vlm"})
    tmp.replace(out_dir / VLM_WEIGHTS_FILE)
    atomic_write_json(out_dir / "pretrain.json", result)
    return result
