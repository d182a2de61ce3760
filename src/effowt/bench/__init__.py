"""Benchmarks of cost: efficiency (params / memory / step time), inference speed, the
phases of a training step, and the tracker's threshold sweep; the paper's experiments
(accuracy, ablations, probe, forgetting) are :mod:`effowt_paper`. Each benchmark is a
command module of ``effowt bench`` (:mod:`effowt.commands.bench`).

Speed and memory live here, as JSON + Markdown outputs, never in timed test assertions.
"""

# Costs (time, memory) do not depend on the backbone weights' values: the efficiency and
# speed benchmarks build random backbones (an override may still name weights) rather
# than fetch the weights a preset names (effowt.backbones.weights).
RANDOM_BACKBONE = "model.backbone.weights=null"


def check_counts(*counts: tuple[str, int, int]) -> None:
    """ConfigError for the first ``(option, value, least)`` whose value is below its
    least (``--steps must be >= 1, got 0``): a benchmark checks its counts before it
    builds or starts anything."""
    from effowt.errors import ConfigError

    for option, value, least in counts:
        if value < least:
            raise ConfigError(f"{option} must be >= {least}, got {value}")


def names(text: str) -> list[str]:
    """A comma-separated option (``--modes side,head``) as its list of names."""
    return [t.strip() for t in text.split(",") if t.strip()]
