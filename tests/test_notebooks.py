"""Every chapter page runs as a student runs it: converted to .ipynb by jupytext and
executed top to bottom in a fresh kernel, from a folder outside the repository (so
``import optbook`` must work without any path tricks)."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_PAGES = sorted(
    p for p in (ROOT / "chapters").glob("*.md") if p.read_text().startswith("---\njupytext:")
)


def test_there_are_notebook_pages():
    assert any(p.name.startswith("02-") for p in NOTEBOOK_PAGES)


@pytest.mark.parametrize("page", NOTEBOOK_PAGES, ids=lambda p: p.stem)
def test_page_runs_as_a_notebook(page, tmp_path):
    nb = jupytext.read(page)
    nbformat.validate(nb)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on failure
    errors = [o for cell in nb.cells if cell.cell_type == "code"
              for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
