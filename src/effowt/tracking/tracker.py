"""Frame-by-frame open-world tracker: EffOWT detections + online association.

``Tracker.update(frame)`` resizes an RGB frame so its longest side is
``image_size`` (aspect kept), runs the model, maps the boxes back to frame pixels
(``[x1, y1, x2, y2]``) and hands them to :class:`OnlineAssociator`.
``Tracker.update_batch(frames)`` runs consecutive frames through the model as one
batch (frames of one size together), then associates them in order: the same
tracks as frame-by-frame updates, up to float rounding in the batched model.

Times accumulate in ``tracker.timings`` (seconds). By default nothing is
synchronised: ``preprocess``, ``model`` (forward and the copy of the detections
to the host, which waits for the device) and ``association`` are read off the
host clock. With ``time_stages=True`` (profiling) the model runs through its
stage methods (``preprocess``, ``backbone_features``, ``neck``, ``heads``: exactly
what its forward composes) and CUDA is synchronised after each, so each stage is
timed on its own.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from effowt.config import TrackerConfig
from effowt.errors import ConfigError, DataError, WeightsError
from effowt.tracking.association import OnlineAssociator, Track

STAGE_METHODS = ("preprocess", "backbone_features", "neck", "heads")
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def default_run_dir() -> Path:
    """The shipped default checkpoint's run folder (``effowt/assets/effowt-mini``)."""
    path = Path(str(resources.files("effowt") / "assets" / "effowt-mini"))
    if not (path / "config.yaml").is_file():
        raise WeightsError(f"{path}: the default checkpoint is not installed with this copy of "
                           f"effowt; pass a run folder (--weights RUN) trained with `effowt train`")
    return path


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


class Tracker:
    """Online tracker for one video at a time.

    Args:
        model: EffOWT (or any module with ``model(images) -> list[dict(boxes, scores,
            embeddings)]`` and ``.eval()``); moved to ``device`` and put in eval mode.
        cfg: association thresholds.
        image_size: the longest side frames are resized to before the model.
        device: torch device the model runs on.
        time_stages: run the model stage by stage and time each stage (synchronising
            CUDA between stages); otherwise the model's forward is timed as one ``model``
            and nothing is synchronised.
        precision: ``fp32``, ``bf16`` or ``fp16``: the precision of the frozen backbone
            and the neck (``model.set_inference_precision``); the heads stay float32.

    Attributes:
        timings: seconds accumulated per stage: ``preprocess`` (resize, to tensor and
            the model's normalise/pad), ``backbone``, ``neck``, ``heads`` (or ``model``)
            and ``association``; ``frames`` counts the frames. Cleared by
            :meth:`reset_timings`, not by :meth:`reset`.
    """

    def __init__(self, model: Any, cfg: TrackerConfig, image_size: int,
                 device: str | torch.device = "cpu", time_stages: bool = False,
                 precision: str = "fp32") -> None:
        if image_size < 32:
            raise ValueError(f"image_size must be >= 32, got {image_size}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.device = check_device(device)
        if hasattr(model, "to"):
            model = model.to(self.device)
        if precision != "fp32":
            if not hasattr(model, "set_inference_precision"):
                raise ValueError(f"precision={precision} needs a model with set_inference_precision")
            model.set_inference_precision(PRECISIONS[precision])
        self.precision = precision
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
                        tracker_overrides: dict[str, Any] | None = None,
                        precision: str = "fp32") -> Tracker:
        """Load a trained run folder (``None``: the shipped default checkpoint) with
        ``effowt.training.checkpoint.load_run``; the run's ``tracker`` config is used,
        with ``tracker_overrides`` (field -> value, e.g. ``{"max_dets": 100}``) applied."""
        from effowt.training.checkpoint import load_run

        check_device(device)
        unknown = sorted(set(tracker_overrides or {}) - set(TrackerConfig.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown tracker config field(s): {', '.join(unknown)}")
        model, run_cfg = load_run(default_run_dir() if run_dir is None else run_dir, device=device)
        cfg = dataclasses.replace(run_cfg.tracker, **(tracker_overrides or {}))
        return cls(model, cfg, run_cfg.model.image_size, device=device, time_stages=time_stages,
                   precision=precision)

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
        if self.time_stages and self.device.type == "cuda":
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

    def _run_model(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Detections of a batch ``float[B, 3, h, w]`` as host tensors (stage by stage
        when timing stages)."""
        if self.time_stages:
            x = self._timed("preprocess", self.model.preprocess, images)
            taps = self._timed("backbone", self.model.backbone_features, x)
            pyramid = self._timed("neck", self.model.neck, x, taps)
            dets = self._timed("heads", self.model.heads, pyramid, [tuple(images.shape[-2:])] * len(images))
        else:
            dets = self._timed("model", self.model, images)
        return self._timed("heads" if self.time_stages else "model", _to_host, dets)

    @torch.inference_mode()
    def detect_batch(self, frames: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Run the model on frames (uint8[H, W, 3] RGB), consecutive frames of one size as
        one batch: per frame (boxes float32[N, 4] xyxy frame px, scores float32[N],
        embeddings float32[N, E])."""
        for frame in frames:
            _check_frame(frame)
        out = []
        for group in _runs_of_equal_shape(frames):
            inputs = [self._timed("preprocess", self._to_input, frame) for frame in group]
            dets = self._run_model(torch.cat([image for image, _ in inputs]))
            height, width = group[0].shape[:2]
            for det, (_, scale) in zip(dets, inputs):
                boxes = det["boxes"].float().numpy().reshape(-1, 4) / scale
                boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
                boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
                out.append((boxes.astype(np.float32), det["scores"].float().numpy().reshape(-1),
                            det["embeddings"].float().numpy()))
        return out

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run the model on one frame: (boxes float32[N, 4] xyxy frame px, scores
        float32[N], embeddings float32[N, E])."""
        return self.detect_batch([frame])[0]

    def update(self, frame: np.ndarray, keep_embeddings: bool = False) -> list[Track]:
        """Track one frame (uint8[H, W, 3] RGB) of the current video.

        Returns the tracks matched or born in this frame (``Track.box`` xyxy in frame
        pixels), at most ``cfg.max_dets``; with ``keep_embeddings`` each carries its
        detection's embedding.
        """
        return self.update_batch([frame], keep_embeddings)[0]

    def update_batch(self, frames: list[np.ndarray], keep_embeddings: bool = False) -> list[list[Track]]:
        """Track consecutive frames of the current video: the model sees them as one
        batch (:meth:`detect_batch`), association runs frame by frame in order. Returns
        one list per frame, as :meth:`update` would."""
        out = []
        for boxes, scores, embeddings in self.detect_batch(list(frames)):
            out.append(self._timed("association", self.associator.step, boxes, scores, embeddings,
                                   keep_embeddings))
            self.timings["frames"] += 1
        return out


def _to_host(dets: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    """Detections copied to the host (this waits for the device)."""
    return [{k: v.detach().cpu() for k, v in det.items()} for det in dets]


def _runs_of_equal_shape(frames: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Consecutive frames grouped while their shape stays the same."""
    runs: list[list[np.ndarray]] = []
    for frame in frames:
        if runs and runs[-1][0].shape == frame.shape:
            runs[-1].append(frame)
        else:
            runs.append([frame])
    return runs


def _check_frame(frame: Any) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 \
            or frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        desc = (f"{frame.dtype}{list(frame.shape)}" if isinstance(frame, np.ndarray)
                else type(frame).__name__)
        raise DataError(f"a frame must be a uint8 [H, W, 3] RGB array, got {desc}")
