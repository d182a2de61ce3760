"""Shared test set-up: offline hub, few threads, deterministic seeds."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def open_threshold_run(root):
    """A `mini` run folder under ``root`` with random weights and every threshold open, so
    that boxes come out of tracking (random weights score everything low)."""
    from effowt.config import load_config
    from effowt.runs import build_seeded_model, save_run

    cfg = load_config("mini", ["model.head.score_thresh=0.0", "tracker.det_thresh=0.0",
                               "tracker.init_thresh=0.0", "tracker.match_thresh=0.0",
                               "tracker.min_cosine=-1.0"])
    return save_run(root / "run", build_seeded_model(cfg), cfg)
