"""Training: the loop, run folders (checkpoints) and multi-process set-up.

``train`` runs a training (``effowt train``); ``save_run`` / ``load_run`` write
and read the run folders that tracking and benchmarks consume.
"""

from effowt.training.checkpoint import load_run, save_run
from effowt.training.trainer import Trainer, train

__all__ = ["Trainer", "load_run", "save_run", "train"]
