"""Detection (FCOS, class-agnostic) and ReID heads, and the ReID loss."""

from effowt.heads.detection import DetectionHead
from effowt.heads.losses import reid_losses
from effowt.heads.reid import ReIDHead

__all__ = ["DetectionHead", "ReIDHead", "reid_losses"]
