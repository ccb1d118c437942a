"""The pages' own text, checked from their MyST sources (no build needed).

Visible code is teaching code: no code line is wider than a code block shows at 1280 px
without scrolling sideways (88 characters), and every page opens with its number.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from site_helpers import toc_files

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)
WIDTH = 88


def code_lines(text: str):
    """(line number, line) of every line inside a code cell of a MyST notebook."""
    for cell in CODE_CELL.finditer(text):
        first = text.count("\n", 0, cell.start(1)) + 1
        for offset, line in enumerate(cell.group(1).splitlines()):
            yield first + offset, line


def test_code_lines_finds_code():
    text = "x\n```{code-cell} ipython3\na = 1\n" + "b" * 90 + "\n```\nprose " + "c" * 99
    assert [n for n, line in code_lines(text) if len(line) > WIDTH] == [4]


@pytest.mark.parametrize("page", CHAPTERS, ids=lambda p: p.stem)
def test_no_code_line_scrolls_sideways(page):
    wide = [f"{page.name}:{n}: {len(line)} characters"
            for n, line in code_lines(page.read_text(encoding="utf-8")) if len(line) > WIDTH]
    assert not wide, "code lines wider than 88 characters:\n" + "\n".join(wide)


def page_title(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return next(line[2:].strip() for line in text.splitlines() if line.startswith("# "))


def test_pages_are_numbered_in_reading_order():
    """8.1, 8.2, … in the order of _toc.yml; appendices lettered A, B, C after them."""
    titles = [page_title(ROOT / f"{doc}.md") for doc in toc_files()
              if doc.startswith("chapters/")]
    root, numbered = titles[0], titles[1:]
    assert root.startswith("Chapter 8")
    sections = [t for t in numbered if not t.startswith("Appendix")]
    appendices = [t for t in numbered if t.startswith("Appendix")]
    assert numbered == sections + appendices, "appendices come last"
    assert [t.split()[0] for t in sections] == [f"8.{i}" for i in range(1, len(sections) + 1)]
    assert [t.split()[1] for t in appendices] == list("ABC"[:len(appendices)])
