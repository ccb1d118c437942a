"""Checks of D1-adam-rosenbrock (the format: ``optbook.grade.checks``).

Built by ``python -m optbook.grade.assign`` from the hidden-test cells of its master,
``solutions/masters/D1-adam-rosenbrock.md``: edit the master, not this file.
"""

from optbook.grade.checks import Checks

checks = Checks()


# Checks of exercise D1, Adam on the Rosenbrock function (see ``optbook.grade.checks``).
#
# The probes send back what the student's class does on a small problem, the rows of
# ``log`` and what ``fig`` draws; the judges compare them, in the grader, with an
# independent NumPy run computed here, which never enters the student's kernel.

import numpy as np


# D1-class-steps: Adam(lr=0.05, beta1=0.8, beta2=0.99, epsilon=1e-6) for 12 steps on a
# three-parameter problem, the gradient taken at the current point; per step the point,
# m̂ and v̂ after it.
def class_steps(corrected: bool) -> list:
    """(point, m̂, v̂) after each of the 12 steps; ``corrected=False``: the common
    mistake of leaving out the bias correction (to name it in feedback)."""
    steps = []
    w, m, v = np.array([1.0, -2.0, 0.5]), np.zeros(3), np.zeros(3)
    for t in range(1, 13):
        g = np.array([2.0, 20.0, -1.0]) * w + np.array([0.0, 0.3, 0.1]) * np.cos(t)
        m = 0.8 * m + 0.2 * g
        v = 0.99 * v + 0.01 * g * g
        mh, vh = (m / (1 - 0.8 ** t), v / (1 - 0.99 ** t)) if corrected else (m, v)
        w = w - 0.05 * mh / (np.sqrt(vh) + 1e-6)
        steps.append((w, mh, vh))
    return steps


CLASS_STEPS, CLASS_STEPS_UNCORRECTED = class_steps(True), class_steps(False)

# What feedback says when the values show one of the two common mistakes.
NAN_HINT = ("It gives NaN or inf: t counts from 1, and with t = 0 the bias correction "
            "1 − β⁰ = 0 divides by zero.")
UNCORRECTED_HINT = ("The values are those of Adam without bias correction: are m and v "
                    "divided by 1 − β₁ᵗ and 1 − β₂ᵗ (m̂ and v̂)?")


def likely_cause(got, uncorrected) -> str:
    """A hint naming the likely mistake behind the wrong values ``got`` ('' if none
    fits): NaN (t from 0) or the values without bias correction."""
    got = np.asarray(got, dtype=float)
    if not np.all(np.isfinite(got)):
        return " " + NAN_HINT
    if got.shape == np.shape(uncorrected) and np.allclose(got, uncorrected, rtol=1e-6, atol=1e-9):
        return " " + UNCORRECTED_HINT
    return ""


# The run the notebook asks for: Adam with α = 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e-8 on the
# Rosenbrock function from (-1, 1), 10,000 updates. Row t-1 of LOG holds the point
# after update t, f there, and the m̂, v̂ used for that update (the layout of log).
# LOG_UNCORRECTED: the first 1,000 rows without bias correction (to name that mistake).
def rosenbrock_log(steps: int, corrected: bool = True) -> np.ndarray:
    p, m, v = np.array([-1.0, 1.0]), np.zeros(2), np.zeros(2)
    log = np.empty((steps, 7))
    for t in range(1, steps + 1):
        x, y = p
        g = np.array([-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)])
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        mh, vh = (m / (1 - 0.9 ** t), v / (1 - 0.999 ** t)) if corrected else (m, v)
        p = p - 0.001 * mh / (np.sqrt(vh) + 1e-8)
        x, y = p
        log[t - 1] = [x, y, (1 - x) ** 2 + 100 * (y - x * x) ** 2, *mh, *vh]
    log.setflags(write=False)
    return log


LOG, LOG_UNCORRECTED = rosenbrock_log(10_000), rosenbrock_log(1_000, corrected=False)
# The right run with m and v logged where m̂ and v̂ belong (another common mistake).
_t = np.arange(1, 1_001)[:, None]
LOG_MV = np.hstack([LOG[:1_000, :3], LOG[:1_000, 3:5] * (1 - 0.9 ** _t), LOG[:1_000, 5:7] * (1 - 0.999 ** _t)])
MV_HINT = ("The path is right but the moments in log are not: log the bias-corrected "
           "moments m̂ and v̂ (opt.m_hat, opt.v_hat), not m and v.")


def likely_log_cause(got: np.ndarray, rows: list[int]) -> str:
    """likely_cause for rows of log, which may also hold m and v instead of m̂ and v̂."""
    if got.shape == (len(rows), 7) and np.allclose(got, LOG_MV[rows], rtol=1e-8, atol=1e-12):
        return " " + MV_HINT
    return likely_cause(got, LOG_UNCORRECTED[rows])


def rows_probe(rows: list[int]) -> str:
    """A probe that sends log's shape and the given rows (those it has)."""
    return f"""
import numpy as np
a = np.asarray(log, dtype=float)
rows = [r for r in {rows!r} if a.ndim == 2 and r < len(a)]
{{"shape": list(a.shape), "rows": a[rows].tolist() if rows else []}}
"""


def rows_of(sent, rows: list[int]) -> np.ndarray:
    """The rows sent, after checking that log had them all, with 7 columns."""
    shape = sent.get("shape") if isinstance(sent, dict) else None
    got = np.array(sent.get("rows") if isinstance(sent, dict) else [], dtype=float)
    assert (isinstance(shape, list) and len(shape) == 2 and shape[0] > max(rows) and shape[1] == 7
            and got.shape == (len(rows), 7)), (
        "D1: log must be an array with one row per iteration and 7 columns.")
    return got


@checks.add("D1-class-steps", points=2, probe="""
import numpy as np
opt = Adam(lr=0.05, beta1=0.8, beta2=0.99, epsilon=1e-6)
theta, steps = np.array([1.0, -2.0, 0.5]), []
for t in range(1, 13):
    g = np.array([2.0, 20.0, -1.0]) * theta + np.array([0.0, 0.3, 0.1]) * np.cos(t)
    theta = np.asarray(opt.step(theta, g.copy()), dtype=float)
    steps.append([theta.tolist(), np.asarray(opt.m_hat, dtype=float).tolist(),
                  np.asarray(opt.v_hat, dtype=float).tolist()])
steps
""")
def _(steps):
    points = [theta for theta, _, _ in steps] if isinstance(steps, list) else []
    hint = likely_cause(points, [w for w, _, _ in CLASS_STEPS_UNCORRECTED]) if len(points) == 12 else ""
    for (theta, m_hat, v_hat), (w, mh, vh) in zip(steps, CLASS_STEPS, strict=True):
        assert np.shape(theta) == (3,) and np.allclose(theta, w, rtol=1e-9, atol=1e-12), (
            "D1: Adam(lr=0.05, beta1=0.8, beta2=0.99, epsilon=1e-6).step(theta, g) gives a "
            "wrong point on a three-parameter problem (checked over 12 steps)." + (hint or
            " Does your class use the hyperparameters it is given, keep m, v and t between "
            "calls, and work for any number of parameters?"))
        assert (np.shape(m_hat) == (3,) and np.shape(v_hat) == (3,)
                and np.allclose(m_hat, mh, rtol=1e-9, atol=1e-12)
                and np.allclose(v_hat, vh, rtol=1e-9, atol=1e-15)), (
            "D1: after step(theta, g), opt.m_hat and opt.v_hat must hold the bias-corrected "
            "moments of that step (checked on a three-parameter problem).")


# The notebook's two visible self-checks, judged here for their points.
@checks.add("D1-log-shape", points=1, probe="""
from optbook.grade.probe import type_names
{"types": type_names(log), "shape": list(getattr(log, "shape", ())),
 "kind": getattr(getattr(log, "dtype", None), "kind", None)}
""")
def _(sent):
    assert isinstance(sent, dict) and "numpy.ndarray" in sent.get("types", []), "log must be a NumPy array."
    assert sent.get("shape") == [10_000, 7], "log must have shape (10000, 7)."
    assert sent.get("kind") == "f", "log must hold floating-point numbers."


@checks.add("D1-first-row", points=1, probe=rows_probe([0]))
def _(sent):
    first = rows_of(sent, [0])[0]
    assert np.all(np.isfinite(first)), (
        "The first row of log holds NaN or inf. t counts from 1: with t = 0 the bias "
        "correction 1 - beta**0 = 0 divides by zero.")
    names = ("x", "y", "f", "m_hat_x", "m_hat_y", "v_hat_x", "v_hat_y")
    wrong = [name for name, a, b in zip(names, first, LOG[0], strict=True)
             if not np.isclose(a, b, rtol=1e-9, atol=1e-12)]
    uncorrected = np.isclose(first[3], 0.1 * -4.0) or np.isclose(first[5], 0.001 * 16.0)
    hint = ("" if not uncorrected else " m_hat and v_hat look uncorrected: log opt.m_hat "
            "and opt.v_hat, not m and v." if "x" not in wrong else " m_hat and v_hat look "
            "uncorrected: are m and v divided by 1 - beta1**t and 1 - beta2**t?")
    assert not wrong, ("The first row of log is wrong in the columns " + ", ".join(wrong)
                       + ". It should hold the state after the first update." + hint)


def check_rows(sent, rows: list[int], message: str) -> None:
    """The rows sent match LOG's; the message names the likely mistake when one fits."""
    got = rows_of(sent, rows)
    assert np.allclose(got, LOG[rows], rtol=1e-8, atol=1e-12), (
        message + likely_log_cause(got, rows))


@checks.add("D1-iteration-10", points=1, probe=rows_probe(list(range(10))))
def _(sent):
    check_rows(sent, list(range(10)), (
        "D1: the first 10 rows of log do not match Adam on the Rosenbrock function from "
        "(-1, 1) with α = 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e-8. Row t-1 holds the point "
        "after update t, f there, and the m̂, v̂ used for that update."))


ROWS_100 = [0, 9, 49, 99]


@checks.add("D1-iteration-100", points=1, probe=rows_probe(ROWS_100))
def _(sent):
    check_rows(sent, ROWS_100, (
        "D1: row 100 of log (iteration 100) does not match Adam with full bias correction. "
        "If the first rows are right, check that t keeps counting up and that m and v "
        "carry over from one iteration to the next."))


ROWS_1000 = [0, 9, 99, 499, 999]


@checks.add("D1-iteration-1000", points=2, probe=rows_probe(ROWS_1000))
def _(sent):
    check_rows(sent, ROWS_1000, (
        "D1: row 1000 of log (iteration 1000) does not match Adam with full bias "
        "correction. Compute in float64 throughout, and keep v̂'s bias correction with β₂ "
        "(it still matters after hundreds of steps)."))


@checks.add("D1-final", points=2, probe="""
import numpy as np
np.asarray(log, dtype=float).tolist()
""")
def _(log):
    log = np.array(log, dtype=float) if isinstance(log, list) else np.zeros(0)
    assert log.shape == (10_000, 7), "D1: log must have shape (10000, 7), one row per iteration."
    assert np.all(np.isfinite(log)), "D1: log must hold finite values. " + NAN_HINT
    f = (1 - log[:, 0]) ** 2 + 100 * (log[:, 1] - log[:, 0] ** 2) ** 2
    assert np.allclose(log[:, 2], f, rtol=1e-9, atol=1e-14), (
        "D1: column 2 of log must be f(x, y) at the point in columns 0 and 1 of the same row.")
    # Near the minimum the iteration amplifies rounding differences (different but equally
    # correct ways of writing the update drift apart after about 8,700 steps), so the
    # final row is compared with a tolerance that allows for that, not to 1e-8.
    assert np.allclose(log[-1, :2], LOG[-1, :2], rtol=0.0, atol=1e-5) and log[-1, 2] <= 1e-8, (
        "D1: the final point (iteration 10,000) is not where Adam with α = 0.001 ends up "
        "from (-1, 1). Does your run make exactly 10,000 updates?")
    assert (np.all(np.abs(log[-1, 3:5]) <= 1e-3)
            and np.allclose(log[-1, 5:7], LOG[-1, 5:7], rtol=0.25, atol=0.0)), (
        "D1: the bias-corrected moments in the last row are not those of the final "
        "iteration (m̂ should be close to 0 near the minimum, and v̂ must match the run).")


# What fig draws: for each of its axes, the types of its collections (a contour plot is a
# matplotlib.contour.ContourSet), or the points of its lines and the path in log.
FIGURE_MESSAGE = "D1: fig must be a matplotlib Figure, for example from fig, ax = plt.subplots()."


def draws_path(line, points: np.ndarray) -> bool:
    """Whether a line draws a path: at least 100 points, within the path's box, its ends
    at the path's start and end, in either direction."""
    xy = np.array(line, dtype=float)
    if xy.ndim != 2 or len(xy) < 100 or not np.all(np.isfinite(xy)):
        return False
    lo, hi = points.min(axis=0) - 1e-6, points.max(axis=0) + 1e-6
    start, end = points[0], points[-1]
    ends = sorted([np.linalg.norm(xy[0] - start) + np.linalg.norm(xy[-1] - end),
                   np.linalg.norm(xy[-1] - start) + np.linalg.norm(xy[0] - end)])
    return bool(np.all((xy >= lo) & (xy <= hi)) and ends[0] <= 0.1)


@checks.add("D1-figure-contour", points=1, probe="""
from optbook.grade.probe import type_names
[type_names(fig)] + [[type_names(c) for c in ax.collections] for ax in fig.get_axes()]
""")
def _(sent):
    assert "matplotlib.figure.Figure" in sent[0], FIGURE_MESSAGE
    assert any("matplotlib.contour.ContourSet" in c for collections in sent[1:] for c in collections), (
        "D1: fig has no contour plot. Draw the contours of the Rosenbrock function with "
        "ax.contour (or ax.contourf) on one of fig's axes.")


@checks.add("D1-figure-path", points=1, probe="""
import numpy as np
from optbook.grade.probe import type_names
{"types": type_names(fig),
 "lines": [np.column_stack([l.get_xdata(), l.get_ydata()]).astype(float).tolist()
           for ax in fig.get_axes() for l in ax.get_lines()],
 "path": np.vstack([[-1.0, 1.0], np.asarray(log, dtype=float)[:, :2]]).tolist()}
""")
def _(sent):
    assert "matplotlib.figure.Figure" in sent["types"], FIGURE_MESSAGE
    path = np.array(sent["path"], dtype=float)  # the student's own path
    assert any(draws_path(line, path) for line in sent["lines"]), (
        "D1: fig has no line that draws the path of your run: plot x against y from log "
        "(at least 100 points, running from the start (-1, 1) to the final point).")
