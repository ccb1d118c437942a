"""An exercise as the grader sees it: the pristine notebook and its checks file.

Every cell of an exercise notebook carries ``metadata.optbook`` with a role
(``instructions``, ``setup``, ``answer``, ``test``; see ``exercises/README.md``).  The
graded checks are in ``<checks folder>/<id>.py`` (``solutions/hidden/``), written as
:mod:`optbook.grade.checks` describes, and imported here, in the grader's process.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from optbook.grade.checks import Check, ChecksError, load_checks

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # exercise and student names
SURROGATE_RE = re.compile("[\ud800-\udfff]")


class ExerciseError(Exception):
    pass


@dataclass
class Exercise:
    """A pristine exercise notebook with its graded checks."""

    id: str
    notebook: dict
    fingerprint: str  # hash of the pristine notebook and the checks file
    checks: list[Check]  # in the checks file's order; each judged in the grader's process
    visible: set[str]  # ids of the notebook's visible test cells
    answer_ids: list[str]
    prose_ids: list[str]

    @property
    def max_points(self) -> int:
        return sum(c.points for c in self.checks)


def meta(cell: dict) -> dict:
    """A cell's ``metadata.optbook`` (empty if it has none, or if a submission's cell has
    something else than a dict where the metadata go)."""
    metadata = cell.get("metadata") if isinstance(cell, dict) else None
    value = metadata.get("optbook") if isinstance(metadata, dict) else None
    return value if isinstance(value, dict) else {}


def valid_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD.  JSON can carry them
    (``"\\ud800"``), from a submission or from the kernel, and no UTF-8 file can hold
    them: a report that held one could not be written."""
    return SURROGATE_RE.sub("\ufffd", text)


def source(cell: dict) -> str:
    value = cell.get("source", "")
    return "".join(value) if isinstance(value, list) else str(value)


def load_exercise(path: Path, checks_dir: Path | None) -> Exercise:
    """Read ``<id>.ipynb`` and import ``<checks_dir>/<id>.py`` into an Exercise
    (``checks_dir=None``: the notebook alone, for the student's self-check)."""
    import nbformat

    raw = path.read_bytes()
    notebook = nbformat.reads(raw.decode("utf-8"), as_version=4)
    checks_path = checks_dir / f"{path.stem}.py" if checks_dir else None
    try:
        checks, checks_raw = load_checks(checks_path) if checks_path and checks_path.exists() else ([], b"")
    except ChecksError as exc:
        raise ExerciseError(str(exc)) from None
    by_id = {c.id: c for c in checks}
    visible: dict[str, int] = {}
    answers, prose = [], []
    for cell in notebook.cells:
        m = meta(cell)
        if m.get("role") == "test":
            test_id, points = str(m["id"]), int(m.get("points", 0))
            if test_id in visible:
                raise ExerciseError(f"{path.name}: test id used twice: {test_id}")
            visible[test_id] = points
            twin = by_id.get(test_id)
            worth = f"{points} point{'' if points == 1 else 's'}"
            if points and twin is None and checks_dir:
                raise ExerciseError(
                    f"{path.name}: the visible check {test_id} is worth {worth} but {checks_path} has no check of "
                    "that id: a verdict reached in the student's kernel could be forged, so its points must "
                    "come from a check in the checks file")
            if twin is not None and twin.points != points:
                raise ExerciseError(f"{path.name}: the visible check {test_id} is worth {worth} in the notebook "
                                    f"and {twin.points} in {checks_path.name}")
        elif m.get("role") == "answer":
            answer_id = str(m["id"])
            if answer_id in answers:
                raise ExerciseError(f"{path.name}: answer id used twice: {answer_id}")
            answers.append(answer_id)
            if cell.cell_type != "code" or m.get("kind") == "prose":
                prose.append(answer_id)
    fingerprint = hashlib.sha256(raw + b"\0" + checks_raw).hexdigest()
    from optbook.grade.visible import format_checks  # 0-point visible checks, reported too

    checks = checks + format_checks(notebook, set(by_id))
    return Exercise(path.stem, notebook, fingerprint, checks, set(visible), answers, prose)


def load_exercises(exercises_dir: Path, checks_dir: Path) -> dict[str, Exercise | str]:
    """Every exercise by id; an exercise that cannot be loaded maps to its error text."""
    exercises: dict[str, Exercise | str] = {}
    for path in sorted(exercises_dir.glob("*.ipynb")):
        if not NAME_RE.fullmatch(path.stem):
            continue
        try:
            exercises[path.stem] = load_exercise(path, checks_dir)
        except Exception as exc:  # noqa: BLE001 - recorded in every row of that exercise
            exercises[path.stem] = f"exercise {path.name} cannot be used: {type(exc).__name__}: {exc}"
    return exercises
