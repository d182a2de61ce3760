"""Tracking: online association, the frame-by-frame Tracker, writers and rendering."""

from effowt.tracking.association import OnlineAssociator, Track, TrackState, associate
from effowt.tracking.tracker import Tracker, default_run_dir

__all__ = ["OnlineAssociator", "Track", "TrackState", "Tracker", "associate", "default_run_dir"]
