"""How graded checks are written: the checks file ``solutions/hidden/<exercise>.py``.

A checks file is a Python module that the grader imports **in its own process**, never in
the student's kernel.  It creates a :class:`Checks` named ``checks`` and adds one check per
graded question::

    import math

    import numpy as np

    from optbook.grade.checks import Checks

    checks = Checks()

    W = np.array([5.0, -2.0, 0.0])
    AFTER_STEP = W - 0.1 * 2.0 * W  # a reference: it stays in the grader's process

    @checks.add("h-step-size", points=2, probe="step_size")
    def _(step_size):
        assert isinstance(step_size, (int, float)) and math.isclose(step_size, 1.0), (
            "step_size should be α·|f′(w₀)| for the given W0 and ALPHA")

    @checks.add("h-gd-step-array", points=3, probe='''
    import numpy as np
    gd_step(np.array([5.0, -2.0, 0.0]), 0.1)
    ''')
    def _(after):
        assert np.allclose(after, AFTER_STEP), "gd_step must work elementwise on NumPy arrays"

A check has two halves:

* the **probe** (a string of code) runs in the student's kernel after the whole notebook,
  like one more cell: it sees the notebook's names, and its last line is an expression
  whose value goes back to the grader as plain data (numbers, strings, lists, dicts;
  arrays and tensors as nested lists; see :mod:`optbook.grade.probe`).  Its names are
  local to it.  The student's code can read the probe, so a probe holds inputs, never an
  expected value.
* the **judge** (the decorated function) receives that value in the grader's process and
  raises ``AssertionError`` with a message in words when it is wrong.  The student sees
  the message, never the code or the value it was compared with; write messages that say
  what was checked and where to look, without giving the answer away.  A judge that
  raises anything else fails the check with "the check could not use the value".

Module-level code computes the references, once per grading run.  The module may import
anything the grader's environment has.

A visible check of the notebook (``metadata.optbook.role == "test"``) that is worth points
must have a check of the same id and points here: its cell runs in the student's kernel,
where a verdict could be forged, so its points come from this file's check.  Visible
checks worth 0 points need none; the student's own ``python -m optbook.check`` runs them.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ID_RE = re.compile(r"[A-Za-z0-9][\w.-]{0,63}")


class ChecksError(Exception):
    """A checks file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Check:
    id: str
    points: int
    probe: str  # kernel-side code; its last line is the expression to send back
    judge: Callable[[Any], None]  # grader-side; raises AssertionError(message) when wrong

    def probe_function(self, name: str) -> str:
        """The probe as a function ``name()`` that returns its last expression."""
        return probe_function(self.probe, name)


class Checks:
    """The checks of one exercise, in the order they are added."""

    def __init__(self):
        self.items: list[Check] = []

    def add(self, check_id: str, *, points: int, probe: str) -> Callable:
        """Decorator: the function it decorates judges the value ``probe`` sends back."""
        if not isinstance(check_id, str) or not ID_RE.fullmatch(check_id):
            raise ChecksError(f"{check_id!r} is not a check id (letters, digits, '.', '_', '-')")
        if isinstance(points, bool) or not isinstance(points, int) or points < 0:
            raise ChecksError(f"check {check_id}: points must be a whole number ≥ 0, not {points!r}")
        if check_id in {c.id for c in self.items}:
            raise ChecksError(f"check {check_id} is added twice")
        probe = textwrap.dedent(probe).strip("\n")
        probe_function(probe, "_probe", where=f"check {check_id}")  # ChecksError if unusable

        def register(judge: Callable[[Any], None]) -> Callable[[Any], None]:
            self.items.append(Check(check_id, points, probe, judge))
            return judge

        return register


def probe_function(probe: str, name: str, where: str = "probe") -> str:
    """``def name(): <probe, its last expression returned>``; ChecksError if the probe does
    not parse or does not end with an expression on a line of its own."""
    try:
        tree = ast.parse(probe)
    except SyntaxError as exc:
        raise ChecksError(f"{where}: the probe does not parse (line {exc.lineno}): {exc.msg}") from None
    last = tree.body[-1] if tree.body else None
    if not isinstance(last, ast.Expr) or last.col_offset != 0 or (
            len(tree.body) > 1 and tree.body[-2].end_lineno >= last.lineno):
        raise ChecksError(f"{where}: the probe must end with an expression on a line of its own "
                          "(the value sent back to the grader)")
    lines = probe.splitlines()
    head, value = lines[: last.lineno - 1], lines[last.lineno - 1: last.end_lineno]
    body = head + ["return (", *value, ")"]
    return f"def {name}():\n" + "\n".join(f"    {line}" if line.strip() else "" for line in body) + "\n"


def load_checks(path: Path) -> tuple[list[Check], bytes]:
    """The checks of a checks file, in file order, and the file's bytes.

    The file is imported as a fresh module (its module-level references computed now);
    any error becomes a ChecksError that names the file."""
    raw = path.read_bytes()
    name = f"_optbook_checks_{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}_{hashlib.sha256(raw).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # for dataclasses, pickling and the like in the file
    try:
        spec.loader.exec_module(module)
    except ChecksError as exc:
        raise ChecksError(f"{path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any error of the file, reported with its line
        line = next((f.lineno for f in reversed(_frames(exc)) if f.filename == str(path)), None)
        at = f":{line}" if line else ""
        raise ChecksError(f"{path}{at}: the checks file raised {type(exc).__name__}: {exc}") from None
    finally:
        sys.modules.pop(name, None)
    checks = getattr(module, "checks", None)
    if not isinstance(checks, Checks):
        raise ChecksError(f"{path}: no `checks = Checks()` in the file (see optbook.grade.checks)")
    return list(checks.items), raw


def _frames(exc: BaseException) -> list:
    import traceback

    return list(traceback.extract_tb(exc.__traceback__))
