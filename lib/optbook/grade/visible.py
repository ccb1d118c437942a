"""The visible format checks, judged and reported by the grader like every other check.

A visible self-check worth points has a check of the same id in the checks file (its
cell runs in the student's kernel, where a verdict could be forged).  A visible check
worth 0 points, such as an exercise's format checks, needs none: :func:`format_checks`
makes a check of it from the pristine notebook's own cell, so that the gradebook and
the feedback report it with the same verdict and message as the student's ``python -m
optbook.check``.  Its probe runs the cell's code, taken from the grader's copy of the
notebook, in a copy of the notebook's namespace after the whole notebook (as one more
cell), and sends back whether an assertion failed and its message; any other exception
fails the probe with that exception, as it fails the visible cell.

The verdict is the kernel's and student code could forge it; that gains nothing, since
the check is worth 0 points.  No reference value is involved: the cell is released.
"""

from __future__ import annotations

from optbook.grade.checks import Check, probe_function
from optbook.grade.exercise import meta, source

PROBE = """\
namespace = dict(globals())
failed = None
try:
    exec(compile({code!r}, {name!r}, "exec"), namespace)
except AssertionError as exc:
    failed = str(exc)
{{"passed": failed is None, "message": failed or ""}}
"""


def format_checks(notebook, covered: set[str]) -> list[Check]:
    """A check for every visible test cell worth 0 points whose id is not in ``covered``
    (the ids of the checks file), in notebook order."""
    made = []
    for cell in notebook.cells:
        m = meta(cell)
        if m.get("role") != "test" or int(m.get("points", 0) or 0) or str(m.get("id")) in covered:
            continue
        check_id = str(m["id"])
        probe = PROBE.format(code=source(cell), name=f"<self-check {check_id}>")
        probe_function(probe, "_probe", where=f"visible check {check_id}")
        made.append(Check(check_id, 0, probe, _judge))
    return made


def _judge(sent) -> None:
    """Pass when the cell's code ran to its end; else its assertion's message, worded as
    the self-check words a failed cell (``AssertionError: ...``)."""
    assert isinstance(sent, dict) and isinstance(sent.get("passed"), bool), "failed"
    message = sent.get("message")
    assert sent["passed"] is True, f"AssertionError: {message}" if isinstance(message, str) and message \
        else "AssertionError"
