"""Sphinx extension: the book build runs every experiment at full size.

Pages with an expensive experiment give students a quick version in JupyterLab
(``optbook.book.pages.full_run()`` is False there). The kernels that execute the pages inherit
this process's environment, so setting OPTBOOK_FULL_RUN=1 here, before any page runs,
makes every build of the book — `make book`, a bare `jupyter-book build`, the tests — run
the full experiments whose numbers the prose quotes.
"""

from __future__ import annotations

import os


def setup(app):
    os.environ["OPTBOOK_FULL_RUN"] = "1"
    return {"parallel_read_safe": True, "parallel_write_safe": True}
