"""The texts tracks are named with (``--texts``, ``--vocab``, ``--prompt``): read and
checked without torch, so the command line answers before it loads a model. The
labelling itself is :mod:`effowt.tracking.labels`."""

from __future__ import annotations

from pathlib import Path

from effowt.errors import ConfigError, DataError

DEFAULT_PROMPT = "a photo of {}"


def read_vocabulary(path: str | Path) -> list[str]:
    """One text per line (blank lines and surrounding spaces dropped); DataError when
    the file is missing or holds no text."""
    path = Path(path)
    try:
        texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read vocabulary file ({err})") from None
    texts = [t for t in texts if t]
    if not texts:
        raise DataError(f"{path}: vocabulary file is empty (expected one text per line)")
    return texts


def parse_texts(text: str) -> list[str]:
    """``"a red car; a dog"`` -> ``["a red car", "a dog"]``; ConfigError when empty."""
    texts = [t.strip() for t in text.split(";") if t.strip()]
    if not texts:
        raise ConfigError(f"--texts {text!r} names no text (separate texts with ';')")
    return texts


def check_prompt(prompt: str) -> str:
    """``prompt`` when it has the ``{}`` the text goes into; ConfigError otherwise."""
    if "{}" not in prompt:
        raise ConfigError(f"--prompt {prompt!r} must contain {{}} where the text goes")
    return prompt
