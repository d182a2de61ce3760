"""Model-free online association: detections in, track ids out.

:class:`OnlineAssociator` holds the per-video track state and implements the
whole track lifecycle on plain arrays, so it is unit-testable without a model.
Boxes are ``[x1, y1, x2, y2]`` float pixels of the frame; embeddings are
L2-normalised rows.

One step (``OnlineAssociator.step``), all thresholds from :class:`TrackerConfig`:

1. drop detections with ``score < det_thresh``; class-agnostic NMS at
   ``nms_thresh``; keep the ``max_dets`` highest scores (so at most ``max_dets``
   tracks are reported per frame);
2. :func:`associate` the remaining detections with every live and lost track:
   bi-softmax appearance similarity (quasi-dense tracking) against the track's
   momentum embedding, gated by IoU with the track's constant-velocity predicted
   box (``iou_gate``, waived for lost tracks) and by raw cosine (``min_cosine``),
   Hungarian matching, pairs below ``match_thresh`` rejected;
3. matched tracks take the detection's box and score, blend its embedding in
   (``momentum``) and update their velocity; unmatched detections with
   ``score >= init_thresh`` start new tracks (ids 1, 2, ... per instance);
4. unmatched tracks become lost; a track is deleted once it has missed more than
   ``max_lost`` consecutive frames, so the state never grows with video length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torchvision
from scipy.optimize import linear_sum_assignment

from effowt.boxes import box_iou as box_iou  # re-exported: the association gates on it
from effowt.config import TrackerConfig


@dataclass
class Track:
    """One tracked object in one frame (what ``Tracker.update`` returns).

    ``box`` is ``[x1, y1, x2, y2]`` in frame pixels (float32[4]); ``score`` the
    detection score; ``embedding`` the detection's appearance embedding (float32[E])
    or None; ``category_id`` the external detection's category (None for effowt's own,
    class-agnostic detections); ``label`` / ``label_score`` the track's open-vocabulary
    label and its mean cosine score so far (None without a vocabulary, see
    :mod:`effowt.tracking.labels`).
    """

    track_id: int
    box: np.ndarray
    score: float
    embedding: np.ndarray | None = None
    category_id: int | None = None
    label: str | None = None
    label_score: float | None = None


@dataclass
class TrackState:
    """Memory of one live or lost track.

    ``box`` is the last matched box, ``velocity`` its per-frame displacement
    (float32[4], xyxy), ``embedding`` the momentum-averaged, re-normalised
    appearance, ``missed`` the number of consecutive unmatched frames (0 = live,
    > 0 = lost), ``hits`` the number of matched frames.
    """

    track_id: int
    box: np.ndarray
    embedding: np.ndarray
    score: float
    velocity: np.ndarray
    missed: int = 0
    hits: int = 1

    @property
    def lost(self) -> bool:
        return self.missed > 0

    def predicted_box(self) -> np.ndarray:
        """Constant-velocity prediction of the box in the coming frame."""
        return self.box + self.velocity * (self.missed + 1)


def bisoftmax(det_emb: np.ndarray, track_emb: np.ndarray, temperature: float) -> np.ndarray:
    """Bi-directional softmax similarity float32[N, M] (QDTrack).

    ``(softmax over tracks + softmax over detections) / 2`` of the embedding dot
    products divided by ``temperature`` (our embeddings are L2-normalised, so the
    dot products need the temperature the ReID loss was trained with).
    """
    return bisoftmax_of_dots(det_emb @ track_emb.T, temperature)


def bisoftmax_of_dots(dots: np.ndarray, temperature: float) -> np.ndarray:
    """:func:`bisoftmax` from the embedding dot products ``float32[N, M]`` (computed once
    by :func:`associate`, which also gates on them as cosines)."""
    logits = dots.astype(np.float64) / temperature
    d2t = np.exp(logits - logits.max(axis=1, keepdims=True))
    d2t /= d2t.sum(axis=1, keepdims=True)
    t2d = np.exp(logits - logits.max(axis=0, keepdims=True))
    t2d /= t2d.sum(axis=0, keepdims=True)
    return ((d2t + t2d) / 2).astype(np.float32)


def associate(tracks: list[TrackState], boxes: np.ndarray, embeddings: np.ndarray,
              cfg: TrackerConfig) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Match detections to tracks.

    Args:
        tracks: live and lost tracks.
        boxes: float[N, 4] xyxy detections; embeddings: float[N, E] L2-normalised.
        cfg: ``temperature``, ``match_thresh``, ``min_cosine``, ``iou_gate``, ``motion``.

    Returns:
        ``(matches, unmatched)``: list of (track index, detection index) pairs and
        int64[K] indices of the detections left unmatched. A pair can match only if
        its bi-softmax similarity is >= ``match_thresh``, its cosine similarity is
        >= ``min_cosine`` and, unless the track is lost, the IoU between the
        detection and the track's (predicted) box is >= ``iou_gate``. Among the
        allowed pairs, Hungarian matching maximises the total similarity.
    """
    n = len(boxes)
    if n == 0 or not tracks:
        return [], np.arange(n, dtype=np.int64)
    track_emb = np.stack([t.embedding for t in tracks])
    cosine = embeddings @ track_emb.T
    similarity = bisoftmax_of_dots(cosine, cfg.temperature)
    allowed = (similarity >= cfg.match_thresh) & (cosine >= cfg.min_cosine)
    if cfg.iou_gate > 0:  # IoU >= 0 holds for every pair: without a gate there is nothing to compute
        allowed &= (box_iou(boxes, reference_boxes(tracks, cfg.motion)) >= cfg.iou_gate) \
            | np.array([t.lost for t in tracks])[None, :]
    if not allowed.any():
        return [], np.arange(n, dtype=np.int64)
    cost = np.where(allowed, -similarity, 1.0)
    det_idx, trk_idx = linear_sum_assignment(cost)
    keep = allowed[det_idx, trk_idx]
    matches = [(int(t), int(d)) for d, t in zip(det_idx[keep], trk_idx[keep])]
    matched = np.zeros(n, dtype=bool)
    matched[det_idx[keep]] = True
    return matches, np.flatnonzero(~matched)


def reference_boxes(tracks: list[TrackState], motion: bool) -> np.ndarray:
    """float32[M, 4]: each track's box to gate against, its constant-velocity prediction
    (:meth:`TrackState.predicted_box`, computed for all tracks at once) with ``motion``,
    else its last box."""
    boxes = np.stack([t.box for t in tracks])
    if not motion:
        return boxes
    steps = np.array([t.missed + 1 for t in tracks], dtype=np.float32)[:, None]
    return boxes + np.stack([t.velocity for t in tracks]) * steps


def filter_detections(boxes: np.ndarray, scores: np.ndarray, cfg: TrackerConfig) -> np.ndarray:
    """Indices of the detections to track, best score first: ``score >= det_thresh``,
    class-agnostic NMS at ``nms_thresh``, at most ``max_dets``."""
    keep = np.flatnonzero(scores >= cfg.det_thresh)
    if keep.size == 0:
        return keep.astype(np.int64)
    kept = torchvision.ops.nms(torch.from_numpy(boxes[keep]).float(),
                               torch.from_numpy(scores[keep]).float(), cfg.nms_thresh)
    return keep[kept.numpy()][: cfg.max_dets].astype(np.int64)


class OnlineAssociator:
    """Track lifecycle for one video at a time (see the module docstring).

    Reads ``cfg`` (a :class:`TrackerConfig`); writes ``self.tracks`` (live and lost
    :class:`TrackState`) and ``self.next_id``. Ids belong to this instance and start
    at 1; :meth:`reset` forgets every track and restarts ids for a new video.
    """

    def __init__(self, cfg: TrackerConfig) -> None:
        self.cfg = cfg
        self.tracks: list[TrackState] = []
        self.next_id = 1

    def reset(self) -> None:
        """Forget all tracks; the next track gets id 1."""
        self.tracks = []
        self.next_id = 1

    def step(self, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray,
             keep_embeddings: bool = False, category_ids: np.ndarray | None = None) -> list[Track]:
        """Advance one frame.

        Args:
            boxes: float[N, 4] xyxy frame pixels; scores: float[N];
            embeddings: float[N, E] L2-normalised.
            keep_embeddings: attach each detection's embedding to the returned Track.
            category_ids: int[N] categories of external detections, copied to the
                returned Track of each (``Track.category_id``); None: class-agnostic.

        Returns:
            The tracks matched or born in this frame, highest score first.
        """
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2:
            embeddings = embeddings.reshape(len(boxes), -1)
        if not (len(boxes) == len(scores) == len(embeddings)):
            raise ValueError(f"boxes ({len(boxes)}), scores ({len(scores)}) and embeddings "
                             f"({len(embeddings)}) must have the same length")
        if category_ids is not None and len(category_ids) != len(boxes):
            raise ValueError(f"category_ids ({len(category_ids)}) and boxes ({len(boxes)}) must have "
                             "the same length")
        order = filter_detections(boxes, scores, self.cfg)
        boxes, scores, embeddings = boxes[order], scores[order], embeddings[order]
        categories = None if category_ids is None else np.asarray(category_ids, dtype=np.int64)[order]

        matches, unmatched = associate(self.tracks, boxes, embeddings, self.cfg)
        out: list[tuple[int, Track]] = []
        matched_tracks = set()
        m = self.cfg.momentum
        for t_idx, d_idx in matches:
            track = self.tracks[t_idx]
            matched_tracks.add(t_idx)
            track.velocity = (boxes[d_idx] - track.box) / (track.missed + 1)
            track.box = boxes[d_idx].copy()
            track.score = float(scores[d_idx])
            emb = (1 - m) * track.embedding + m * embeddings[d_idx]
            track.embedding = emb / max(float(np.linalg.norm(emb)), 1e-12)
            track.missed = 0
            track.hits += 1
            out.append((d_idx, self._output(track.track_id, d_idx, boxes, scores, embeddings,
                                            keep_embeddings, categories)))
        survivors = []
        for t_idx, track in enumerate(self.tracks):
            if t_idx not in matched_tracks:
                track.missed += 1
                if track.missed > self.cfg.max_lost:
                    continue
            survivors.append(track)
        self.tracks = survivors
        for d_idx in unmatched:
            if scores[d_idx] < self.cfg.init_thresh:
                continue
            track_id = self.next_id
            self.next_id += 1
            self.tracks.append(TrackState(track_id=track_id, box=boxes[d_idx].copy(),
                                          embedding=embeddings[d_idx].copy(),
                                          score=float(scores[d_idx]),
                                          velocity=np.zeros(4, dtype=np.float32)))
            out.append((int(d_idx), self._output(track_id, d_idx, boxes, scores, embeddings,
                                                 keep_embeddings, categories)))
        return [track for _, track in sorted(out, key=lambda item: item[0])]

    @staticmethod
    def _output(track_id: int, d_idx: int, boxes: np.ndarray, scores: np.ndarray,
                embeddings: np.ndarray, keep_embeddings: bool, categories: np.ndarray | None) -> Track:
        return Track(track_id=track_id, box=boxes[d_idx].copy(), score=float(scores[d_idx]),
                     embedding=embeddings[d_idx].copy() if keep_embeddings else None,
                     category_id=None if categories is None else int(categories[d_idx]))
