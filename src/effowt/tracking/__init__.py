"""Tracking: online association, the frame-by-frame Tracker, writers and rendering."""

from effowt.tracking.association import OnlineAssociator, Track, TrackState, associate
from effowt.tracking.tracker import Detector, Tracker

__all__ = ["Detector", "OnlineAssociator", "Track", "TrackState", "Tracker", "associate"]
