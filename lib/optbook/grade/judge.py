"""Judge a run: each check's verdict, reached in the grader's process; the row's status.

A check passes only when all of this holds for its probe cell, as the plugin recorded it:
nbval saw no error, the kernel's ``execute_reply`` said ``ok``, no error output came,
exactly one value came back, with the cell's nonce, it parses as JSON, and the check's
judge (the instructor's function, run here) accepts it.  What the student's code did in
the kernel can change only the value sent; the comparison with the reference happens
here, and the kernel never sees the reference.

**Status** is ``ok`` (graded normally, whatever the score), ``cell-timeout`` (a cell ran
past ``--cell-timeout`` and was interrupted; the rest was graded), ``kernel-died`` (the
kernel process exited, e.g. ``os._exit``; later cells score nothing), ``timeout`` (past
``--timeout``: killed, 0 points), ``malformed``, ``missing``, ``rejected``, or ``error``
(a problem on the grader's side, e.g. a kernel that did not start: retried once, then
recorded; never cached, so the next run tries again).

Messages are in words: the judge's assertion message, an exception's type and message
from the student's own code, or what went wrong (timeout, dead kernel) — never a check's
code or the value it compares with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from optbook.grade.exercise import Exercise, valid_text
from optbook.grade.merge import CellRole
from optbook.grade.run import CellRun, Limits

MESSAGE_LIMIT = 500  # characters of a message shown in feedback
REASON_ITEM_LIMIT = 200  # characters of one note in the gradebook's reason column


@dataclass
class CheckResult:
    id: str
    points: int
    max_points: int
    visible: bool
    passed: bool
    message: str = ""


@dataclass
class Result:
    student: str
    exercise: str
    points: int
    max_points: int
    status: str
    reason: str
    checks: list[CheckResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # incidents and answer-cell problems
    sandbox: str = ""  # how the kernel ran: "bubblewrap" or "none (--no-sandbox)"

    @classmethod
    def from_dict(cls, data: dict) -> Result:
        data = dict(data)
        data["checks"] = [CheckResult(**c) for c in data.get("checks", [])]
        return cls(**data)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked when cut (and lone surrogates, which a
    student's string can carry into a message, replaced)."""
    text = valid_text(str(text))
    return text if len(text) <= limit else text[:limit] + " … (truncated)"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def describe_error(ename: str, evalue: str, limit: int = MESSAGE_LIMIT) -> str:
    """``Type: message`` as the student sees it (no traceback)."""
    if not ename:
        return ""
    return clip(f"{ename}: {evalue}" if evalue else ename, limit)


def judge(student: str, exercise: Exercise, roles: list[CellRole], cells: dict[int, CellRun],
          notes: list[str], limits: Limits, sandbox: str) -> Result:
    """Every check's verdict, the incidents, and the gradebook's status and reason."""
    checks_by_id = {c.id: c for c in exercise.checks}
    results: dict[str, CheckResult] = {}
    notes, status = list(notes), "ok"
    for index, (role, where) in enumerate(zip(roles, cell_labels(roles), strict=True)):
        run = cells.get(index, CellRun())
        if role.kind == "probe" and role.id in checks_by_id:
            check = checks_by_id[role.id]
            passed, message = verdict(check, role, run, limits)
            results[check.id] = CheckResult(check.id, check.points if passed else 0, check.points,
                                            check.id in exercise.visible, passed, message)
        elif role.kind == "grader" and not run.passed:
            status = "error"  # the prelude runs before any answer: a problem on the grader's side
            notes.append(f"{where} did not run: {describe_error(run.ename, run.evalue) or run.nbval or 'no reason'}")
            continue
        status = note_incident(where, run, role, notes, status, limits)
    checks = [results.get(c.id) or CheckResult(c.id, 0, c.points, c.id in exercise.visible, False, "not run")
              for c in exercise.checks]
    failed = [c.id for c in checks if not c.passed]
    summary = f"failed: {', '.join(failed)}" if failed else "all checks passed"
    return Result(student, exercise.id, sum(c.points for c in checks), exercise.max_points, status,
                  "; ".join(notes + [summary]), checks, notes, sandbox)


def verdict(check, role: CellRole, run: CellRun, limits: Limits) -> tuple[bool, str]:
    """(passed, message) for one check from its probe cell's record."""
    if not run.passed:
        return False, failure_message(run, limits)
    values = [p for p in run.payloads if p.get("nonce") == role.nonce]
    if len(values) != 1 or len(run.payloads) != 1:
        return False, ("no value came back from your code" if not run.payloads
                       else "the check received an unexpected reply from the kernel")
    if values[0].get("too_large"):
        return False, "the value your code gave is too large to check"
    try:
        value = json.loads(values[0]["json"])
    except (ValueError, RecursionError):
        return False, "the check received a value it cannot read"
    return judge_value(check, value)


def judge_value(check, value) -> tuple[bool, str]:
    """(passed, message): the check's judge on a value its probe sent."""
    try:
        check.judge(value)
    except AssertionError as exc:
        return False, clip(str(exc) or "failed", MESSAGE_LIMIT)
    except Exception as exc:  # noqa: BLE001 - an unexpected value; its details could show the reference
        return False, f"the check could not use the value your code gave ({type(exc).__name__})"
    return True, ""


def cell_labels(roles: list[CellRole]) -> list[str]:
    """How notes name cells: ``answer a1``, ``check t1``, ``setup cell 2``, ``grader cell 1``."""
    counts: dict[str, int] = {}
    labels = []
    for role in roles:
        if role.kind in ("answer", "test", "probe"):
            labels.append(f"{'answer' if role.kind == 'answer' else 'check'} {role.id}")
        else:
            counts[role.kind] = counts.get(role.kind, 0) + 1
            labels.append(f"{role.kind} cell {counts[role.kind]}")
    return labels


def failure_message(run: CellRun, limits: Limits) -> str:
    if run.kernel_exit is not None:
        return f"the kernel died while this check ran (exit code {run.kernel_exit})"
    if run.timed_out:
        return f"timed out after {limits.cell_timeout:g} s"
    if run.kernel_was_dead:
        return "not run: the kernel had died earlier"
    if run.ename:
        return describe_error(run.ename, run.evalue)
    if not run.ran:
        return "not run"
    if run.reply_status not in (None, "ok"):
        return f"the cell ended with status {run.reply_status!r}"
    return "failed"


def note_incident(where: str, run: CellRun, role: CellRole, notes: list[str], status: str, limits: Limits) -> str:
    """Record what went wrong in a cell (besides a check failing); return the new status."""
    if run.kernel_exit is not None:
        notes.append(f"kernel died in {where} (exit code {run.kernel_exit})")
        return status if status == "error" else "kernel-died"
    if run.timed_out:
        notes.append(f"cell timeout ({limits.cell_timeout:g} s) in {where}")
        status = "cell-timeout" if status == "ok" else status
    elif role.kind in ("setup", "answer", "other") and run.ran and not run.passed and run.ename:
        notes.append(f"{where} raised {describe_error(run.ename, run.evalue, REASON_ITEM_LIMIT)}")
    if run.output_truncated:
        notes.append(f"output truncated in {where}")
    return status


def not_graded(student: str, exercise: Exercise | None, exercise_id: str, status: str, reason: str, sandbox: str,
               message: str = "not graded") -> Result:
    """A row for a pair that earned nothing (malformed, missing, timeout, error)."""
    checks = [CheckResult(c.id, 0, c.points, c.id in exercise.visible, False, message)
              for c in (exercise.checks if exercise else [])]
    return Result(student, exercise_id, 0, exercise.max_points if exercise else 0, status, reason, checks,
                  [reason], sandbox)
