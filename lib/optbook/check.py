"""Check an exercise notebook as the grader will: ``python -m optbook.check NOTEBOOK``.

For students.  The grader takes only the *answer cells* of a notebook and puts them
into the notebook as it was handed out; every other cell (imports or helpers in a cell
of their own, edited checks) is ignored.  This command does the same with the grader's
own code (:func:`optbook.grade.find.read_answers`, :func:`optbook.grade.merge.merge`):
it reads the answer cells of NOTEBOOK, merges them into the pristine exercise, runs the
result top to bottom with nbval in a fresh kernel in a temporary folder, in the
grader's setting (``OPTBOOK_GRADING=1``: long experiments take their short setting),
and prints every visible self-check, ``PASS`` or ``FAIL`` with its message and the
likely cause, so that each visible check gets the verdict the grader will give it.  It
also says which of your cells the grader ignores and which names your answers take
from them.  The checks that earn most of the points are not in the notebook; they run
only when the work is graded (``python -m optbook.grade``).

The pristine exercise is ``<id>.ipynb`` (the id is in the notebook's metadata) in the
folder given with ``--exercises``, by default the ``exercises/`` folder of the checkout
this module lives in.  When NOTEBOOK *is* that file (edited in place), its committed
version (git's ``HEAD``) is used; without one, NOTEBOOK itself, and the report says that
its own cells could not be compared.

Exit status: 0 when every visible check passes, 1 when one fails, 2 when the notebook
cannot be read or run (no exercise found, not a notebook, past ``--timeout``).  ``--as-written`` runs without ``OPTBOOK_GRADING`` (full-size
experiments).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import subprocess
import sys
import tempfile
from pathlib import Path

from optbook.grade.exercise import Exercise, load_exercise, meta, source
from optbook.grade.find import read_answers
from optbook.grade.judge import cell_labels, failure_message, note_incident, plural
from optbook.grade.merge import CellRole, merge
from optbook.grade.run import CellRun, Limits, run_notebook

CHECKOUT = Path(__file__).resolve().parents[2]
SUMMARY_PASS = "{passed} of {total} visible checks passed; more checks run when graded."
SUMMARY_FAIL = "{passed} of {total} visible checks passed; fix the failures above (more checks run when graded)."


class CheckError(Exception):
    """The notebook or its exercise cannot be used; the message says why."""


@dataclasses.dataclass
class Pristine:
    exercise: Exercise
    where: str  # how the report names it
    compared: bool = True  # False: NOTEBOOK itself (its own cells cannot be compared)


def exercise_id(notebook: dict, path: Path) -> str:
    """The notebook's exercise id: its metadata's, else its file name's (as the grader
    names submissions: ``<id>.ipynb`` or ``<student>__<id>.ipynb``)."""
    value = notebook.get("metadata", {}).get("optbook", {})
    value = value.get("exercise") if isinstance(value, dict) else None
    return value if isinstance(value, str) and value else path.stem.rpartition("__")[2]


def find_pristine(path: Path, ex_id: str, exercises: Path | None, tmp: Path) -> Pristine:
    folder = exercises or CHECKOUT / "exercises"
    candidate = folder / f"{ex_id}.ipynb"
    if not candidate.is_file():
        hint = "" if exercises else " (give the folder of the handed-out notebooks with --exercises)"
        raise CheckError(f"no exercise {ex_id!r}: {candidate} not found{hint}")
    if not candidate.resolve().samefile(path.resolve()):
        return Pristine(load_exercise(candidate, None), str(candidate))
    committed = _committed(candidate)
    if committed is not None:
        copy = tmp / "pristine" / candidate.name
        copy.parent.mkdir()
        copy.write_bytes(committed)
        return Pristine(load_exercise(copy, None), f"{candidate} as committed (git HEAD)")
    return Pristine(load_exercise(candidate, None), str(candidate), compared=False)


def _committed(path: Path) -> bytes | None:
    """The file as committed in git's HEAD, or None (no git, not tracked)."""
    try:
        top = subprocess.run(["git", "-C", str(path.parent), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, timeout=20)
        if top.returncode:
            return None
        relative = path.resolve().relative_to(Path(top.stdout.strip()).resolve()).as_posix()
        shown = subprocess.run(["git", "-C", top.stdout.strip(), "show", f"HEAD:{relative}"],
                               capture_output=True, timeout=20)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return shown.stdout if shown.returncode == 0 else None


# ------------------------------------------------------------- cells the grader ignores
@dataclasses.dataclass
class Ignored:
    """A code cell of the submission that the grader does not collect."""

    number: int  # 1-based, counting the notebook's code cells
    first_line: str
    defines: set[str]
    edited: str | None = None  # the id of the setup or check cell it replaces, if any

    def label(self) -> str:
        return f"code cell {self.number} (`{self.first_line}`)"


def defined_names(code: str) -> set[str]:
    """Top-level names a cell binds: imports, assignments, functions, classes."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.With)):
            targets = (node.targets if isinstance(node, ast.Assign) else
                       [i.optional_vars for i in node.items if i.optional_vars] if isinstance(node, ast.With)
                       else [node.target])
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def used_names(code: str) -> set[str]:
    try:
        return {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)}
    except SyntaxError:
        return set()


def ignored_cells(notebook: dict, exercise: Exercise) -> list[Ignored]:
    """The submission's code cells that the grader ignores: added cells, and setup or
    check cells that differ from the pristine ones (blank cells left out)."""
    pristine = {}
    for cell in exercise.notebook.cells:
        if cell.get("cell_type") == "code" and meta(cell).get("role") != "answer":
            pristine[source(cell).strip()] = meta(cell)
    by_id = {meta(c).get("id"): source(c).strip() for c in exercise.notebook.cells if meta(c).get("id")}
    found, number = [], 0
    for cell in notebook.get("cells", []):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        number += 1
        m, code = meta(cell), source(cell).strip()
        if (m.get("role") == "answer" and m.get("id") in exercise.answer_ids) or not code or code in pristine:
            continue
        first = next((line.strip() for line in code.splitlines() if line.strip()), "")
        first = first if len(first) <= 60 else first[:57] + "..."
        edited = m.get("id") if m.get("role") == "test" and m.get("id") in by_id else (
            "setup" if m.get("role") == "setup" else None)
        found.append(Ignored(number, first, defined_names(code), edited))
    return found


def lost_names(ignored: list[Ignored], exercise: Exercise, answers: dict[str, str]) -> dict[str, list[str]]:
    """For each name that answer cells use and only an ignored cell defines: the
    answers that use it."""
    pristine_defs = set()
    for cell in exercise.notebook.cells:
        if cell.get("cell_type") == "code" and meta(cell).get("role") == "setup":
            pristine_defs |= defined_names(source(cell))
    answer_defs = set().union(*(defined_names(a) for a in answers.values())) if answers else set()
    lost: dict[str, list[str]] = {}
    for cell in ignored:
        for name in sorted(cell.defines - pristine_defs - answer_defs):
            users = [a for a, code in answers.items() if name in used_names(code)]
            if users:
                lost[name] = users
    return lost


# ----------------------------------------------------------------------- the check
def run_checks(path: Path, limits: Limits, grading: bool = True,
               exercises: Path | None = None) -> tuple[list[str], bool | None]:
    """The report's lines and whether every visible check passed (None: the notebook
    could not be run to its end).  CheckError (or any error reading the files) when the
    notebook cannot be checked."""
    import json

    import nbformat

    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckError(f"not a readable notebook ({type(exc).__name__}: {exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise CheckError("not a Jupyter notebook (no list of cells)")
    ex_id = exercise_id(raw, path)
    with tempfile.TemporaryDirectory(prefix="optbook-check-") as tmp:
        tmp = Path(tmp)
        pristine = find_pristine(path, ex_id, exercises, tmp)
        exercise = dataclasses.replace(pristine.exercise, checks=[])  # visible checks only
        answers, notes = read_answers(path, exercise)  # the grader's reader (MalformedSubmission)
        ignored = ignored_cells(raw, exercise) if pristine.compared else []
        notebook, roles = merge(exercise, answers)  # the grader's merge
        folder = tmp / "run"
        folder.mkdir()
        merged = folder / f"{exercise.id}.ipynb"
        nbformat.write(notebook, merged)
        run = run_notebook(merged, limits, grading=grading)
    head = [f"Checking {path.name} as the grader will: its answer cells in {pristine.where}"
            + ("" if grading else ", run as written (not in the grader's short setting)")]
    if path.name.rpartition("__")[2] != f"{ex_id}.ipynb":
        head.append(f"Note: the grader finds this notebook by its name; hand it in as {ex_id}.ipynb.")
    if not pristine.compared:
        head.append("Note: no copy of the notebook as handed out was found, so cells you added or changed "
                    "outside the answer cells could not be found; the grader ignores them.")
    head += [f"Note: {n}." for n in notes]
    head += ignored_lines(ignored, lost_names(ignored, exercise, answers))
    if run.timed_out:
        return head + [f"The notebook ran past {limits.timeout:g} s and was stopped; no result."], None
    if not run.cells:
        return head + [f"The notebook could not be run (pytest exit code {run.returncode}):",
                       run.log_tail.strip()], None
    lines, ok = report(roles, run.cells, limits, exercise, answers, ignored)
    return head + lines, ok


def ignored_lines(ignored: list[Ignored], lost: dict[str, list[str]]) -> list[str]:
    if not ignored:
        return []
    lines = ["Not graded: the grader collects only the answer cells, so it ignores"]
    for cell in ignored:
        what = (f"the setup cell, which you changed (it runs as handed out)" if cell.edited == "setup" else
                f"check {cell.edited}, which you changed (it runs as handed out)" if cell.edited else
                "a cell you added")
        lines.append(f"  {cell.label()}: {what}")
    for name, users in lost.items():
        lines.append(f"  {name}, used in answer {', '.join(users)}, is defined only there: when graded it is "
                     f"not defined. Move its definition (e.g. the import) into answer {users[0]}.")
    return lines


def report(roles: list[CellRole], cells: dict[int, CellRun], limits: Limits, exercise: Exercise,
           answers: dict[str, str], ignored: list[Ignored]) -> tuple[list[str], bool]:
    lines: list[str] = []
    notes: list[str] = []
    raised: dict[str, CellRun] = {}
    passed = total = 0
    for index, (role, where) in enumerate(zip(roles, cell_labels(roles), strict=True)):
        run = cells.get(index, CellRun())
        if role.kind == "answer" and run.ran and not run.passed:
            raised[role.id] = run
        if role.kind != "test":
            note_incident(where, run, role, notes, "ok", limits)
            continue
        total += 1
        passed += run.passed
        if run.passed:
            lines.append(f"PASS  {role.id} ({plural(role.points, 'point')})")
            continue
        lines.append(f"FAIL  {role.id} ({plural(role.points, 'point')}): {failure_message(run, limits)}")
        cause = likely_cause(run, exercise, answers, raised, ignored)
        if cause:
            lines.append(f"      likely cause: {cause}")
    if notes:
        lines += ["Other cells:"] + [f"  {note}" for note in notes]
    if not total:
        lines.append("This notebook has no visible checks.")
    else:
        lines.append((SUMMARY_PASS if passed == total else SUMMARY_FAIL).format(passed=passed, total=total))
    return lines, passed == total


def likely_cause(run: CellRun, exercise: Exercise, answers: dict[str, str], raised: dict[str, CellRun],
                 ignored: list[Ignored]) -> str:
    """What most likely made a visible check fail, beyond its own message ('' if
    nothing more can be said): an answer still holding its template, an answer cell
    that raised (and why: a name defined only in an ignored cell), a placeholder ``...``."""
    if run.ename == "NotImplementedError":
        return "an answer cell still holds its template (raise NotImplementedError): write that answer."
    if run.ename == "NameError":
        name = run.evalue.split("'")[1] if run.evalue.count("'") >= 2 else ""
        for answer_id, code in answers.items():
            if name in defined_names(code) and answer_id in raised:
                why = raised[answer_id]
                text = f"answer {answer_id} raised {why.ename}: {why.evalue}"
                if why.ename == "NameError" and why.evalue.count("'") >= 2:
                    missing = why.evalue.split("'")[1]
                    where = [c.label() for c in ignored if missing in c.defines]
                    if where:
                        text += (f" ({missing} is defined only in {where[0]}, which the grader ignores: "
                                 f"move it into answer {answer_id})")
                return text + f", so {name} was never defined."
        where = [c.label() for c in ignored if name in c.defines]
        if where:
            return f"{name} is defined only in {where[0]}, which the grader ignores; define it in an answer cell."
    if "ellipsis" in run.evalue.lower() and "still ..." not in run.evalue:
        return "an answer still holds the template's placeholder `...`."
    return ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m optbook.check", description=__doc__.split("\n")[0])
    p.add_argument("notebook", type=Path)
    p.add_argument("--exercises", type=Path, help="the folder of the notebooks as handed out "
                                                  "(default: exercises/ of this checkout)")
    p.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout, help="seconds per cell (default: 120)")
    p.add_argument("--timeout", type=float, default=Limits.timeout, help="seconds in all (default: 600)")
    p.add_argument("--as-written", action="store_true",
                   help="run without OPTBOOK_GRADING=1 (full-size experiments; the grader sets it)")
    p.add_argument("--grading-mode", action="store_true", help=argparse.SUPPRESS)  # the default now
    args = p.parse_args(argv)
    try:
        lines, ok = run_checks(args.notebook, Limits(args.cell_timeout, args.timeout, None),
                               grading=not args.as_written, exercises=args.exercises)
    except Exception as exc:  # noqa: BLE001 - unreadable notebook, missing file or exercise
        print(f"Cannot check {args.notebook}: {exc if isinstance(exc, CheckError) else f'{type(exc).__name__}: {exc}'}",
              file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 2 if ok is None else 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
