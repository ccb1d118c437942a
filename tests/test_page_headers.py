"""Opening, running and saving a chapter page in JupyterLab leaves the file as it is.

JupyterLab sets a page's kernelspec as soon as its kernel starts, and autosave writes the
page back through jupytext (with chapters/jupytext.toml). These tests run jupytext's own
contents manager on each page the way JupyterLab does (tools/page_headers.py) and compare.
tests/test_jupyterlab.py does the same in a real JupyterLab, for one page.

Also here: which Markdown files JupyterLab opens as notebooks (the file-type pattern of
labextension/optbook-chapter-pages), and `make lab` as root.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from page_headers import notebook_pages, saved_by_jupyterlab, split_front_matter  # noqa: E402

PAGES = notebook_pages()
# Pages whose *body* jupytext writes differently (so a save in JupyterLab changes them):
# fix the page (run jupytext's round trip on it), then take it off this list.


def test_the_notebook_pages_are_found():
    assert len(PAGES) >= 15
    assert ROOT / "chapters" / "10-pytorch-in-practice.md" in PAGES


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_header_is_as_jupyterlab_saves_it(page):
    header = split_front_matter(page.read_text())[0]
    saved = split_front_matter(saved_by_jupyterlab(page))[0]
    assert header == saved, "run .venv/bin/python tools/page_headers.py"


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_is_unchanged_by_a_save(page):
    assert saved_by_jupyterlab(page) == page.read_text()


def test_evaluated_expressions_are_not_saved(tmp_path):
    """jupyterlab-myst stores each Markdown cell's {eval} results in its metadata."""
    page = ROOT / "chapters" / "10-pytorch-in-practice.md"
    import jupytext

    from jupyter_server.services.contents.largefilemanager import LargeFileManager
    from jupytext.sync_contentsmanager import build_sync_jupytext_contents_manager_class

    (tmp_path / "chapters").mkdir()
    for path in (page, ROOT / "chapters" / "jupytext.toml"):
        (tmp_path / "chapters" / path.name).write_text(path.read_text())
    manager = build_sync_jupytext_contents_manager_class(LargeFileManager)(root_dir=str(tmp_path))
    where = f"chapters/{page.name}"
    nb = manager.get(where)["content"]
    nb.metadata["kernelspec"] = jupytext.reads(page.read_text(), "md:myst").metadata["kernelspec"]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.metadata["user_expressions"] = [{"expression": "x", "result": {
                "status": "ok", "data": {"text/plain": "'1.5'"}, "metadata": {}}}]
            cell.metadata["jp-MarkdownHeadingCollapsed"] = True
    manager.save({"type": "notebook", "format": "json", "content": nb}, where)
    assert (tmp_path / where).read_text() == page.read_text()


def _chapter_page_pattern() -> re.Pattern:
    js = (ROOT / "labextension" / "optbook-chapter-pages" / "static" / "remoteEntry.js").read_text()
    source = json.loads(re.search(r'var PATTERN = ("(?:[^"\\]|\\.)*");', js).group(1))
    return re.compile(source)


def test_jupyterlab_opens_exactly_the_notebook_pages_as_notebooks():
    """The extension's file type (matched on the file's name) selects the pages with a
    jupytext header and no other Markdown file of the repository."""
    pattern = _chapter_page_pattern()
    tracked = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    markdown = {ROOT / name for name in tracked} | set((ROOT / "chapters").glob("*.md"))
    opened = {p for p in markdown if pattern.search(p.name)}
    assert opened == set(PAGES)
    assert not pattern.search("README.md")


def test_make_lab_passes_allow_root_as_root():
    dry = subprocess.run(["make", "-n", "--no-print-directory", "lab"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    command = [line for line in dry if "jupyter lab" in line][-1]
    assert ("--allow-root" in command) == (os.geteuid() == 0)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_plumbing_is_folded_in_jupyterlab_as_on_the_site(page):
    """Every code cell the site folds behind "Show code" (hide-cell, hide-input) has
    jupyter.source_hidden, so JupyterLab folds it too; no other cell is folded."""
    import jupytext
    from fold_plumbing import folded

    text = page.read_text()
    assert folded(text) == text, f"run tools/fold_plumbing.py {page.relative_to(ROOT)}"
    cells = [c for c in jupytext.reads(text, fmt="md:myst").cells if c.cell_type == "code"]
    hidden = [c for c in cells if c.metadata.get("jupyter", {}).get("source_hidden")]
    assert all(bool({"hide-cell", "hide-input"} & set(c.metadata.get("tags", []))) for c in hidden)


def test_folding_marks_exactly_the_plumbing():
    from fold_plumbing import folded

    page = ("---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
            "    format_version: 0.13\nkernelspec:\n  name: python3\n  display_name: Python 3\n"
            "  language: python\n---\n\n```{code-cell} ipython3\n:tags: [hide-cell]\n\nx = 1\n```"
            "\n\n```{code-cell} ipython3\ny = 2\n```\n")
    import jupytext

    cells = jupytext.reads(folded(page), fmt="md:myst").cells
    assert cells[0].metadata["jupyter"] == {"source_hidden": True}
    assert "jupyter" not in cells[1].metadata
    assert folded(folded(page)) == folded(page)
