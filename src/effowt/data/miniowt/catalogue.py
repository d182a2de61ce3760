"""The MiniOWT catalogue: 50 categories (10 shapes x 5 patterns, each with a
colour and a caption), 25 known and 25 unknown, with TAO-OW category ids."""

from __future__ import annotations

from dataclasses import dataclass

SHAPES = (
    "circle", "square", "triangle", "star", "cross",
    "ring", "diamond", "hexagon", "crescent", "heart",
)
PATTERNS = ("solid", "striped", "checkered", "dotted", "gradient")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 30),
    "lime": (150, 230, 40),
    "green": (30, 160, 60),
    "cyan": (30, 210, 220),
    "blue": (40, 80, 230),
    "purple": (130, 50, 200),
    "magenta": (230, 50, 190),
    "brown": (130, 80, 30),
}

# Category ids: subsets of the id sets hard-coded in TrackEval's TAO_OW dataset,
# trackeval/datasets/tao_ow.py, ``TAO_OW._split_known_unknown_distractor``:
# KNOWN_IDS are the 25 smallest of its ``knowns`` (TAO ids mapped to COCO);
# UNKNOWN_IDS are the 25 smallest of its ``unknowns`` above 1 (id 1 is skipped
# because TAO_OW maps every box to class 1 and then checks 1 against the videos'
# negative / not-exhaustive lists). No ``distractors`` id is used.
KNOWN_IDS = (
    4, 13, 34, 35, 36, 41, 45, 58, 60, 78, 79, 81, 91, 95, 99, 118, 126, 133,
    139, 154, 174, 185, 211, 221, 229,
)
UNKNOWN_IDS = (
    2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 21, 22, 23, 24,
    25, 26, 27, 28, 29,
)


@dataclass(frozen=True)
class Category:
    """One MiniOWT category: a shape with a surface pattern and a characteristic colour."""

    id: int
    name: str
    shape: str
    pattern: str
    colour: str
    known: bool
    caption: str


def _build_categories() -> list[Category]:
    cats = []
    known_ids, unknown_ids = iter(KNOWN_IDS), iter(UNKNOWN_IDS)
    colour_names = list(COLOURS)
    for s, shape in enumerate(SHAPES):
        for p, pattern in enumerate(PATTERNS):
            known = (s + p) % 2 == 0
            colour = colour_names[(s + 2 * p) % len(colour_names)]
            name = f"{colour} {pattern} {shape}"
            article = "an" if colour[0] in "aeiou" else "a"
            cats.append(Category(
                id=next(known_ids) if known else next(unknown_ids),
                name=name, shape=shape, pattern=pattern, colour=colour, known=known,
                caption=f"{article} {name}",
            ))
    return cats


CATEGORIES: list[Category] = _build_categories()
"""All 50 categories; ``known`` ones are annotated in ``train``."""
CATEGORY_BY_ID: dict[int, Category] = {c.id: c for c in CATEGORIES}
