"""Data: two-view COCO training data, the TAO / TAO-OW reader, video sources and MiniOWT.

Submodules are imported on demand (``from effowt.data.coco import ...``) so that
importing :mod:`effowt.data` stays light.
"""
