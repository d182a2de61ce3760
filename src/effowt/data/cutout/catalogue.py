"""The cut-out world's catalogue: real cut-out objects read from installed Debian packages.

Two sources, read at generation time and never copied into the repository:

- **Tux Paint stamps** (``tuxpaint-stamps-default``, GPL-2+ with public-domain files):
  one category per stamp image outside ``symbols/`` (many are photographs cut out
  with an alpha channel). Its caption is the first line of the stamp's ``.txt``
  ("A badger." -> "a badger"; a parenthesis is dropped); stamps with the same caption are one category with
  several images. Its super-category is its top folder (``animals``, ``food``,
  ``household``, ...), its group the folder it sits in (``animals/mammals``).
- **Open Clip Art** (``openclipart-png``, public domain): one category per topic
  folder of :data:`CLIPART_TOPICS` (file names are free text, the folders are the
  reliable label), captioned "a drawing of <topic>", super-category ``clipart``.
  Drawings over :data:`MAX_SOURCE_PIXELS` (read from the PNG header) are skipped.
  Our choice: drawings are extra *categories* (a drawing of a tool is not a photo of
  a saw) rather than extra instances of the stamps' categories.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from effowt.errors import DataError

STAMPS_PACKAGE = "tuxpaint-stamps-default"
CLIPART_PACKAGE = "openclipart-png"
STAMPS_ROOT = Path("/usr/share/tuxpaint/stamps")
CLIPART_ROOT = Path("/usr/share/openclipart/png")
# Open Clip Art topic folders of things (not icons, logos, symbols or shapes).
CLIPART_TOPICS = (
    "animals", "buildings", "containers", "decorations", "electronics", "food", "office",
    "people", "plants", "recreation", "science", "tools", "transportation",
)
MAX_SOURCE_PIXELS = 4_000_000  # larger drawings (some are 600 M px) are skipped: far beyond any use here
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CLIPART_NAMES = {"transportation": "a vehicle", "recreation": "a toy", "science": "a lab instrument"}


@dataclass(frozen=True)
class CutoutObject:
    """One category of the catalogue.

    Attributes:
        name: unique path-like name, ``"animals/mammals/badger"`` or ``"clipart/tools"``.
        caption: its English description, ``"a badger"``.
        supercategory: top folder (``"animals"``) or ``"clipart"``.
        group: the folder it sits in (``"animals/mammals"``), how known categories
            are grouped for TAO_OW's 78 known ids.
        files: its RGBA images (at least one).
    """

    name: str
    caption: str
    supercategory: str
    group: str
    files: tuple[Path, ...]


def missing_package_error(package: str, root: Path) -> DataError:
    """The one line a missing Debian package gives."""
    return DataError(f"{root}: not found: the cut-out world needs Debian's {package} "
                     f"(install it with `sudo apt-get install {package}`)")


def _stamp_caption(png: Path) -> str:
    try:
        first = png.with_suffix(".txt").read_text(encoding="utf-8", errors="replace").splitlines()[0].strip()
    except (OSError, IndexError):
        first = ""
    text = first.split(" (")[0].rstrip(".!").strip() or png.stem.replace("_", " ")
    return text[0].lower() + text[1:]


def png_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG's IHDR header (no decoding), None when not a PNG."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _usable(path: Path) -> bool:
    size = png_size(path)
    return size is not None and 0 < size[0] * size[1] <= MAX_SOURCE_PIXELS


def read_stamps(root: Path) -> list[CutoutObject]:
    """Every stamp category under ``root`` (outside ``symbols/``), sorted by name."""
    if not root.is_dir():
        raise missing_package_error(STAMPS_PACKAGE, root)
    by_caption: dict[str, list[Path]] = {}
    for png in sorted(root.rglob("*.png")):
        rel = png.relative_to(root)
        if rel.parts[0] == "symbols" or len(rel.parts) < 2 or not _usable(png):
            continue
        by_caption.setdefault(_stamp_caption(png), []).append(png)
    objects = []
    for caption, files in by_caption.items():
        rel = files[0].relative_to(root)
        group = "/".join(rel.parts[:-1][:2])
        objects.append(CutoutObject(
            name=rel.with_suffix("").as_posix(), caption=caption, supercategory=rel.parts[0],
            group=group, files=tuple(files),
        ))
    return sorted(objects, key=lambda o: o.name)


def read_clipart(root: Path, topics: tuple[str, ...] = CLIPART_TOPICS) -> list[CutoutObject]:
    """One category per present topic folder of ``root`` with at least one PNG."""
    if not root.is_dir():
        raise missing_package_error(CLIPART_PACKAGE, root)
    objects = []
    for topic in topics:
        folder = root / topic
        files = tuple(p for p in sorted(folder.rglob("*.png")) if _usable(p)) if folder.is_dir() else ()
        if files:
            caption = _CLIPART_NAMES.get(topic, f"a drawing of {topic.rstrip('s')}")
            objects.append(CutoutObject(f"clipart/{topic}", caption, "clipart", f"clipart/{topic}", files))
    return objects


def read_catalogue(stamps_root: str | os.PathLike | None = None,
                   clipart_root: str | os.PathLike | None = None) -> list[CutoutObject]:
    """The whole catalogue: stamps then clip-art topics (the Debian install paths by
    default); a missing package is one DataError line naming the install command."""
    stamps = read_stamps(Path(stamps_root) if stamps_root else STAMPS_ROOT)
    clipart = read_clipart(Path(clipart_root) if clipart_root else CLIPART_ROOT)
    objects = stamps + clipart
    seen: set[str] = set()
    for obj in objects:
        if obj.caption in seen:
            raise DataError(f"{obj.name}: caption {obj.caption!r} names two categories")
        seen.add(obj.caption)
    return objects
