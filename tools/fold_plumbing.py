"""Fold the pages' plumbing cells in JupyterLab as the site folds them.

    .venv/bin/python tools/fold_plumbing.py            # rewrite the pages that differ
    .venv/bin/python tools/fold_plumbing.py --check    # list them; exit 1 if any differ

On the site, a code cell tagged ``hide-cell`` or ``hide-input`` shows a "Show code"
toggle instead of its code. JupyterLab does not read those tags; it folds a cell's input
when the cell's metadata says ``jupyter: {source_hidden: true}`` (a click on the fold
opens it). This tool gives every such cell that metadata, so a student sees the same
page as a reader: teaching code in view, plumbing folded. The page is written through
jupytext with chapters/jupytext.toml's options, i.e. exactly as JupyterLab saves it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
from jupytext.config import load_jupytext_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from page_headers import CHAPTERS, notebook_pages  # noqa: E402

FOLDED_TAGS = {"hide-cell", "hide-input"}


def folded(text: str) -> str:
    """The page's text with every plumbing cell's input folded in JupyterLab."""
    config = load_jupytext_config(str(CHAPTERS))
    nb = jupytext.reads(text, fmt="md:myst", config=config)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        hidden = bool(FOLDED_TAGS & set(cell.metadata.get("tags", [])))
        jupyter = cell.metadata.get("jupyter", {})
        if hidden:
            cell.metadata["jupyter"] = {**jupyter, "source_hidden": True}
        elif jupyter.pop("source_hidden", None) is not None and not jupyter:
            del cell.metadata["jupyter"]
    return jupytext.writes(nb, fmt="md:myst", config=config)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path, help="default: every notebook page")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page differs")
    args = parser.parse_args()
    differ = []
    for page in [p.resolve() for p in args.pages] or notebook_pages():
        text = page.read_text()
        new = folded(text)
        if new != text:
            differ.append(page)
            if not args.check:
                page.write_text(new)
    for page in differ:
        print(("differs: " if args.check else "folded: ") + page.name)
    return 1 if (args.check and differ) else 0


if __name__ == "__main__":
    sys.exit(main())
