"""What the grader writes: the gradebook, feedback per student, the prose answers, and
the cache a rerun resumes from.

Every file is written whole to a temporary file in its folder and then renamed over the
old one (atomic on POSIX): a grader that is stopped half-way leaves the previous version
or the new one, never a torn file.  None of these folders is visible to student code.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import threading
from pathlib import Path

from optbook.grade.judge import MESSAGE_LIMIT, Result, clip, plural

CSV_COLUMNS = ["student", "exercise", "points", "max_points", "status", "sandbox", "reason", "checks"]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        # backslashreplace: a lone surrogate that got this far is written as \udxxx, not a crash
        with open(tmp, "w", encoding="utf-8", errors="backslashreplace", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _csv(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def gradebook_csv(results: list[Result]) -> str:
    rows = [CSV_COLUMNS] + [
        [r.student, r.exercise, r.points, r.max_points, r.status, r.sandbox, r.reason,
         " ".join(f"{c.id}:{'pass' if c.passed else 'fail'}" for c in r.checks)] for r in results]
    return _csv(rows)


def prose_csv(rows: list[tuple[str, str, str, str]]) -> str:
    return _csv([["student", "exercise", "answer_id", "text"], *rows])


def feedback_markdown(student: str, results: list[Result]) -> str:
    """What the student sees: points, which checks failed and why; never check code."""
    lines = [f"# Feedback for {student}", ""]
    for r in results:
        lines += [f"## {r.exercise}: {r.points}/{r.max_points} points", "", f"Status: {r.status}.", ""]
        if r.notes:
            lines += ["Notes:", ""] + [f"- {' '.join(n.split())}" for n in r.notes] + [""]
        if r.checks:
            lines += ["| check | kind | points | result |", "|---|---|---|---|"]
            lines += [f"| {c.id} | {'visible' if c.visible else 'hidden'} | {c.points}/{c.max_points} | "
                      f"{'passed' if c.passed else 'failed'} |" for c in r.checks]
            lines.append("")
        failed = [c for c in r.checks if not c.passed]
        if failed and r.status not in ("missing", "malformed", "timeout"):
            lines += ["Failed checks:", ""]
            for c in failed:
                message = clip(c.message, MESSAGE_LIMIT)
                fence = "`" * max(3, 1 + _longest_backtick_run(message))  # the message cannot close it
                lines += [f"- **{c.id}** ({plural(c.max_points, 'point')}):", "", f"  {fence}text"]
                lines += [f"  {line}" for line in message.splitlines() or [""]]
                lines += [f"  {fence}", ""]
    return "\n".join(lines).rstrip() + "\n"


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return longest


def write_reports(results: list[Result], prose: list[tuple], students: list[str], out: Path,
                  feedback_dir: Path, prose_path: Path) -> None:
    """The gradebook, the prose answers, and one feedback file per student."""
    write_atomic(out, gradebook_csv(results))
    write_atomic(prose_path, prose_csv(prose))
    for student in students:
        write_atomic(feedback_dir / f"{student}.md", feedback_markdown(student, [r for r in results
                                                                                 if r.student == student]))


class Cache:
    """One JSON file per (student, exercise): the key it was graded under and the result.

    A result enters the cache as soon as its notebook is graded, so a run that is stopped
    resumes where it was; results with status ``error`` are never cached."""

    def __init__(self, folder: Path | None):
        self.folder = folder

    def _path(self, student: str, exercise: str) -> Path:
        return self.folder / f"{student}__{exercise}.json"  # names are validated

    def get(self, student: str, exercise: str, key: str) -> Result | None:
        if self.folder is None:
            return None
        try:
            data = json.loads(self._path(student, exercise).read_text(encoding="utf-8"))
            return Result.from_dict(data["result"]) if data.get("key") == key else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, result: Result) -> None:
        if self.folder is None or result.status == "error":
            return
        write_atomic(self._path(result.student, result.exercise),
                     json.dumps({"key": key, "result": dataclasses.asdict(result)}, indent=1))
