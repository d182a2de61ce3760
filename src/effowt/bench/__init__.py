"""Benchmarks: efficiency (params / memory / step time), speed, accuracy and ablations.

Speed and memory live here, as JSON + Markdown outputs, never in timed test assertions.
"""
