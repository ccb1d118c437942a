"""Write the grader's test fixtures: the T-demo exercise and sample submissions.

Run from the repository root: ``.venv/bin/python tests/grading_fixtures/make_fixtures.py``.
The checks file (``hidden/T-demo.py``) is written by hand.  The expected outcome of every
submission is asserted in ``tests/test_grade.py``, which also writes the hostile ones.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
ANSWER_HEADER = "# YOUR ANSWER (this cell is graded)\n"


def _md(text, role="instructions", **extra):
    return new_markdown_cell(text, metadata={"optbook": {"role": role, **extra}})


def _answer(answer_id, body):
    return new_code_cell(ANSWER_HEADER + body, metadata={"optbook": {"role": "answer", "id": answer_id},
                                                         "tags": ["answer"]})


def exercise() -> nbformat.NotebookNode:
    nb = new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    nb.cells = [
        _md("# T-demo: one gradient-descent step\n\n"
            "A tiny exercise for testing the grader. We minimise $f(w) = w^2$, whose gradient is "
            "$f'(w) = 2w$, starting from $w_0$ = `W0` with learning rate $\\alpha$ = `ALPHA`."),
        new_code_cell(
            "import numpy as np\n\n"
            "W0, ALPHA = 5.0, 0.1  # start and learning rate (α)\n\n\n"
            "def close_enough(actual, expected, tol=1e-9):\n"
            "    \"\"\"True when actual equals expected within tol, elementwise.\"\"\"\n"
            "    return np.allclose(actual, expected, rtol=0, atol=tol)",
            metadata={"optbook": {"role": "setup"}}),
        _md("**a1.** How far does the first gradient-descent step move $w$? "
            "Set `step_size` to $\\alpha\\,|f'(w_0)|$ (a number)."),
        _answer("a1", "step_size = ...\n"),
        _md("**a2.** Write `gd_step(w, lr)`, one gradient-descent step on $f$. "
            "It must also work on NumPy arrays."),
        _answer("a2", "def gd_step(w, lr):\n"
                      "    raise NotImplementedError(\"write one gradient-descent step for f(w) = w²\")\n"),
        new_code_cell("# Self-check: run this cell after a2.\n"
                      "assert close_enough(gd_step(1.0, 0.25), 0.5), \"gd_step(1.0, 0.25) should return 0.5\"\n",
                      metadata={"optbook": {"role": "test", "id": "t-gd-step-small", "points": 1, "visible": True},
                                "tags": ["test"]}),
        _md("**a3.** In one or two sentences: why does $\\alpha = 1.5$ make gradient descent diverge "
            "on $f(w) = w^2$?"),
        new_markdown_cell("*Your answer here.*", metadata={
            "optbook": {"role": "answer", "id": "a3", "kind": "prose"}, "tags": ["answer"]}),
    ]
    return nb


CORRECT = {
    "a1": ANSWER_HEADER + "step_size = ALPHA * abs(2 * W0)\n",
    "a2": ANSWER_HEADER + "def gd_step(w, lr):\n    return w - lr * 2 * w\n",
    "a3": "Each step multiplies w by 1 − 2α = −2, so |w| doubles every step.",
}


def submission(answers: dict, drop: tuple = (), edit=None) -> nbformat.NotebookNode:
    """The exercise with `answers` filled in, answer cells in `drop` deleted, then `edit`ed."""
    nb = copy.deepcopy(exercise())
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.get("optbook", {})
        if meta.get("role") == "answer":
            if meta["id"] in drop:
                continue
            cell.source = answers.get(meta["id"], cell.source)
        cells.append(cell)
    nb.cells = cells
    if edit:
        edit(nb)
    return nb


def _tamper_with_tests(nb):
    for cell in nb.cells:
        if cell.metadata.get("optbook", {}).get("role") == "test":
            cell.source = "assert True  # my own version of the check"
    nb.cells.append(new_code_cell("pass", metadata={
        "optbook": {"role": "test", "id": "h-step-size", "points": 100, "visible": False}}))
    nb.cells = [c for c in nb.cells if c.metadata.get("optbook", {}).get("role") != "instructions"]


MONKEYPATCH = ANSWER_HEADER + """import builtins, math
import numpy as np

np.allclose = lambda *args, **kwargs: True     # every comparison "passes"
math.isclose = lambda *args, **kwargs: True
builtins.abs = lambda x: 0.0
close_enough = lambda *args, **kwargs: True   # the notebook's own assert helper


def isinstance(obj, types):                    # shadows the builtin
    return True


step_size = 0.0
"""

SUBMISSIONS = {
    "alice/T-demo.ipynb": submission(CORRECT),
    "bob__T-demo.ipynb": submission({**CORRECT, "a1": ANSWER_HEADER + "step_size = abs(2 * W0)  # forgot α\n"}),
    "carol/T-demo.ipynb": submission(
        {**CORRECT, "a2": ANSWER_HEADER + "def gd_step(w, lr):\n    return w - lr * w\n"}, edit=_tamper_with_tests),
    "dave__T-demo.ipynb": submission({"a1": MONKEYPATCH, "a2": ANSWER_HEADER + "def gd_step(w, lr):\n    return w\n"}),
    "erin/T-demo.ipynb": submission({**CORRECT, "a1": ANSWER_HEADER + (
        "step_size = 0.0\nwhile step_size != 1.0:  # 0.1 added ten times is not exactly 1.0\n"
        "    step_size += ALPHA\n")}),
    "frank__T-demo.ipynb": submission({**CORRECT, "a1": ANSWER_HEADER + (
        "import sys\nsys.exit(\"stopping here\")\nstep_size = ALPHA * abs(2 * W0)\n")}),
    "grace/T-demo.ipynb": submission({**CORRECT, "a2": ANSWER_HEADER + "import os\nos._exit(1)\n"}),
    "ivan/T-demo.ipynb": submission(CORRECT, drop=("a2",)),
    "judy__T-demo.ipynb": submission({**CORRECT, "a1": CORRECT["a1"] + (
        "for _ in range(50):\n    print(\"x\" * 1_000_000)  # 50 MB in all\n")}),
}
MALFORMED = {"heidi__T-demo.ipynb": '{"cells": [{"cell_type": "code", "source": "step_size = 1.0"}\n'}


def main() -> None:
    nbformat.write(exercise(), HERE / "exercises" / "T-demo.ipynb")
    for name, nb in SUBMISSIONS.items():
        path = HERE / "submissions" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
    for name, text in MALFORMED.items():
        (HERE / "submissions" / name).write_text(text)


if __name__ == "__main__":
    main()
