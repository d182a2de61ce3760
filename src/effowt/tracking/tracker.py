"""Frame-by-frame open-world tracker: EffOWT detections + online association.

``Tracker.update(frame)`` turns an RGB frame into a float tensor on the model's device
and runs the model on it: the model resizes it so its longest side is its
``image_size`` (aspect kept) and returns boxes in frame pixels (``[x1, y1, x2, y2]``,
see :class:`effowt.models.ImageTransform`), which :class:`OnlineAssociator` tracks.
``Tracker.update_batch(frames)`` runs consecutive frames through the model as one
batch (frames of one size together, one model call each), then associates them in
order: the same tracks as frame-by-frame updates, up to float rounding in the batched model.

Times accumulate in ``tracker.timings`` (seconds). By default nothing is
synchronised: ``preprocess`` (the frame to a tensor on the device), ``model`` (forward
and the copy of the detections to the host, which waits for the device) and
``association`` are read off the host clock. With ``time_stages=True`` (profiling)
forward hooks on the model's :meth:`~effowt.models.EffOWT.stage_modules` time its
transform (counted in ``preprocess``), backbone and neck as the forward runs
(:class:`effowt.timing.ModuleTimer`, synchronising CUDA around each), and ``heads``
is the rest of the model's time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

from effowt.boxes import clip_boxes
from effowt.config import PRECISION_NAMES, EffOWTConfig, TrackerConfig, apply_values, with_tracker_overrides
from effowt.distributed import resolve_device
from effowt.errors import DataError
from effowt.runs import create_model, run_config
from effowt.timing import ModuleTimer
from effowt.tracking.association import OnlineAssociator, Track
from effowt.tracking.labels import DEFAULT_PROMPT, TrackLabeler, check_prompt, check_texts, load_labeler

PRECISIONS = dict(zip(PRECISION_NAMES, (torch.float32, torch.bfloat16, torch.float16), strict=True))
T = TypeVar("T")


class Detector(Protocol):
    """What :class:`Tracker` needs of a model (EffOWT satisfies it).

    ``detector(images)`` takes float[B, 3, H, W] in [0, 1] at the frames' own size and
    returns one dict per image: ``boxes`` float[N, 4] ``[x1, y1, x2, y2]`` px of the
    frame, ``scores`` float[N] and ``embeddings`` float[N, E]. With ``time_stages=True``
    the model must also have ``stage_modules()`` (stage name -> module, see
    :meth:`effowt.models.EffOWT.stage_modules`); external detections need ``embed``
    (:meth:`effowt.models.EffOWT.embed`).
    """

    def __call__(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]: ...

    def eval(self) -> Any: ...


class Tracker:
    """Online tracker for one video at a time.

    Args:
        model: EffOWT or any :class:`Detector`; moved to ``device`` (when it has
            ``.to``) and put in eval mode. It resizes the frames itself (EffOWT: to
            ``model.transform.image_size``).
        cfg: association thresholds.
        device: torch device the model runs on.
        time_stages: time each stage of the model's forward by hooks (synchronising CUDA
            around each); otherwise the model's forward is timed as one ``model`` and
            nothing is synchronised.
        labeler: names every track with the best-matching text of a vocabulary
            (:class:`effowt.tracking.labels.TrackLabeler`; ``from_pretrained(texts=...)``
            builds it from the run's VLM); its time counts as ``labels``.
        precision: ``fp32``, ``bf16`` or ``fp16``: the precision of the frozen backbone
            and the neck (``model.set_inference_precision``); the heads stay float32.

    Attributes:
        timings: seconds accumulated per stage: ``preprocess`` (to tensor; with
            ``time_stages`` also the model's resize, normalise and pad), ``backbone``,
            ``neck``, ``heads`` (or ``model``)
            and ``association``; ``frames`` counts the frames. Cleared by
            :meth:`reset_timings`, not by :meth:`reset`.
    """

    def __init__(self, model: Detector, cfg: TrackerConfig,
                 device: str | torch.device = "cpu", time_stages: bool = False,
                 labeler: TrackLabeler | None = None, precision: str = "fp32") -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.device = resolve_device(device)
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
        if time_stages and not hasattr(model, "stage_modules"):
            raise ValueError("time_stages=True needs a model with stage_modules() (an EffOWT model)")
        self.time_stages = time_stages
        self.stage_timer = ModuleTimer(model.stage_modules().items(), self._sync) if time_stages else None
        self.associator = OnlineAssociator(cfg)
        self.labeler = labeler
        self.timings: dict[str, float] = {}
        self.reset_timings()

    @classmethod
    def from_pretrained(cls, run_dir: str | os.PathLike | None = None, device: str = "cpu",
                        time_stages: bool = False,
                        tracker_overrides: dict[str, Any] | None = None,
                        texts: list[str] | None = None, prompt: str = DEFAULT_PROMPT,
                        precision: str = "fp32", image_size: int | None = None,
                        config: EffOWTConfig | None = None) -> Tracker:
        """Load a trained run folder (``None``: the shipped default checkpoint) with
        :func:`effowt.runs.create_model`; the run's ``tracker`` config is used, with
        ``tracker_overrides`` (field -> value, e.g. ``{"max_dets": 100}``) applied and
        checked like any config override (``ConfigError`` naming the key).
        ``texts``: label tracks with this vocabulary through the run's VLM (its text
        tower; ConfigError for a backbone without one), each put in ``prompt``.
        ``image_size``: the model input's long side (default: the run's ``model.image_size``),
        built into the model (``model.image_size=N``); a CNN backbone takes any size,
        larger sizes find smaller objects.
        ``config``: the run's ``config.yaml`` already read (with its tracker overrides
        applied, as :func:`effowt.tracking.pipeline.track_source` does once per run), used
        instead of reading it again."""
        resolve_device(device)
        if texts is not None:  # before the model loads: a bare string is not 12 one-letter texts
            texts = check_texts(texts)
            check_prompt(prompt)
        config = with_tracker_overrides(run_config(run_dir) if config is None else config, tracker_overrides or {})
        if image_size is not None:
            config = apply_values(config, {"model.image_size": image_size, "data.image_size": image_size})
        model, cfg = create_model(run_dir, device=device, config=config)
        labeler = None if texts is None else load_labeler(cfg.model.backbone, texts, prompt, device)
        return cls(model, cfg.tracker, device=device, time_stages=time_stages, labeler=labeler, precision=precision)

    @property
    def image_size(self) -> int:
        """The model input's longest side, px (``model.transform.image_size``)."""
        return self.model.transform.image_size

    def reset(self) -> None:
        """Start a new video: forget every track (and its label scores); ids restart at 1."""
        self.associator.reset()
        if self.labeler is not None:
            self.labeler.reset()

    def reset_timings(self) -> None:
        stages = ("backbone", "neck", "heads") if self.time_stages else ("model",)
        self.timings = {"preprocess": 0.0, **{s: 0.0 for s in stages}, "association": 0.0,
                        **({"labels": 0.0} if self.labeler is not None else {}), "frames": 0}

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _timed(self, stage: str, fn: Callable[..., T], *args: Any) -> T:
        start = time.perf_counter()
        out = fn(*args)
        if self.time_stages:
            self._sync()
        self.timings[stage] += time.perf_counter() - start
        return out

    def _to_tensor(self, frames: list[np.ndarray]) -> torch.Tensor:
        """uint8[H, W, 3] RGB frames of one size -> float[B, 3, H, W] in [0, 1] on the device,
        contiguous (channels first in memory too: the layout the backbone's kernels see)."""
        images = torch.from_numpy(np.stack(frames)).to(self.device)
        return images.permute(0, 3, 1, 2).contiguous().float().div_(255.0)

    def _run_model(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` (a model call, its output copied to the host) timed as ``model``, or
        with ``time_stages`` split into the stages the hooks time and ``heads``, the rest."""
        if self.stage_timer is None:
            return self._timed("model", fn, *args)
        self.stage_timer.reset()
        with self.stage_timer:
            out = self._timed("heads", fn, *args)
        for stage, seconds in self.stage_timer.seconds.items():
            self.timings[stage] += seconds
            self.timings["heads"] -= seconds
        return out

    @torch.inference_mode()
    def detect_batch(self, frames: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Run the model on frames (uint8[H, W, 3] RGB), consecutive frames of one size as
        one batch (one model call): per frame (boxes float32[N, 4] xyxy frame px, scores
        float32[N], embeddings float32[N, E])."""
        for frame in frames:
            _check_frame(frame)
        out = []
        for group in _runs_of_equal_shape(frames):
            images = self._timed("preprocess", self._to_tensor, group)
            for det in self._run_model(self._detections, images):
                out.append((det["boxes"].float().numpy().reshape(-1, 4), det["scores"].float().numpy().reshape(-1),
                            det["embeddings"].float().numpy()))
        return out

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run the model on one frame: (boxes float32[N, 4] xyxy frame px, scores
        float32[N], embeddings float32[N, E])."""
        return self.detect_batch([frame])[0]

    @torch.inference_mode()
    def embed(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Appearance embeddings float32[N, E] of given boxes (float[N, 4] xyxy frame px) in
        one frame: ``model.embed`` (EffOWT: its pyramid, then its ReID head, RoIAlign on the
        same level as for its own detections; the backbone runs once)."""
        _check_frame(frame)
        if not hasattr(self.model, "embed"):
            raise ValueError("external detections need a model with embed (an EffOWT model)")
        image = self._timed("preprocess", self._to_tensor, [frame])
        rois = torch.as_tensor(boxes, dtype=torch.float32, device=self.device).reshape(-1, 4)
        return self._run_model(self._embeddings, image, rois).numpy()

    def _detections(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """The model's detections of a batch, copied to the host (this waits for the device)."""
        return [{k: v.detach().cpu() for k, v in det.items()} for det in self.model(images)]

    def _embeddings(self, image: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """The model's embeddings of boxes in one image, float32 on the host."""
        return self.model.embed(image, [rois])[0].detach().float().cpu()

    def update(self, frame: np.ndarray, detections: Detections | None = None,
               keep_embeddings: bool = False) -> list[Track]:
        """Track one frame (uint8[H, W, 3] RGB) of the current video.

        Args:
            frame: the frame.
            detections: boxes from another detector, ``(boxes float[N, 4] [x1, y1, x2, y2]
                frame px, scores float[N])`` or ``(boxes, scores, category_ids int[N])``;
                boxes are clipped to the frame and those left with no area dropped, a
                backwards box is a DataError, N may be 0. effowt then computes only their
                appearance embeddings (:meth:`embed`) and associates them; the thresholds
                of ``cfg`` (``det_thresh``, ``nms_thresh``, ``max_dets``, ``init_thresh``, ...)
                apply to them as to its own. None: the model's own detections.
            keep_embeddings: attach each detection's embedding to its Track.

        Returns:
            The tracks matched or born in this frame (``Track.box`` xyxy in frame
            pixels; ``Track.category_id`` the detection's category when given;
            ``Track.label`` / ``label_score`` the track's label so far with a labeler),
            at most ``cfg.max_dets``.

        Reads and advances ``self.associator`` (track state) and ``self.labeler`` (label
        scores per track) by one frame; adds the stage seconds to ``self.timings``.
        """
        if detections is None:
            return self.update_batch([frame], keep_embeddings)[0]
        _check_frame(frame)
        boxes, scores, category_ids = check_detections(detections, frame.shape[:2])
        return self._associate(frame, boxes, scores, self.embed(frame, boxes), keep_embeddings, category_ids)

    def update_batch(self, frames: list[np.ndarray], keep_embeddings: bool = False) -> list[list[Track]]:
        """Track consecutive frames of the current video with the model's own detections:
        the model sees them as one batch (:meth:`detect_batch`), association (and
        labelling) runs frame by frame in order. Returns one list per frame, as
        :meth:`update` would."""
        frames = list(frames)
        return [self._associate(frame, boxes, scores, embeddings, keep_embeddings)
                for frame, (boxes, scores, embeddings) in zip(frames, self.detect_batch(frames))]

    def _associate(self, frame: np.ndarray, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray,
                   keep_embeddings: bool, category_ids: np.ndarray | None = None) -> list[Track]:
        """One frame's detections through the associator (and the labeler): its tracks."""
        tracks = self._timed("association", self.associator.step, boxes, scores, embeddings,
                             keep_embeddings, category_ids)
        if self.labeler is not None:
            self._timed("labels", self.labeler.update, frame, tracks)
        self.timings["frames"] += 1
        return tracks


def _runs_of_equal_shape(frames: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Consecutive frames grouped while their shape stays the same."""
    runs: list[list[np.ndarray]] = []
    for frame in frames:
        if runs and runs[-1][0].shape == frame.shape:
            runs[-1].append(frame)
        else:
            runs.append([frame])
    return runs


Detections = tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]


def check_detections(detections: Detections, frame_hw: tuple[int, int]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """External detections as (boxes float32[N, 4] clipped to the frame, scores float32[N],
    category ids int64[N] or None); boxes with no area inside the frame (zero-size, or
    wholly outside it) are dropped. ValueError (DataError for a backwards box,
    ``x2 < x1`` or ``y2 < y1``) saying what is wrong otherwise."""
    if not isinstance(detections, (tuple, list)) or len(detections) not in (2, 3):
        raise ValueError("detections must be (boxes [N, 4], scores [N]) or (boxes, scores, category_ids [N])")
    boxes = np.asarray(detections[0], dtype=np.float32)
    scores = np.asarray(detections[1], dtype=np.float32).reshape(-1)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) != len(scores):
        raise ValueError(f"detections: boxes must be [N, 4] and scores [N], got {list(boxes.shape)} "
                         f"and {list(scores.shape)}")
    if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
        raise ValueError("detections: boxes and scores must be finite")
    category_ids = None
    if len(detections) == 3 and detections[2] is not None:
        category_ids = np.asarray(detections[2], dtype=np.int64).reshape(-1)
        if len(category_ids) != len(boxes):
            raise ValueError(f"detections: {len(category_ids)} category ids for {len(boxes)} boxes")
    backwards = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
    if len(backwards):
        raise DataError(f"detections: box {int(backwards[0])} {boxes[backwards[0]].tolist()} is backwards; "
                        "boxes are [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2")
    height, width = frame_hw
    boxes = clip_boxes(boxes, height, width)
    inside = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # no area in the frame: nothing to track
    if not inside.all():
        boxes, scores = boxes[inside], scores[inside]
        category_ids = None if category_ids is None else category_ids[inside]
    return boxes, scores, category_ids


def _check_frame(frame: Any) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 \
            or frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        desc = (f"{frame.dtype}{list(frame.shape)}" if isinstance(frame, np.ndarray)
                else type(frame).__name__)
        raise DataError(f"a frame must be a uint8 [H, W, 3] RGB array, got {desc}")
