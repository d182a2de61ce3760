"""effowt: open-world multi-object tracking by efficient transfer of frozen VLMs (EffOWT)."""

__version__ = "0.1.0"
