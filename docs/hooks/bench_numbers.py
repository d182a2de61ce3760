"""Numbers in the docs that cannot drift from the committed benchmark outputs.

A figure quoted in a docs page names the benchmark output it comes from, in an HTML
comment (invisible on the site and on GitHub):

- ``0.245<!-- src: benchmarks/speed/clip-b16-cpu-384.json -->``: the number right
  before the comment, or both numbers of ``36.2 ± 2.7<!-- src: ... -->`` (prose);
- a line ``<!-- src: benchmarks/accuracy/accuracy.json [more files] [cols=2-5,7] -->``
  right above a table: every number in the table's body cells (the first column,
  which names the row, is skipped unless ``cols`` lists it; 1-based columns).

Paths are relative to the repository root (benchmark outputs, and the json files
shipped beside the models in ``src/effowt/assets/``); the Markdown reports the
benchmark commands write beside their json (``benchmarks/**/*.md``) are sources too,
for the figures they derive (ratios, percentages). ``FILE#a.b`` narrows a source to
the subtree at keys ``a``, ``b``; in a table, ``rows=a.b`` narrows each row to the
subtree ``a.b.<row name>`` (the row name: the first code span of its first cell,
else the cell), so a number must come from its own row's results.

A number matches when some numeric value of the named files, as is, × 100
(fractions shown as percent), × 1000 (seconds shown as ms), / 1000 (ms shown as
seconds) or in MiB (bytes), rounds to it at the printed precision (``36.5`` matches
0.3654; ``105,333`` matches 105333). Signs are not compared (prose writes them as
words or with a typographic minus). Numbers inside backticks (commands, settings)
and fractions written ``1/4`` are not figures and are skipped.

Whole generated tables are included rather than copied: a line
``<!-- include-table: benchmarks/ablation/ablation.md 1 -->`` is replaced, when the
site is built, by the first (or n-th) Markdown table of that report, as the benchmark
command wrote it.

Used twice: as an mkdocs hook (``hooks:`` in mkdocs.yml), where a mismatch stops
the build, and by ``tests/test_docs.py``, which checks every page.
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCALES = (1.0, 100.0, 1000.0, 0.001, 1.0 / 2**20)

_SRC = r"<!--\s*src:\s*(?P<spec>[^>]*?)\s*-->"
BLOCK = re.compile(rf"^\s*{_SRC}\s*$")
_NUM = r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?"
INLINE = re.compile(rf"(?P<num>{_NUM})(?:\s*±\s*(?P<pm>{_NUM}))?\s*%?\s*{_SRC}")
NUMBER = re.compile(r"(?<![\w.,/-])(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?)(?![\w/]|\.\d)")
CODE = re.compile(r"`[^`]*`")


@cache
def _load(path: str) -> Any:
    """A json file, or the numbers of a Markdown report a benchmark command wrote
    (``benchmarks/**/*.md``: its derived columns, e.g. side / default)."""
    text = (ROOT / path).read_text(encoding="utf-8")
    if path.endswith(".md"):
        return [float(t.replace(",", "")) for t in NUMBER.findall(CODE.sub("", text))]
    return json.loads(text)


def subtree(source: str, keys: str = "") -> Any:
    """The json at ``FILE[#a.b]``, narrowed further by the dotted ``keys``; KeyError when
    a key is missing."""
    path, _, inner = source.partition("#")
    node = _load(path)
    for key in [k for k in f"{inner}.{keys}".split(".") if k]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


@cache
def values(source: str, keys: str = "") -> tuple[float, ...]:
    """Every numeric leaf of ``FILE[#a.b]`` narrowed by ``keys`` (bools excluded)."""
    found: list[float] = []

    def walk(node: Any) -> None:
        if isinstance(node, bool):
            return
        if isinstance(node, (int, float)):
            if math.isfinite(node):
                found.append(float(node))
        elif isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(subtree(source, keys))
    return tuple(found)


def matches(token: str, files: list[str], keys: str = "") -> bool:
    """Whether the printed number ``token`` is some value of ``files`` (narrowed by
    ``keys``) at its precision."""
    text = token.replace(",", "")
    decimals = len(text.split(".")[1]) if "." in text else 0
    printed = float(text)
    tolerance = 0.5 * 10 ** -decimals + 1e-9
    return any(abs(abs(v * s) - abs(printed)) <= tolerance for f in files for v in values(f, keys) for s in SCALES)


def _parse_spec(spec: str) -> tuple[list[str], set[int] | None, str | None]:
    files, cols, rows = [], None, None
    for part in spec.split():
        if part.startswith("rows="):
            rows = part[5:]
        elif part.startswith("cols="):
            cols = set()
            for piece in part[5:].split(","):
                a, _, b = piece.partition("-")
                cols.update(range(int(a), int(b or a) + 1))
        else:
            files.append(part)
    return files, cols, rows


def _check_files(files: list[str], where: str) -> list[str]:
    errors = []
    for f in files:
        if not (ROOT / f.partition("#")[0]).is_file():
            errors.append(f"{where}: source {f} not found")
            continue
        try:
            subtree(f)
        except (KeyError, IndexError, ValueError):
            errors.append(f"{where}: {f}: no such keys")
    return errors


def _row_name(cell: str) -> str:
    code = CODE.search(cell)
    return (code.group(0).strip("`") if code else cell).strip()


def check(markdown: str, page: str = "page") -> list[str]:
    """Every quoted number of ``markdown`` that does not match its source, as
    ``page:line: message`` strings (empty when all match)."""
    errors: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        block = BLOCK.match(line)
        if block:
            files, cols, rows_at = _parse_spec(block["spec"])
            missing = _check_files(files, f"{page}:{i + 1}")
            errors += missing
            bad = bool(missing)
            j = i + 1
            if j >= len(lines) or not lines[j].lstrip().startswith("|"):
                errors.append(f"{page}:{i + 1}: a src line must stand right above a table")
            rows = 0
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                if j >= i + 3:  # the header and the separator row are not figures
                    cells = [c.strip() for c in lines[j].strip().strip("|").split("|")]
                    keys = ""
                    if rows_at is not None:
                        keys = f"{rows_at}.{_row_name(cells[0])}"
                        try:
                            [subtree(f, keys) for f in files]
                        except (KeyError, IndexError, ValueError, TypeError):
                            errors.append(f"{page}:{j + 1}: no {keys} in {', '.join(files)}")
                            bad = True
                    for col, cell in enumerate(cells, start=1):
                        if (col in cols) if cols is not None else col > 1:
                            for token in NUMBER.findall(CODE.sub("", cell)):
                                if files and not bad and not matches(token, files, keys):
                                    errors.append(f"{page}:{j + 1}: {token} (column {col}) is in none of "
                                                  f"{', '.join(files)}" + (f" at {keys}" if keys else ""))
                    rows += 1
                j += 1
            i = j
            continue
        for m in INLINE.finditer(line):
            files, _, _ = _parse_spec(m["spec"])
            missing = _check_files(files, f"{page}:{i + 1}")
            errors += missing
            for token in (m["num"], m["pm"]):
                if token is not None and not missing and not matches(token, files):
                    errors.append(f"{page}:{i + 1}: {token} is in none of {', '.join(files)}")
        i += 1
    return errors


INCLUDE = re.compile(r"^[ \t]*<!--\s*include-table:\s*(?P<path>\S+)(?:\s+(?P<n>\d+))?\s*-->[ \t]*$", re.M)


def tables(path: str) -> list[str]:
    """The Markdown tables of the file ``<repository>/<path>``, in order."""
    found: list[list[str]] = []
    previous = False
    for line in (ROOT / path).read_text(encoding="utf-8").splitlines():
        row = line.lstrip().startswith("|")
        if row and not previous:
            found.append([])
        if row:
            found[-1].append(line)
        previous = row
    return ["\n".join(t) for t in found]


def include_tables(markdown: str, page: str = "page") -> tuple[str, list[str]]:
    """``markdown`` with every include-table line replaced by its table, and the
    problems (a missing file or table) as messages."""
    errors: list[str] = []

    def replace(m: re.Match[str]) -> str:
        path, n = m["path"], int(m["n"] or 1)
        if not (ROOT / path).is_file():
            errors.append(f"{page}: include-table: {path} not found")
            return ""
        found = tables(path)
        if not 1 <= n <= len(found):
            errors.append(f"{page}: include-table: {path} has {len(found)} table(s), not a table {n}")
            return ""
        return found[n - 1]

    return INCLUDE.sub(replace, markdown), errors


def on_pre_build(config: Any) -> None:
    """mkdocs hook: read the sources afresh on every build (``mkdocs serve``)."""
    _load.cache_clear()
    values.cache_clear()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """mkdocs hook: include the generated tables; stop the build when a quoted number
    differs from its source or an included table is missing."""
    from mkdocs.exceptions import PluginError

    markdown, errors = include_tables(markdown, page.file.src_uri)
    errors += check(markdown, page.file.src_uri)
    if errors:
        raise PluginError("docs that differ from their benchmark outputs:\n  " + "\n  ".join(errors))
    return markdown
