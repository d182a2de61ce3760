"""Open-vocabulary labels for class-agnostic tracks, from the VLM's own text tower.

Each tracked box is cut out of the frame the way the tiny VLM was pretrained
(:func:`effowt.vlm.object_window`: a window of the VLM's input size, 64 px for the
tiny VLM, centred on the box at its native
scale, shrunk when the box is larger) and encoded by the VLM's image tower; each
text of the vocabulary, put in ``prompt`` (default ``"a photo of {}"``, the form the
VLM was trained on), by its text tower. A track's label is the text with the
highest cosine similarity **averaged over every frame of the track so far**, so a
track has one label; ``Track.label_score`` is that mean cosine.

Measured on an unseen MiniOWT world with ground-truth boxes (docs/usage.md, "Naming
tracks"): crops through the image tower label far better than the backbone's
features pooled over the box (projected with the tower's ``ln_post`` and ``proj``),
which match no caption: CLIP aligns its class token, not its patch tokens, with text.

Works for ``open_clip:<config>`` backbones whose config has a text tower (the
shipped ``EffOWT-Tiny``, ``ViT-B-16``, ...); another backbone is a ConfigError.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from effowt.config import BackboneConfig
from effowt.errors import ConfigError
from effowt.tracking.association import Track
from effowt.tracking.vocabulary import DEFAULT_PROMPT as DEFAULT_PROMPT
from effowt.tracking.vocabulary import check_prompt as check_prompt
from effowt.tracking.vocabulary import check_texts as check_texts
from effowt.tracking.vocabulary import parse_texts as parse_texts
from effowt.tracking.vocabulary import read_vocabulary as read_vocabulary

CROP_PX = 64
VOCABULARY_FILE = "vocabulary.txt"


def default_vocabulary(run: str | Path | None) -> list[str] | None:
    """The run's own vocabulary (``vocabulary.txt`` in its folder: the shipped cut-out
    run has the 528 captions its LiT VLM was trained on), or None when it has none."""
    from effowt.runs import resolve_run_dir

    path = resolve_run_dir(run) / VOCABULARY_FILE
    return read_vocabulary(path) if path.is_file() else None


class TrackLabeler:
    """Labels tracks of one video at a time with the best-matching text.

    Args:
        vlm: a CLIP-style model with ``encode_image``, ``encode_text`` and
            ``visual.image_mean`` / ``image_std`` (open_clip ``CLIP``), in eval mode.
        tokenizer: its tokenizer (texts -> token tensor).
        texts: the vocabulary, at least one text.
        prompt: template each text is put in (``{}`` = the text).

    Attributes:
        texts: the vocabulary; ``Track.label`` is one of them.
    """

    def __init__(self, vlm: torch.nn.Module, tokenizer: object, texts: list[str],
                 prompt: str = DEFAULT_PROMPT, device: str | torch.device = "cpu", fill: bool = False) -> None:
        texts = check_texts(texts)
        check_prompt(prompt)
        self.device = torch.device(device)
        self.vlm = vlm.to(self.device).eval()
        # the window the VLM was pretrained on: 64 px (tiny VLM), 96 px (LiT MobileNetV2)
        self.crop_px = int(getattr(vlm.visual, "image_size", (CROP_PX,))[0])
        self.fill = fill  # enlarge small boxes to the window, as the LiT VLM was trained
        self.texts = list(texts)
        visual = vlm.visual
        self.mean = torch.tensor(visual.image_mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(visual.image_std, device=self.device).view(1, 3, 1, 1)
        with torch.inference_mode():
            tokens = tokenizer([prompt.format(t) for t in self.texts]).to(self.device)
            self.text_features = F.normalize(vlm.encode_text(tokens).float(), dim=-1)
        self._sums: dict[int, np.ndarray] = {}
        self._counts: dict[int, int] = {}

    def reset(self) -> None:
        """Start a new video: forget every track's scores."""
        self._sums, self._counts = {}, {}

    @torch.inference_mode()
    def scores(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Cosine similarities float32[N, len(texts)] of boxes (float[N, 4] xyxy frame px)."""
        from effowt.vlm import object_window

        if len(boxes) == 0:
            return np.zeros((0, len(self.texts)), np.float32)
        crops = np.stack([object_window(frame, box, self.crop_px, self.fill) for box in boxes])
        x = torch.from_numpy(crops).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        features = F.normalize(self.vlm.encode_image((x - self.mean) / self.std).float(), dim=-1)
        return (features @ self.text_features.T).cpu().numpy()

    def update(self, frame: np.ndarray, tracks: Iterable[Track]) -> None:
        """Add this frame's scores of each track and set its ``label`` / ``label_score``
        (writes them on the given Track objects)."""
        tracks = list(tracks)
        scores = self.scores(frame, np.array([t.box for t in tracks], np.float32).reshape(-1, 4))
        for track, row in zip(tracks, scores):
            tid = track.track_id
            self._sums[tid] = self._sums.get(tid, 0.0) + row
            self._counts[tid] = self._counts.get(tid, 0) + 1
            index, score = self.label_of(tid)
            track.label, track.label_score = self.texts[index], score

    def label_of(self, track_id: int) -> tuple[int, float]:
        """(index into ``texts``, mean cosine) of a track's label so far."""
        mean = self._sums[track_id] / self._counts[track_id]
        index = int(mean.argmax())
        return index, round(float(mean[index]), 5)

    def final_labels(self) -> dict[int, tuple[int, float]]:
        """``{track_id: (text index, mean cosine)}`` over every frame seen in this video."""
        return {tid: self.label_of(tid) for tid in self._sums}


def text_tower_config(backbone: BackboneConfig) -> str:
    """The open_clip model config holding the backbone's text tower; ConfigError when
    the backbone has none that effowt can load."""
    import open_clip

    from effowt.backbones.cnn import CNN_TRUNKS
    from effowt.backbones.open_clip_backbone import register_package_configs

    library, _, name = backbone.name.partition(":")
    register_package_configs()
    model_cfg = open_clip.get_model_config(name) if library == "open_clip" else None
    trunk = (model_cfg or {}).get("vision_cfg", {}).get("timm_model_name")
    if not model_cfg or "text_cfg" not in model_cfg or (trunk and trunk not in CNN_TRUNKS):
        raise ConfigError(f"model.backbone.name={backbone.name} has no text tower that effowt can load: "
                          "--texts / --vocab need an open_clip CLIP backbone (e.g. open_clip:EffOWT-Tiny, "
                          "open_clip:ViT-B-16)")
    return name


def load_clip_model(backbone: BackboneConfig) -> tuple[torch.nn.Module, object]:
    """The whole CLIP model (image and text towers, float32, eval) that the backbone
    ``backbone`` is the vision tower of, weights from ``backbone.weights`` (the full
    CLIP checkpoint), and its tokenizer. ConfigError when the backbone has no text tower."""
    import open_clip

    from effowt.backbones.open_clip_backbone import create_open_clip_model
    from effowt.backbones.weights import load_weights_into, warn_random_init

    name = text_tower_config(backbone)
    vlm = create_open_clip_model(name)
    if backbone.weights:
        load_weights_into(vlm, backbone.weights, backbone=backbone.name)  # a file, or Hub weights by name
    else:
        warn_random_init(backbone.name)
    return vlm.float().eval(), open_clip.get_tokenizer(name)


def load_labeler(backbone: BackboneConfig, texts: list[str], prompt: str = DEFAULT_PROMPT,
                 device: str | torch.device = "cpu") -> TrackLabeler:
    """A :class:`TrackLabeler` on the CLIP model of :func:`load_clip_model` (boxes cut as
    that VLM was trained: enlarged to its window for the LiT VLM, native scale otherwise)."""
    from effowt.lit import LIT_VLM_NAME

    vlm, tokenizer = load_clip_model(backbone)
    return TrackLabeler(vlm, tokenizer, texts, prompt, device, fill=text_tower_config(backbone) == LIT_VLM_NAME)
