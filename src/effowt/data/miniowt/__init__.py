"""MiniOWT: a small, deterministic, synthetic open-world tracking world.

Fifty object categories (10 shapes x 5 surface patterns, each with a
characteristic colour) drawn on a muted, textured background with clutter
(lines and noise blobs that are not objects). Half of the categories are
*known* (annotated for training), half *unknown* (seen only at evaluation).
Category ids come from the TAO-OW id sets of TrackEval's ``TAO_OW`` dataset, so
the official evaluator scores MiniOWT with ``SUBSET`` = known / unknown
unchanged.

Splits written by :func:`generate_miniowt` under ``out_dir`` (the layout is
:class:`MiniOWTPaths`):

- ``train/annotations.json`` + ``train/images/*.png`` (COCO): still images,
  only known categories annotated; unknown objects appear unannotated, as
  unlabelled classes do in real COCO.
- ``pretrain/annotations.json`` + ``pretrain/images/*.png`` (COCO): fewer,
  larger, less occluded objects of ALL categories, meant for crops that train
  the tiny CLIP-style VLM on ``CATEGORIES[i].caption``.
- ``val/annotations.json`` (TAO format, all categories annotated) +
  ``val/frames/<video>/<000000>.png`` + ``val/videos/<video>.mp4``.

The videos show moving objects (smooth random velocity), scale changes, mutual
occlusion (a fixed depth order per object), objects entering and leaving the
frame, look-alike instances of one category (same shape and pattern, slightly
different colour) and camera motion (the background shifts).

Boxes are the *visible part* of an object: the tight box of its pixels left
after occlusion by nearer objects and clipping to the image
(``[x, y, w, h]`` in the json, ``[x1, y1, x2, y2]`` inside the library). An
object is annotated in a frame only when at least ``MIN_VISIBLE_FRACTION`` of
its own (unoccluded, unclipped) pixels and at least ``MIN_VISIBLE_PIXELS``
pixels are visible; a fully hidden object gets no annotation that frame and
keeps its track id when it reappears.

Videos are H.264 in RGB (``libx264rgb``, ``crf=0``: lossless, single-threaded,
bit-exact flags), so decoding ``val/videos/<video>.mp4`` gives exactly the
PNG frames. Every random draw derives from :func:`split_rng` ``(seed, split,
index)``, PNGs carry no metadata and json is written with sorted keys:
the same seed gives byte-identical files.

Modules: ``catalogue`` (categories and ids), ``render`` (drawing images and
visible boxes), ``motion`` (simulating videos), ``video`` (lossless mp4),
``splits`` (writing the COCO / TAO splits), ``layout`` (the folder layout),
``generator`` (:func:`generate_miniowt`).
"""

from effowt.data.miniowt.catalogue import (
    CATEGORIES,
    CATEGORY_BY_ID,
    COLOURS,
    KNOWN_IDS,
    PATTERNS,
    SHAPES,
    UNKNOWN_IDS,
    Category,
)
from effowt.data.miniowt.drawing import MIN_VISIBLE_FRACTION, MIN_VISIBLE_PIXELS, render_still
from effowt.data.miniowt.generator import generate_miniowt
from effowt.data.miniowt.layout import SOURCE_MARK, MiniOWTPaths, is_miniowt_source
from effowt.data.miniowt.motion import VideoGT, simulate_video
from effowt.data.miniowt.splits import split_rng
from effowt.data.miniowt.video import VIDEO_FPS, write_video

__all__ = [
    "CATEGORIES", "CATEGORY_BY_ID", "COLOURS", "KNOWN_IDS", "MIN_VISIBLE_FRACTION", "MIN_VISIBLE_PIXELS",
    "PATTERNS", "SHAPES", "SOURCE_MARK", "UNKNOWN_IDS", "VIDEO_FPS", "Category", "MiniOWTPaths", "VideoGT",
    "generate_miniowt", "is_miniowt_source", "render_still", "simulate_video", "split_rng", "write_video",
]
