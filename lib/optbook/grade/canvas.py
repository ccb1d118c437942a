"""Grades for Canvas: fill the gradebook CSV that Canvas exports, for Canvas to import.

Canvas exports its gradebook (*Grades → Export → Export Entire Gradebook*) as a CSV whose
first columns are ``Student`` ("Last, First"), ``ID``, ``SIS User ID``, ``SIS Login ID``
and ``Section``, then one column per assignment (``Name (assignment id)``) and read-only
totals; below the header come one or two rows that are not students (the first cell
``Points Possible``, and on some courses a row about manual posting).  Canvas imports a
CSV of the same shape: the identity columns, then the assignment columns to change (an
existing ``Name (id)`` header updates that assignment; a new name creates one, with the
``Points Possible`` row giving its points), and an empty cell changes nothing.

``python -m optbook.grade SUBMISSIONS/ --out gradebook.csv --canvas EXPORT.csv`` writes
``gradebook-canvas.csv``: every student of the export, the identity columns copied, one
column per exercise the submissions hold (the export's column for it if its name is the
exercise id, otherwise a new one), and the points of every matched student; a student
with no notebook for an exercise gets an empty cell, which Canvas leaves as it was.  The grader's students
(the submission folders' names) are matched with Canvas's by ``SIS Login ID`` (also the
part before ``@``), then ``SIS User ID``, then the name ("Last, First", "First Last" or
"first.last", case, accents and punctuation ignored); a name that matches two Canvas
students matches neither.  Students who match no one are never dropped: they are
printed, and written with their points to ``gradebook-canvas-unmatched.csv``, so that
they can be entered by hand.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from optbook.grade.judge import Result
from optbook.grade.report import write_atomic

IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
POINTS_POSSIBLE = "Points Possible"


MISSING = "missing"  # the gradebook's status of a student with no notebook for an exercise


class CanvasError(Exception):
    """An export that cannot be used; the message names the file and the problem."""


@dataclass
class CanvasExport:
    header: list[str]
    meta_rows: list[list[str]]  # the rows between the header and the first student
    students: list[dict[str, str]]  # identity columns of every student row


@dataclass
class CanvasUpload:
    csv_text: str
    matched: dict[str, int] = field(default_factory=dict)  # grader student -> export row
    unmatched: list[str] = field(default_factory=list)  # grader students with no Canvas row
    without_submission: list[str] = field(default_factory=list)  # Canvas students not graded
    columns: dict[str, str] = field(default_factory=dict)  # exercise -> header used


def read_export(path: Path) -> CanvasExport:
    """The header, the non-student rows and the students of a Canvas gradebook export."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CanvasError(f"{path}: cannot be read as a UTF-8 CSV ({exc})") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise CanvasError(f"{path}: empty file; export the gradebook from Canvas (Grades → Export)")
    header = [h.strip() for h in rows[0]]
    absent = [c for c in IDENTITY if c not in header]
    if absent:
        raise CanvasError(f"{path}: not a Canvas gradebook export: no column {', '.join(map(repr, absent))} "
                          f"in its header ({', '.join(header[:6])}…)")
    meta, students = [], []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        row = row + [""] * (len(header) - len(row))
        record = dict(zip(header, row))
        first = record["Student"].strip()
        if not students and (first in ("", POINTS_POSSIBLE) or not record["ID"].strip()):
            meta.append(row)
            continue
        if first == "Student, Test":  # Canvas's test student (student view)
            continue
        if not first and not record["ID"].strip():
            raise CanvasError(f"{path}, line {number}: a row with neither a student name nor an ID")
        students.append({c: record[c] for c in IDENTITY})
    return CanvasExport(header, meta, students)


def normalise(name: str) -> str:
    """Letters and digits only, lower case, accents removed: 'Müller-Lüdenscheidt' → 'mullerludenscheidt'."""
    decomposed = unicodedata.normalize("NFKD", name)
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in decomposed if not unicodedata.combining(c)).lower())


def keys_of(student: dict[str, str]) -> list[tuple[str, str]]:
    """(kind, key) pairs by which a Canvas student can be found, strongest first."""
    keys = []
    login = student["SIS Login ID"].strip()
    if login:
        keys += [("login", normalise(login)), ("login", normalise(login.split("@")[0]))]
    if student["SIS User ID"].strip():
        keys.append(("sis", normalise(student["SIS User ID"])))
    name = student["Student"].strip()
    if "," in name:
        last, first = (part.strip() for part in name.split(",", 1))
        keys += [("name", normalise(last + first)), ("name", normalise(first + last))]
    elif name:
        keys.append(("name", normalise(name)))
    return [(kind, key) for kind, key in keys if key]


def match(grader_students: list[str], export: CanvasExport) -> tuple[dict[str, int], list[str]]:
    """Grader student → index of their Canvas row; and the grader students matched to none.

    A key that two Canvas students share identifies neither; the strongest kind of key
    that finds exactly one student wins (login, then SIS user id, then name)."""
    index: dict[tuple[str, str], set[int]] = {}
    for i, student in enumerate(export.students):
        for key in keys_of(student):
            index.setdefault(key, set()).add(i)
    matched, unmatched, taken = {}, [], set()
    for student in grader_students:
        wanted = normalise(student)
        found = None
        for kind in ("login", "sis", "name"):
            rows = index.get((kind, wanted), set())
            if len(rows) == 1:
                found = next(iter(rows))
                break
            if len(rows) > 1:
                break  # ambiguous: do not guess
        if found is None or found in taken:
            unmatched.append(student)
        else:
            matched[student] = found
            taken.add(found)
    return matched, unmatched


def upload(results: list[Result], export: CanvasExport) -> CanvasUpload:
    """The CSV for Canvas's import: identity columns, one column per exercise."""
    # Only the exercises this collection holds (an exercise nobody handed in is not part of
    # it), and no 0 for a missing notebook: an empty cell changes nothing in Canvas, so
    # grading one assignment never overwrites the grades of another.
    exercises = sorted({r.exercise for r in results if r.status != MISSING})
    max_points = {r.exercise: r.max_points for r in results}
    existing = {re.sub(r"\s*\(\d+\)$", "", h).strip(): h for h in export.header[len(IDENTITY):]}
    columns = {e: existing.get(e, e) for e in exercises}
    students = sorted({r.student for r in results})
    matched, unmatched = match(students, export)
    points = {(r.student, r.exercise): r.points for r in results if r.status != MISSING}
    rows = [IDENTITY + [columns[e] for e in exercises]]
    for meta in export.meta_rows:
        record = dict(zip(export.header, meta))
        if record["Student"].strip() == POINTS_POSSIBLE:
            rows.append([record[c] for c in IDENTITY] +
                        [record.get(columns[e]) or str(max_points[e]) for e in exercises])
    by_row = {i: s for s, i in matched.items()}
    for i, student in enumerate(export.students):
        who = by_row.get(i)
        rows.append([student[c] for c in IDENTITY] +
                    ["" if who is None else str(points.get((who, e), "")) for e in exercises])
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    without = [export.students[i]["Student"] for i in range(len(export.students)) if i not in by_row]
    return CanvasUpload(buffer.getvalue(), matched, unmatched, without, columns)


def unmatched_csv(results: list[Result], unmatched: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", "exercise", "points", "max_points", "status"])
    writer.writerows([r.student, r.exercise, r.points, r.max_points, r.status]
                     for r in sorted(results, key=lambda r: (r.student, r.exercise)) if r.student in unmatched)
    return buffer.getvalue()


def write_canvas(results: list[Result], export_path: Path, out: Path) -> CanvasUpload:
    """``<out stem>-canvas.csv`` (and ``-canvas-unmatched.csv`` when someone is unmatched)."""
    made = upload(results, read_export(export_path))
    write_atomic(canvas_path(out), made.csv_text)
    unmatched_path = out.with_name(f"{out.stem}-canvas-unmatched.csv")
    if made.unmatched:
        write_atomic(unmatched_path, unmatched_csv(results, made.unmatched))
    elif unmatched_path.exists():
        unmatched_path.unlink()
    return made


def canvas_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}-canvas.csv")
