"""Checks of E-playground (the format: ``optbook.grade.checks``).

Built by ``python -m optbook.grade.assign`` from the hidden-test cells of its master,
``solutions/masters/E-playground.md``: edit the master, not this file.
"""

from optbook.grade.checks import Checks

checks = Checks()


# Checks of exercise E, the Optimizer Playground's core (see ``optbook.grade.checks``).
#
# The probes call the student's ``run``, ``losses``, ``iteration_table`` and
# ``contour_with_path`` on fixed inputs (written into the probes) and send back paths,
# losses, rows and what the figures draw; the judges compare them, in the grader, with
# references computed here with optbook's optimizers and surfaces (tested on their own in
# tests/test_optimizers.py and tests/test_surfaces.py).

import numpy as np

from optbook import optimizers, surfaces


def cases(*calls):
    """(run's arguments, the reference path) for each (arguments, reference optimizer)."""
    return [(args, surfaces.trajectory(optimizer, surfaces.SURFACES[args[1]], start=args[3],
                                       steps=args[4]).points) for args, optimizer in calls]


# Hyperparameters an optimizer does not use are in some cases on purpose: run must ignore them.
MOMENTUM_CASES = cases(
    (("SGD", "quadratic", {"lr": 0.07, "beta": 0.5, "beta1": 0.3}, (1.5, -1.0), 40), optimizers.SGD(lr=0.07)),
    (("SGD", "rosenbrock", {"lr": 0.0015}, (-1.2, 1.0), 60), optimizers.SGD(lr=0.0015)),
    (("Momentum", "rastrigin", {"lr": 0.002, "beta": 0.85, "beta2": 0.5}, (-3.3, 2.6), 50),
     optimizers.MomentumSGD(lr=0.002, beta=0.85)),
    (("Momentum", "beale", {"lr": 0.003, "beta": 0.7}, (1.0, 1.5), 50),
     optimizers.MomentumSGD(lr=0.003, beta=0.7)),
)
ADAPTIVE_CASES = cases(
    (("RMSprop", "quadratic", {"lr": 0.01, "beta": 0.9}, (1.5, -1.0), 40),
     optimizers.RMSprop(lr=0.01, beta=0.9)),
    (("RMSprop", "beale", {"lr": 0.005, "beta": 0.95, "epsilon": 1e-6, "beta1": 0.1}, (1.0, 1.5), 60),
     optimizers.RMSprop(lr=0.005, beta=0.95, epsilon=1e-6)),
    (("Adam", "rosenbrock", {"lr": 0.02, "beta1": 0.8, "beta2": 0.99, "beta": 0.3}, (-1.2, 1.0), 80),
     optimizers.Adam(lr=0.02, beta1=0.8, beta2=0.99)),
    (("Adam", "rastrigin", {"lr": 0.05}, (-3.3, 2.6), 40), optimizers.Adam(lr=0.05)),
    (("Adam", "quadratic", {}, (0.5, 0.5), 25), optimizers.Adam()),
)


def runs_probe(cases) -> str:
    """A probe that sends run's path for each case."""
    return f"""
import numpy as np
[np.asarray(run(name, surface, dict(hp), start, steps), dtype=float).tolist()
 for name, surface, hp, start, steps in {[args for args, _ in cases]!r}]
"""


def first_wrong_run(cases, paths):
    """How the first case whose path misses the reference was called; None if none."""
    for ((name, surface, hp, start, steps), want), got in zip(cases, paths, strict=True):
        got = np.array(got, dtype=float)
        if not (got.shape == want.shape and np.allclose(got, want, rtol=0, atol=1e-8)):
            return f"run({name!r}, {surface!r}, {hp}, {start}, {steps})"
    return None


@checks.add("E-trajectories-momentum", points=2, probe=runs_probe(MOMENTUM_CASES))
def _(paths):
    wrong = first_wrong_run(MOMENTUM_CASES, paths)
    assert wrong is None, (
        f"E: {wrong} gives a wrong path. "
        "Check the update rule, that every hyperparameter given is used (and the others "
        "ignored), and that each gradient is taken at the current point.")


@checks.add("E-trajectories-adaptive", points=3, probe=runs_probe(ADAPTIVE_CASES))
def _(paths):
    wrong = first_wrong_run(ADAPTIVE_CASES, paths)
    assert wrong is None, (
        f"E: {wrong} gives a wrong path. "
        "Check the update rule (with bias correction for Adam), that every hyperparameter "
        "given is used, that missing ones take the book's defaults, and that keys the "
        "optimizer does not use are ignored.")


BAD_NAMES = [("Nesterov", "quadratic", "Nesterov"), ("Adam", "himmelblau-ish", "himmelblau-ish")]


@checks.add("E-bad-names", points=1, probe=f"""
from optbook.grade.probe import type_names
raised = []
for name, surface, bad in {BAD_NAMES!r}:
    try:
        run(name, surface, {{"lr": 0.01}}, (0.5, 0.5), 3)
        raised.append(None)
    except Exception as exc:
        raised.append([type_names(exc), str(exc)])
raised
""")
def _(raised):
    for (_, _, bad), outcome in zip(BAD_NAMES, raised, strict=True):
        assert outcome is not None and "builtins.ValueError" in outcome[0], (
            f"E: run with the unknown name {bad!r} must raise ValueError.")
        assert bad in outcome[1], (
            f"E: the ValueError for the unknown name {bad!r} must name it in its message.")


# Four points, and the loss of each surface at them.
LOSS_POINTS = [[0.3, -0.2], [1.1, 0.9], [-2.0, 1.5], [0.0, 0.0]]
LOSSES = {name: np.array([surfaces.SURFACES[name].f(x, y) for x, y in LOSS_POINTS])
          for name in ("quadratic", "rosenbrock", "rastrigin", "beale")}


@checks.add("E-losses", points=1, probe=f"""
import numpy as np
[np.asarray(losses(name, np.array({LOSS_POINTS!r})), dtype=float).tolist() for name in {list(LOSSES)!r}]
""")
def _(got):
    for name, values in zip(LOSSES, got, strict=True):
        values = np.array(values, dtype=float)
        assert values.shape == (4,) and np.allclose(values, LOSSES[name], rtol=1e-10, atol=1e-12), (
            f"E: losses({name!r}, path) must give the loss of that surface at every row "
            "of path (checked on four points).")


@checks.add("E-table", points=1, probe="""
import numpy as np
path = np.asarray(run("Momentum", "rosenbrock", {"lr": 0.001, "beta": 0.9}, (-1.2, 1.0), 30))
{"path": path.tolist(), "rows": iteration_table(path, "rosenbrock"),
 "losses": np.asarray(losses("rosenbrock", path), dtype=float).tolist()}
""")
def _(sent):
    path, rows, j = np.array(sent["path"], dtype=float), sent["rows"], np.array(sent["losses"], dtype=float)
    assert isinstance(rows, list) and len(rows) == 31, (
        "E: iteration_table must have steps + 1 rows, one per point of the path.")
    for t, row in enumerate(rows):
        assert row["t"] == t and np.isclose(row["x"], path[t, 0]) and np.isclose(
            row["y"], path[t, 1]) and np.isclose(row["loss"], j[t]), (
            f"E: row {t} of iteration_table disagrees with the path or the losses.")


@checks.add("E-figure-contour", points=1, probe="""
import matplotlib.pyplot as plt
import numpy as np
from optbook.grade.probe import type_names
f = contour_with_path("beale", {"Adam": np.array([[1.0, 1.5], [1.1, 1.4], [1.3, 1.2]])})
sent = [type_names(f)] + [[type_names(c) for c in ax.collections] for ax in f.get_axes()]
plt.close(f)
sent
""")
def _(sent):
    assert "matplotlib.figure.Figure" in sent[0], "E: contour_with_path must return a matplotlib Figure."
    assert any("matplotlib.contour.ContourSet" in c for collections in sent[1:] for c in collections), (
        "E: the figure has no contour plot (use ax.contour or ax.contourf).")


# Three paths of different lengths, each to be drawn as one line through all its points.
FIGURE_PATHS = {"SGD": [[-1.2, 1.0], [-1.0, 0.9], [-0.8, 0.7], [-0.5, 0.4]],
                "Adam": [[-1.2, 1.0], [-1.1, 1.1], [-0.9, 1.0], [-0.6, 0.5], [0.2, 0.1]],
                "RMSprop": [[0.5, 2.0], [0.6, 1.8], [0.7, 1.5]]}


@checks.add("E-figure-lines", points=1, probe=f"""
import matplotlib.pyplot as plt
import numpy as np
f = contour_with_path("rosenbrock", {{name: np.array(points) for name, points in {FIGURE_PATHS!r}.items()}})
lines = [np.column_stack([l.get_xdata(), l.get_ydata()]).astype(float).tolist()
         for ax in f.get_axes() for l in ax.get_lines()]
plt.close(f)
lines
""")
def _(lines):
    for label, points in FIGURE_PATHS.items():
        n = sum(np.shape(line) == np.shape(points) and np.allclose(line, points) for line in lines)
        assert n == 1, (f"E: the figure must draw each path as exactly one line through all "
                        f"its points; the path labelled {label!r} is drawn {n} times.")


# The notebook's two visible self-checks, judged here for their points.
@checks.add("E-run-shape", points=1, probe="""
import numpy as np
from optbook.grade.probe import type_names
path = run("SGD", "quadratic", {"lr": 0.1}, (1.0, -0.5), 5)
{"types": type_names(path), "shape": list(np.shape(path)),
 "first": np.asarray(path, dtype=float)[0].tolist()}
""")
def _(sent):
    kind = sent["types"][0].rsplit(".", 1)[-1]
    assert "numpy.ndarray" in sent["types"], f"run must return a NumPy array, not {kind}."
    assert sent["shape"] == [6, 2], f"run(..., steps=5) must have shape (6, 2), not {tuple(sent['shape'])}."
    assert np.allclose(sent["first"], (1.0, -0.5)), "Row 0 of the path must be the start point."


@checks.add("E-table-keys", points=1, probe="""
import numpy as np
path = run("Adam", "beale", {"lr": 0.01}, (1.0, 1.0), 4)
rows = iteration_table(path, "beale")
{"rows": [sorted(r) if isinstance(r, dict) else None for r in rows] if isinstance(rows, list) else None,
 "t": [r.get("t") for r in rows if isinstance(r, dict)] if isinstance(rows, list) else [],
 "losses": list(np.shape(losses("beale", path)))}
""")
def _(sent):
    rows = sent["rows"]
    assert isinstance(rows, list) and len(rows) == 5, (
        "iteration_table must return a list with one dict per row of the path.")
    assert all(r == ["loss", "t", "x", "y"] for r in rows), (
        "Every row must be a dict with exactly the keys 't', 'x', 'y', 'loss'.")
    assert sent["t"] == list(range(5)), "t must count the iterations 0, 1, 2, ..."
    assert sent["losses"] == [5], "losses must return one number per point."
