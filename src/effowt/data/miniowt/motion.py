"""Simulating a MiniOWT video: object trajectories (wandering or crossing),
scale changes, occlusion by depth order, camera pan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from effowt.data.miniowt.drawing import MINIOWT_SCENE, Scene, Sprite


@dataclass
class _Mover:
    """An object's trajectory in world (background) coordinates."""

    key: int
    category: Any
    look: Any
    size: float
    aspect: float
    depth: float
    start: int
    pos: np.ndarray
    vel: np.ndarray
    wander: bool
    scale_amp: float
    scale_freq: float
    scale_phase: float


@dataclass
class VideoGT:
    """A simulated video: frames and, per frame, ``{object key: [x1, y1, x2, y2]}``."""

    frames: list[np.ndarray]
    boxes: list[dict[int, list[float]]]
    categories: dict[int, Any]


def simulate_video(rng: np.random.Generator, size: int, num_frames: int, scene: Scene = MINIOWT_SCENE) -> VideoGT:
    """Simulate one video of ``num_frames`` RGB frames [size, size, 3] of ``scene``'s objects.

    At least one known and one unknown category appear. Objects either wander
    (smooth random velocity, softly pulled to the centre: they may drift out and
    come back) or cross the frame (enter from one edge after a random delay and
    leave by another). The camera pans smoothly over a background larger than
    the frame.
    """
    margin = size // 4
    world = size + 2 * margin
    bg = scene.background(rng, world, world)
    n = int(rng.integers(3, 8))
    categories = scene.categories
    known = [c for c in categories if c.known]
    unknown = [c for c in categories if not c.known]
    movers: list[_Mover] = []
    for key in range(n):
        if key == 0:
            cat = known[int(rng.integers(len(known)))]
        elif key == 1:
            cat = unknown[int(rng.integers(len(unknown)))]
        elif rng.random() < 0.3:
            cat = movers[int(rng.integers(len(movers)))].category
        else:
            cat = categories[int(rng.integers(len(categories)))]
        s = rng.uniform(0.1, 0.28) * size
        wander = key < 2 or rng.random() < 0.6
        speed = rng.uniform(0.5, 2.0) * size / 128
        if wander:
            start = 0
            pos = margin + rng.uniform(0.15, 0.85, 2) * size
            angle = rng.uniform(0, 2 * np.pi)
        else:
            start = int(rng.integers(0, max(1, num_frames // 2)))
            edge = int(rng.integers(4))
            along = rng.uniform(0.2, 0.8) * size
            out = -0.6 * s
            pos = np.array([
                [out, along], [size - out, along], [along, out], [along, size - out]
            ][edge]) + margin
            angle = [0.0, np.pi, 0.5 * np.pi, 1.5 * np.pi][edge] + rng.uniform(-0.5, 0.5)
            speed *= 1.5
        vel = speed * np.array([np.cos(angle), np.sin(angle)])
        movers.append(_Mover(
            key, cat, scene.look(rng, cat), s, rng.uniform(0.8, 1.25), rng.random(), start,
            np.asarray(pos, float), vel, wander, rng.uniform(0.0, 0.35),
            rng.uniform(0.05, 0.2), rng.uniform(0, 2 * np.pi),
        ))
    cam = rng.uniform(0, 2 * margin, 2)
    cam_vel = rng.normal(0, 0.4, 2) * size / 128
    frames, all_boxes = [], []
    centre = np.array([world / 2, world / 2])
    for t in range(num_frames):
        sprites = []
        for m in movers:
            if t < m.start:
                continue
            if t > m.start:
                if m.wander:
                    pull = (centre - m.pos) * 0.004
                    m.vel = 0.93 * m.vel + pull + rng.normal(0, 0.25, 2) * size / 128
                m.pos = m.pos + m.vel
            scale = 1 + m.scale_amp * np.sin(m.scale_freq * t + m.scale_phase)
            w, h = m.size * scale * m.aspect, m.size * scale / m.aspect
            sx, sy = m.pos - cam - np.array([w, h]) / 2
            sprites.append(Sprite(m.key, m.category, m.look, sx, sy, w, h, m.depth))
        cam_vel = 0.95 * cam_vel + rng.normal(0, 0.15, 2) * size / 128
        cam = cam + cam_vel
        for d in range(2):
            if not 0 <= cam[d] <= 2 * margin:
                cam[d] = min(max(cam[d], 0.0), 2.0 * margin)
                cam_vel[d] = -cam_vel[d]
        cx, cy = int(round(cam[0])), int(round(cam[1]))
        img, boxes = scene.render(bg[cy:cy + size, cx:cx + size], sprites)
        frames.append(img)
        all_boxes.append(boxes)
    return VideoGT(frames, all_boxes, {m.key: m.category for m in movers})


