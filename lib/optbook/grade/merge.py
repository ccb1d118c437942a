"""Merge a submission's answers into the pristine exercise, and add the probes.

The merged notebook, in order:

1. a grader cell that caps each cell's printed output (a courtesy; see
   :func:`optbook.grade.probe.cap_output`);
2. every cell of the pristine notebook, with the answer cells' sources taken from the
   submission (nothing else is: editing or deleting other cells changes nothing);
3. one *probe cell* per check of the checks file: the probe's code as a function, and a
   call that sends its value back with a nonce, a random token made for this cell of
   this run (:mod:`optbook.grade.probe`).  The nonce binds a value to its cell: the
   grader accepts only a value sent with it, which the student's code cannot know
   before the cell runs.

Only probes enter the kernel: no check's judge, no reference value.  The notebook is
written to the grader's private run folder, which the sandbox does not show.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass

from optbook.grade.exercise import Exercise, meta

OUTPUT_LIMIT = 1_000_000  # characters a cell may print before the rest is dropped
TRUNCATION_MARK = "\n[optbook grader: output truncated]\n"
GRADER_HEADER = "# optbook grader cell (not part of the exercise)"
PRELUDE = (f"{GRADER_HEADER}\n__import__('optbook.grade.probe', fromlist=['cap_output'])"
           f".cap_output({OUTPUT_LIMIT}, {TRUNCATION_MARK!r})")


@dataclass
class CellRole:
    """What a code cell of the merged notebook is; index k is nbval's ``Cell k``."""

    kind: str  # grader, setup, answer, test (a visible self-check), probe, other
    id: str | None = None
    points: int = 0  # a visible self-check's, as its metadata says (check.py shows them)
    nonce: str | None = None  # probes only


def merge(exercise: Exercise, answers: dict[str, str]) -> tuple[dict, list[CellRole]]:
    """The notebook to run and the role of each of its code cells, in order."""
    import nbformat

    cells = [nbformat.v4.new_code_cell(PRELUDE, metadata={"optbook": {"role": "grader"}})]
    for cell in exercise.notebook.cells:
        new = nbformat.from_dict(copy.deepcopy(dict(cell)))
        m = meta(cell)
        if m.get("role") == "answer" and m.get("id") in answers:
            new.source = answers[m["id"]]
        if new.cell_type == "code":
            new.outputs, new.execution_count = [], None
        cells.append(new)
    for check in exercise.checks:
        nonce = secrets.token_hex(16)
        cells.append(nbformat.v4.new_code_cell(probe_cell_source(check, nonce), metadata={
            "optbook": {"role": "probe", "id": check.id, "nonce": nonce}}))
    notebook = nbformat.v4.new_notebook(metadata=copy.deepcopy(dict(exercise.notebook.metadata)))
    notebook.cells = cells
    return notebook, code_cell_roles(notebook)


def probe_cell_source(check, nonce: str) -> str:
    return (f"# optbook grader: the probe of check {check.id} (not part of the exercise)\n"
            f"{check.probe_function('_optbook_probe')}"
            f"__import__('optbook.grade.probe', fromlist=['send']).send({nonce!r}, _optbook_probe)\n")


def code_cell_roles(notebook) -> list[CellRole]:
    """The role of every code cell, in nbval's ``Cell k`` order."""
    roles = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        m = meta(cell)
        kind = m.get("role") if m.get("role") in ("grader", "setup", "answer", "test", "probe") else "other"
        roles.append(CellRole(kind, m.get("id"), int(m.get("points", 0) or 0), m.get("nonce")))
    return roles
