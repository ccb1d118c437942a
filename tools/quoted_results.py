"""Store the numbers a page's prose quotes from its full-size experiment.

    python tools/quoted_results.py chapters/02-fraud-story-measured.md [...]

runs each page top to bottom in a fresh kernel at full size (OPTBOOK_FULL_RUN=1) with
OPTBOOK_WRITE_RESULTS=1, which makes ``optbook.book.pages.QuotedResults`` write
``chapters/_results/<page>.json``. Run it after changing such an experiment; the book
build (a full run) then checks the file against the code and fails where they differ.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import jupytext
from nbclient import NotebookClient


def main(pages: list[str]) -> int:
    if not pages:
        print(__doc__)
        return 2
    os.environ["OPTBOOK_FULL_RUN"] = "1"
    os.environ["OPTBOOK_WRITE_RESULTS"] = "1"
    for page in pages:
        nb = jupytext.read(page)
        with tempfile.TemporaryDirectory() as tmp:
            NotebookClient(nb, timeout=1800, kernel_name="python3",
                           resources={"metadata": {"path": tmp}}).execute()
        print(f"{page}: chapters/_results/{Path(page).stem}.json written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
