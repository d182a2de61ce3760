"""The docs: every number quoted from a benchmark output matches it (docs/hooks/bench_numbers.py,
also run by the strict mkdocs build in `make test`), and the README stays short."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _checker():
    spec = importlib.util.spec_from_file_location("bench_numbers", DOCS / "hooks" / "bench_numbers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in DOCS.rglob("*.md"))]


@pytest.mark.parametrize("page", PAGES)
def test_quoted_numbers_match_their_benchmark_outputs(page):
    assert _checker().check((ROOT / page).read_text(encoding="utf-8"), page) == []


def test_a_number_that_differs_from_its_json_fails():
    check = _checker().check
    src = "<!-- src: benchmarks/accuracy/accuracy.json rows=modes -->"
    table = f"{src}\n| mode | known OWTA |\n|---|---:|\n| side | {{}} ± 0.2 |\n"
    assert check(table.format("36.5")) == []  # accuracy.json: side, known OWTA mean 0.365...
    assert len(check(table.format("36.6"))) == 1  # one digit off: named with its line and file
    assert check(table.format("41.0")) != []  # full's known OWTA, but not side's: rows= keeps rows apart
    prose = "side tracks unknown objects at {}<!-- src: benchmarks/accuracy/accuracy.json#modes.side.unknown --> OWTA"
    assert check(prose.format("39.2")) == [] and check(prose.format("39.3")) != []
    assert check(prose.format("39.2").replace("accuracy.json", "nope.json")) != []  # a missing source fails too
    assert check(prose.format("39.2").replace("side.unknown", "sidee.unknown")) != []  # and a missing key


def test_every_benchmark_page_quotes_its_sources():
    for page in sorted((DOCS / "benchmarks").glob("*.md")):
        if page.name != "index.md":
            assert page.read_text(encoding="utf-8").count("<!-- src: ") >= 2, page.name


def test_readme_is_short_and_has_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode("utf-8")) <= 15 * 1024
    assert "make demo" in readme and "make test" in readme


def test_included_tables_come_from_the_reports_the_benchmarks_wrote():
    include_tables = _checker().include_tables
    page = "before\n\n<!-- include-table: benchmarks/ablation/ablation.md 1 -->\n\nafter\n"
    text, errors = include_tables(page)
    assert errors == [] and "before\n\n| variant | seeds | known OWTA |" in text and text.endswith("|\n\nafter\n")
    assert "| no_fusion | 3 | 29.9 ± 3.3 |" in text  # as `effowt bench ablation` wrote it
    assert include_tables(page.replace("ablation.md 1", "ablation.md 9"))[1]  # no such table
    assert include_tables(page.replace("ablation.md 1", "nope.md"))[1]  # no such file
    for path in sorted(DOCS.rglob("*.md")):  # every include in the docs resolves
        assert include_tables(path.read_text(encoding="utf-8"), path.name)[1] == []
