"""Check an exercise notebook against its visible tests: ``python -m optbook.check NOTEBOOK``.

For students.  Runs the notebook as it is, top to bottom, in a fresh kernel with nbval
(the same runner the grader uses, in a temporary folder), then prints, for every
visible test cell (``metadata.optbook.role == "test"``), PASS or FAIL with the assertion
message or exception, and which other cells raised.  The checks that earn points are
not part of the notebook; they run only when the work is graded (``python -m
optbook.grade``), and only the answer cells of the notebook count there.

Exit status: 0 when every visible test passes, 1 when one fails, 2 when the notebook
cannot be read or run.  ``--grading-mode`` sets ``OPTBOOK_GRADING=1`` as the grader does
(exercises with long experiments then use their reduced setting).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from optbook.grade.judge import cell_labels, failure_message, note_incident, plural
from optbook.grade.merge import code_cell_roles
from optbook.grade.run import CellRun, Limits, run_notebook


def run_checks(path: Path, limits: Limits, grading: bool = False) -> tuple[list[str], bool]:
    """The report's lines and whether every visible test passed."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    roles = code_cell_roles(notebook)
    with tempfile.TemporaryDirectory(prefix="optbook-check-") as tmp:
        copy = Path(tmp) / path.name
        nbformat.write(notebook, copy)
        run = run_notebook(copy, limits, grading=grading)
    if run.timed_out:
        return [f"The notebook ran past {limits.timeout:g} s and was stopped; no result."], False
    if not run.cells:
        return [f"The notebook could not be run (pytest exit code {run.returncode}):", run.log_tail.strip()], False
    return _report(path.name, roles, run.cells, limits)


def _report(name: str, roles, cells: dict[int, CellRun], limits: Limits) -> tuple[list[str], bool]:
    lines = [f"Checking {name}: visible tests only (the graded checks run when your work is graded)"]
    notes: list[str] = []
    passed = total = 0
    for index, (role, where) in enumerate(zip(roles, cell_labels(roles), strict=True)):
        run = cells.get(index, CellRun())
        if role.kind == "test":
            total += 1
            passed += run.passed
            verdict = "PASS" if run.passed else "FAIL"
            detail = "" if run.passed else f": {failure_message(run, limits)}"
            lines.append(f"{verdict}  {role.id} ({plural(role.points, 'point')}){detail}")
        else:
            note_incident(where, run, role, notes, "ok", limits)
    if notes:
        lines += ["Other cells:"] + [f"  {note}" for note in notes]
    lines.append(f"{passed} of {total} visible tests passed." if total else "This notebook has no visible tests.")
    return lines, passed == total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m optbook.check", description=__doc__.split("\n")[0])
    p.add_argument("notebook", type=Path)
    p.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout, help="seconds per cell (default: 120)")
    p.add_argument("--timeout", type=float, default=Limits.timeout, help="seconds in all (default: 600)")
    p.add_argument("--grading-mode", action="store_true", help="set OPTBOOK_GRADING=1 as the grader does")
    args = p.parse_args(argv)
    try:
        lines, ok = run_checks(args.notebook, Limits(args.cell_timeout, args.timeout, None), args.grading_mode)
    except Exception as exc:  # noqa: BLE001 - unreadable notebook, missing file
        print(f"Cannot check {args.notebook}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
