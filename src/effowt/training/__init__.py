"""Training: the loop, its resume state and multi-process set-up.

``train`` runs a training (``effowt train``). The run folders it writes, and
the models built from them, belong to :mod:`effowt.runs`.
"""

from effowt.training.trainer import Trainer, train

__all__ = ["Trainer", "train"]
