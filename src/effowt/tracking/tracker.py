"""Frame-by-frame open-world tracker: EffOWT detections + online association.

``Tracker.update(frame)`` resizes an RGB frame so its longest side is
``image_size`` (aspect kept), runs the model, maps the boxes back to frame pixels
(``[x1, y1, x2, y2]``) and hands them to :class:`OnlineAssociator`. Stage times
accumulate in ``tracker.timings`` (seconds); with ``time_stages=True`` the model
runs through its stage methods (``preprocess``, ``backbone_features``, ``neck``,
``heads``: exactly what its forward composes) so each is timed separately.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from effowt.config import TrackerConfig
from effowt.errors import ConfigError, DataError
from effowt.runs import create_model
from effowt.tracking.association import OnlineAssociator, Track

STAGE_METHODS = ("preprocess", "backbone_features", "neck", "heads")


def check_device(device: str | torch.device) -> torch.device:
    """The torch device ``device`` names (``cpu``, ``cuda``, ``cuda:N``, ``mps``), checked
    to exist on this machine; ConfigError saying what is wrong otherwise."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device {str(device)!r} is not a torch device (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {str(device)!r}: CUDA is not available on this machine; "
                              "use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {str(device)!r}: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"device {str(device)!r}: MPS is not available on this machine; "
                              "use --device cpu")
    elif dev.type != "cpu":
        raise ConfigError(f"device {str(device)!r} is not supported (use cpu, cuda or cuda:N)")
    return dev


class Detector(Protocol):
    """What :class:`Tracker` needs of a model (EffOWT satisfies it).

    ``detector(images)`` takes float[B, 3, H, W] in [0, 1] and returns one dict per
    image: ``boxes`` float[N, 4] ``[x1, y1, x2, y2]`` px, ``scores`` float[N] and
    ``embeddings`` float[N, E]. With ``time_stages=True`` the model must also have
    the stage methods of :data:`STAGE_METHODS`.
    """

    def __call__(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]: ...

    def eval(self) -> Any: ...


class Tracker:
    """Online tracker for one video at a time.

    Args:
        model: EffOWT or any :class:`Detector`; moved to ``device`` (when it has
            ``.to``) and put in eval mode.
        cfg: association thresholds.
        image_size: the longest side frames are resized to before the model.
        device: torch device the model runs on.
        time_stages: run the model stage by stage and time each stage (synchronising
            CUDA between stages); otherwise the model's forward is timed as one ``model``.

    Attributes:
        timings: seconds accumulated per stage: ``preprocess`` (resize, to tensor and
            the model's normalise/pad), ``backbone``, ``neck``, ``heads`` (or ``model``)
            and ``association``; ``frames`` counts the frames. Cleared by
            :meth:`reset_timings`, not by :meth:`reset`.
    """

    def __init__(self, model: Detector, cfg: TrackerConfig, image_size: int,
                 device: str | torch.device = "cpu", time_stages: bool = False) -> None:
        if image_size < 32:
            raise ValueError(f"image_size must be >= 32, got {image_size}")
        self.device = check_device(device)
        if hasattr(model, "to"):
            model = model.to(self.device)
        model.eval()
        self.model = model
        self.cfg = cfg
        self.image_size = int(image_size)
        if time_stages and not all(hasattr(model, m) for m in STAGE_METHODS):
            raise ValueError(f"time_stages=True needs a model with {', '.join(STAGE_METHODS)}")
        self.time_stages = time_stages
        self.associator = OnlineAssociator(cfg)
        self.timings: dict[str, float] = {}
        self.reset_timings()

    @classmethod
    def from_pretrained(cls, run_dir: str | os.PathLike | None = None, device: str = "cpu",
                        time_stages: bool = False,
                        tracker_overrides: dict[str, Any] | None = None) -> Tracker:
        """Load a trained run folder (``None``: the shipped default checkpoint) with
        :func:`effowt.runs.create_model`; the run's ``tracker`` config is used, with
        ``tracker_overrides`` (field -> value, e.g. ``{"max_dets": 100}``) applied and
        checked like any config override (``ConfigError`` naming the key)."""
        check_device(device)
        overrides = [f"tracker.{k}={json.dumps(v)}" for k, v in (tracker_overrides or {}).items()]
        model, cfg = create_model(run_dir, device=device, overrides=overrides)
        return cls(model, cfg.tracker, cfg.model.image_size, device=device, time_stages=time_stages)

    def reset(self) -> None:
        """Start a new video: forget every track; ids restart at 1."""
        self.associator.reset()

    def reset_timings(self) -> None:
        stages = ("backbone", "neck", "heads") if self.time_stages else ("model",)
        self.timings = {"preprocess": 0.0, **{s: 0.0 for s in stages}, "association": 0.0,
                        "frames": 0}

    def _timed(self, stage: str, fn: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        out = fn(*args)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.timings[stage] += time.perf_counter() - start
        return out

    def _to_input(self, frame: np.ndarray) -> tuple[torch.Tensor, float]:
        """uint8[H, W, 3] RGB -> (float[1, 3, h, w] in [0, 1] on device, scale h/H)."""
        height, width = frame.shape[:2]
        scale = self.image_size / max(height, width)
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        image = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device)
        image = image.permute(2, 0, 1)[None].float().div_(255.0)
        if size != (height, width):
            image = F.interpolate(image, size=size, mode="bilinear", align_corners=False,
                                  antialias=True).clamp_(0.0, 1.0)
        return image, scale

    @torch.inference_mode()
    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run the model on one frame: (boxes float32[N, 4] xyxy frame px, scores
        float32[N], embeddings float32[N, E])."""
        _check_frame(frame)
        image, scale = self._timed("preprocess", self._to_input, frame)
        if self.time_stages:
            x = self._timed("preprocess", self.model.preprocess, image)
            taps = self._timed("backbone", self.model.backbone_features, x)
            pyramid = self._timed("neck", self.model.neck, x, taps)
            dets = self._timed("heads", self.model.heads, pyramid, [tuple(image.shape[-2:])])
        else:
            dets = self._timed("model", self.model, image)
        det = dets[0]
        height, width = frame.shape[:2]
        boxes = det["boxes"].detach().float().cpu().numpy().reshape(-1, 4) / scale
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
        scores = det["scores"].detach().float().cpu().numpy().reshape(-1)
        embeddings = det["embeddings"].detach().float().cpu().numpy()
        return boxes.astype(np.float32), scores, embeddings

    def update(self, frame: np.ndarray, keep_embeddings: bool = False) -> list[Track]:
        """Track one frame (uint8[H, W, 3] RGB) of the current video.

        Returns the tracks matched or born in this frame (``Track.box`` xyxy in frame
        pixels), at most ``cfg.max_dets``; with ``keep_embeddings`` each carries its
        detection's embedding.
        """
        boxes, scores, embeddings = self.detect(frame)
        tracks = self._timed("association", self.associator.step, boxes, scores, embeddings,
                             keep_embeddings)
        self.timings["frames"] += 1
        return tracks


def _check_frame(frame: Any) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 \
            or frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        desc = (f"{frame.dtype}{list(frame.shape)}" if isinstance(frame, np.ndarray)
                else type(frame).__name__)
        raise DataError(f"a frame must be a uint8 [H, W, 3] RGB array, got {desc}")
