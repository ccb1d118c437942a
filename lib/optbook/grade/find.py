"""Find the submissions and read their answer cells.

Submissions are ``SUBMISSIONS/<student>/<exercise>.ipynb`` or
``SUBMISSIONS/<student>__<exercise>.ipynb``.  Names must be plain (letters, digits, ``.``,
``_``, ``-``); symbolic links, odd names, unknown exercises and a student's second file
for one exercise are rejected, each with a reason, never dropped in silence.  Only the
*answer cells* (by ``metadata.optbook.id``) are read from a submission.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from optbook.grade.exercise import NAME_RE, Exercise, meta, valid_text

SUBMISSION_SIZE_LIMIT = 100 * 2**20


@dataclass
class Submission:
    student: str
    exercise: str
    path: Path


@dataclass
class Rejection:
    """An entry of the submissions folder that is not graded, and why."""

    name: str  # the student (or the entry's name), printable
    exercise: str
    why: str


class MalformedSubmission(Exception):
    pass


def discover(root: Path, exercise_ids: set[str]) -> tuple[list[Submission], list[Rejection], list[str]]:
    """Submissions under ``root``, rejected entries, and the valid student names."""
    found: list[Submission] = []
    rejected: list[Rejection] = []
    students: set[str] = set()
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            rejected.append(_rejection(entry.name, "?", "symbolic links are not accepted"))
        elif entry.is_dir():
            if _valid_student(entry.name, rejected):
                students.add(entry.name)
                try:
                    files = sorted(entry.iterdir(), key=lambda p: p.name)
                except OSError as exc:
                    rejected.append(_rejection(entry.name, "?", f"the folder cannot be read ({exc.strerror})"))
                    continue
                for file in files:
                    _add_file(file, entry.name, file.name, exercise_ids, found, rejected)
        elif entry.name.endswith(".ipynb"):
            student, sep, exercise_file = entry.name.rpartition("__")
            if not sep:
                rejected.append(_rejection(entry.name, "?", "expected <student>__<exercise>.ipynb"))
            elif _valid_student(student, rejected, exercise_file.removesuffix(".ipynb")):
                students.add(student)
                _add_file(entry, student, exercise_file, exercise_ids, found, rejected)
    return _drop_duplicates(found, rejected, root), rejected, sorted(students)


def _rejection(name: str, exercise: str, why: str) -> Rejection:
    return Rejection(ascii(name)[1:-1], ascii(exercise)[1:-1], why)


def _valid_student(name: str, rejected: list[Rejection], exercise: str = "?") -> bool:
    if NAME_RE.fullmatch(name) and "__" not in name:
        return True
    rejected.append(_rejection(name, exercise, "student names may only use letters, digits, '.', '_' and '-'"))
    return False


def _add_file(path: Path, student: str, filename: str, exercise_ids: set[str],
              found: list[Submission], rejected: list[Rejection]) -> None:
    if filename.startswith(".") or not filename.endswith(".ipynb"):
        return  # checkpoints, notes and other files are not submissions
    exercise = filename.removesuffix(".ipynb")
    if path.is_symlink() or not path.is_file():
        rejected.append(_rejection(student, exercise, "not a regular file (symbolic links are not accepted)"))
    elif exercise not in exercise_ids:
        rejected.append(_rejection(student, exercise, "unknown exercise"))
    else:
        found.append(Submission(student, exercise, path))


def _drop_duplicates(found: list[Submission], rejected: list[Rejection], root: Path) -> list[Submission]:
    by_pair: dict[tuple[str, str], list[Submission]] = {}
    for sub in found:
        by_pair.setdefault((sub.student, sub.exercise), []).append(sub)
    unique = []
    for (student, exercise), subs in by_pair.items():
        if len(subs) == 1:
            unique.append(subs[0])
        else:
            names = " and ".join(s.path.relative_to(root).as_posix() for s in subs)
            rejected.append(_rejection(student, exercise, f"two submissions ({names})"))
    return unique


def read_answers(path: Path, exercise: Exercise) -> tuple[dict[str, str], list[str]]:
    """The submission's answer cells by id, and notes (missing or doubled cells)."""
    import nbformat

    try:
        if path.stat().st_size > SUBMISSION_SIZE_LIMIT:
            raise MalformedSubmission(f"file larger than {SUBMISSION_SIZE_LIMIT // 2**20} MiB")
        text = path.read_bytes().decode("utf-8")
        data = json.loads(text)
    except OSError as exc:
        raise MalformedSubmission(f"the file cannot be read ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise MalformedSubmission("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise MalformedSubmission(f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise MalformedSubmission("invalid JSON (nested too deeply)") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise MalformedSubmission("not a Jupyter notebook (no list of cells)")
    try:
        notebook = nbformat.from_dict(data) if data.get("nbformat") == 4 else nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds
        raise MalformedSubmission(f"not a Jupyter notebook ({type(exc).__name__})") from None
    answers: dict[str, str] = {}
    notes: list[str] = []
    for cell in notebook.get("cells", []):
        if not isinstance(cell, dict):
            continue
        m = meta(cell)
        answer_id = m.get("id")
        if m.get("role") != "answer" or answer_id not in exercise.answer_ids:
            continue
        if answer_id in answers:
            notes.append(f"answer cell {answer_id} appears twice: the first one was used")
            continue
        text = cell.get("source", "")
        if isinstance(text, list) and all(isinstance(line, str) for line in text):
            text = "".join(text)
        if not isinstance(text, str):
            raise MalformedSubmission(f"answer cell {answer_id}: its source is not text")
        answers[answer_id] = valid_text(text)
        if answers[answer_id] != text:
            notes.append(f"answer cell {answer_id} holds text that is not valid Unicode (lone surrogates): "
                         "each was replaced by U+FFFD")
    for answer_id in exercise.answer_ids:
        if answer_id not in answers:
            notes.append(f"missing answer cell {answer_id}: the template was used")
    return answers, notes
