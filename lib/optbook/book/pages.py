"""Plumbing for the chapter pages (kept out of the pages themselves).

``glue`` wraps ``myst_nb.glue`` so a page can hand it whatever its computation returned
(NumPy scalars included) and use the number in the prose with
``{glue:text}`name:.2f```. myst-nb formats glued text from the value's ``repr``, which
for a NumPy scalar is ``np.float64(…)`` and cannot be formatted — so values are turned
into plain Python numbers first.
"""

from __future__ import annotations

import numbers

import numpy as np


def glue(name: str, value, display: bool = False) -> None:
    """Store ``value`` under ``name`` for use in the page's text (shown nowhere else)."""
    from myst_nb import glue as _glue

    if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        raise TypeError(f"glue({name!r}, …) expects a number, got {type(value).__name__}")
    _glue(name, value, display=display)



# ---------------------------------------------------------------------------------------
# Quick runs for students, full runs for the book.
#
# A few pages run experiments that take minutes at full size. In JupyterLab a student gets
# a smaller version by default (each page runs top to bottom in about 20 s on 2 cores) and
# a visible switch, ``FULL_RUN = pages.full_run()``, to set to ``True``. The book build
# always runs the full experiment (``_ext/full_run.py`` sets OPTBOOK_FULL_RUN=1 before any
# page executes), and the prose quotes the full run in both places: the numbers the prose
# quotes are kept, as the text the reader sees, in ``chapters/_results/<page>.json``.
# A full run in the test suite's book build (OPTBOOK_CHECK_RESULTS=1, set by
# tests/conftest.py) checks its numbers against that file and stops with a message naming
# the number when they differ, so the file cannot drift from the code that produced it.
# Anywhere else (a reader's `make book` on a GPU or another CPU, where the last digits of
# a training run may differ) a full run quotes its own numbers, which match its figures.
# ---------------------------------------------------------------------------------------

import json
import os
from pathlib import Path

FULL_RUN_ENV = "OPTBOOK_FULL_RUN"
WRITE_RESULTS_ENV = "OPTBOOK_WRITE_RESULTS"
CHECK_RESULTS_ENV = "OPTBOOK_CHECK_RESULTS"
RESULTS_DIR = Path(__file__).resolve().parents[3] / "chapters" / "_results"


def full_run() -> bool:
    """Whether the page runs its experiments at full size (True in the book build)."""
    return os.environ.get(FULL_RUN_ENV, "") == "1"


class QuotedResults:
    """The full run's numbers, as the prose shows them, for a page that has a quick run.

    ``quoted = QuotedResults("02-fraud-story-measured", full=FULL_RUN)``, then for every
    number the prose takes from the expensive experiment::

        auc_adam = quoted("auc_adam", format(auc["adam"], ".3f") if FULL_RUN else None)

    A full run returns its own text: it stores it with OPTBOOK_WRITE_RESULTS=1
    (``tools/quoted_results.py`` does that) and, with OPTBOOK_CHECK_RESULTS=1 (the test
    suite's book build), first checks it against the stored one. A quick run returns
    the stored text of the full run.
    """

    def __init__(self, page: str, full: bool, directory: Path | None = None):
        self.page, self.full = page, full
        self.path = Path(directory or RESULTS_DIR) / f"{page}.json"
        self.write = full and os.environ.get(WRITE_RESULTS_ENV, "") == "1"
        self.check = full and os.environ.get(CHECK_RESULTS_ENV, "") == "1"
        self.stored = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def __call__(self, name: str, text: str | None = None) -> str:
        if not self.full:
            if name not in self.stored:
                raise KeyError(f"{self.path.name} has no full-run value for {name!r}; run "
                               f"`python tools/quoted_results.py chapters/{self.page}.md`")
            return self.stored[name]
        if not isinstance(text, str):
            raise TypeError(f"the full run must give {name!r} as the text the prose shows, "
                            f"got {type(text).__name__}")
        if self.write:
            self.stored[name] = text
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.stored, indent=1, sort_keys=True) + "\n")
        elif self.check and self.stored.get(name) != text:
            raise ValueError(
                f"{self.page}: the full run gives {name} = {text!r}, but the prose quotes "
                f"{self.stored.get(name)!r} ({self.path}); if the change is intended, run "
                f"`python tools/quoted_results.py chapters/{self.page}.md`")
        return text
