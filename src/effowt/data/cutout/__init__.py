"""The cut-out world: real cut-out objects from Debian packages in MiniOWT's motion.

Where MiniOWT's unknown categories recombine shapes and patterns the known ones
already have, the cut-out world's are real objects (Tux Paint's photographs, Open
Clip Art's drawings) from super-categories that detection training never sees
(``far`` split), so only knowledge from pretraining covers them. Modules:
``catalogue`` (reading the packages), ``world`` (splits, ids, the scene),
``generator`` (:func:`generate_cutout_world`).
"""

from effowt.data.cutout.catalogue import CLIPART_ROOT, STAMPS_ROOT, CutoutObject, read_catalogue
from effowt.data.cutout.generator import SOURCE_MARK, generate_cutout_world
from effowt.data.cutout.world import SPLITS, CutoutScene, WorldCategory, place_in_split

__all__ = [
    "CLIPART_ROOT", "SOURCE_MARK", "SPLITS", "STAMPS_ROOT", "CutoutObject", "CutoutScene", "WorldCategory",
    "generate_cutout_world", "place_in_split", "read_catalogue",
]
