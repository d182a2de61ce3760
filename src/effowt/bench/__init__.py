"""Benchmarks: efficiency (params / memory / step time), speed, accuracy and ablations.

Speed and memory live here, as JSON + Markdown outputs, never in timed test assertions.
"""

# Costs (time, memory) do not depend on the backbone weights' values: the efficiency and
# speed benchmarks build random backbones (an override may still name weights) rather
# than fetch the weights a preset names (effowt.backbones.weights).
RANDOM_BACKBONE = "model.backbone.weights=null"
