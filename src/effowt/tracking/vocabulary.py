"""The texts tracks are named with (``--texts``, ``--vocab``, ``--prompt``): read and
checked without torch, so the command line answers before it loads a model. The
labelling itself is :mod:`effowt.tracking.labels`."""

from __future__ import annotations

import string
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
    """``prompt`` when it holds exactly one ``{}`` (where the text goes) and nothing else
    ``str.format`` would read (``{{``/``}}`` are literal braces); ConfigError otherwise."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(prompt) if f is not None]
        prompt.format("x")
    except (ValueError, IndexError, KeyError, AttributeError, TypeError):
        fields = ["?"]
    if fields != [""]:
        raise ConfigError(f"--prompt {prompt!r}: a prompt needs exactly one {{}} where the text goes "
                          "(e.g. 'a photo of {}'; write {{ and }} for literal braces)")
    return prompt


def check_texts(texts: object) -> list[str]:
    """``texts`` as a list of non-empty strings; ConfigError for a bare string (it would be
    read one character per text) or anything else."""
    if isinstance(texts, str):
        raise ConfigError(f"texts must be a list of strings, got the string {texts[:60]!r}; "
                          "use parse_texts('a dog; a cat') to split one")
    if not isinstance(texts, (list, tuple)) or not texts or \
            not all(isinstance(t, str) and t.strip() for t in texts):
        raise ConfigError(f"texts must be a non-empty list of non-empty strings, got {str(texts)[:80]}")
    return list(texts)
