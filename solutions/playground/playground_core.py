r"""The Optimizer Playground's core: everything the app computes, and no Streamlit.

Exercise E grades four functions, because a web app cannot be checked automatically
but its core can: :func:`run` (an optimizer's path on a surface), :func:`losses`,
:func:`iteration_table` and :func:`contour_with_path`.  This module is the reference
for them.  It behaves as ``solutions/E-playground.ipynb`` does on the four optimizers
the exercise asks for (``tests/test_playground_app.py`` runs the exercise's hidden
checks on it and compares it with the notebook) and extends them to the chapter's
other two, AdaGrad and AdamW.  The app (``app.py``) only arranges controls and
pictures around these functions.

Everything runs on the book's library: the optimizers are
:data:`optbook.optimizers.OPTIMIZERS`, each step is the chapter's loop in
:func:`optbook.surfaces.trajectory`, and the pictures come from
:mod:`optbook.book` and :mod:`optbook.book.playground`.

>>> path = run("SGD", "quadratic", {"lr": 0.1, "beta1": 0.5}, (1.0, 0.0), 3)
>>> path[:, 0].round(3).tolist()          # x shrinks by 1 - 2α per step; beta1 is ignored
[1.0, 0.8, 0.64, 0.512]
>>> iteration_table(path, "quadratic")[1]["loss"]
0.6400000000000001
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping

import numpy as np

from optbook import optimizers, surfaces
from optbook.book.playground import HYPERPARAMETERS, OPTIMIZER_NAMES, SURFACE_NAMES, tuned_lr
from optbook.book.surface_figures import contour_figure

__all__ = ["OPTIMIZER_NAMES", "SURFACE_NAMES", "ROW_KEYS", "HYPERPARAMETERS", "surface",
           "run", "losses", "iteration_table", "contour_with_path", "compare",
           "detailed_table", "table_csv", "summary", "PRESET_STEPS", "presets"]

#: The keys of one row of :func:`iteration_table`.
ROW_KEYS = ("t", "x", "y", "loss")
#: The run length for which :func:`presets` tunes α.
PRESET_STEPS = 200


def surface(surface_name: str) -> surfaces.Surface:
    """The surface called ``surface_name``; a name outside :data:`SURFACE_NAMES` is a
    ``ValueError`` that names it."""
    if surface_name not in SURFACE_NAMES:
        raise ValueError(f"Unknown surface {surface_name!r}; choose one of "
                         + ", ".join(SURFACE_NAMES))
    return surfaces.SURFACES[surface_name]


def run(optimizer_name: str, surface_name: str, hyperparams: Mapping, start, steps: int) -> np.ndarray:
    r"""The path :math:`(x_t, y_t)`, :math:`t = 0, \dots,` ``steps``, as an array of
    shape ``(steps + 1, 2)`` whose row 0 is ``start``.

    ``hyperparams`` may hold any of ``lr``, ``beta``, ``beta1``, ``beta2``, ``epsilon``
    and ``weight_decay``: the keys the optimizer takes (:data:`HYPERPARAMETERS`) are
    used, the others ignored (the app passes all its sliders), and a missing one takes
    the default of the book's optimizer class.  If the run diverges (the loss stops
    being finite or a coordinate exceeds :math:`10^6`), the rows after it are ``nan``.
    """
    if optimizer_name not in OPTIMIZER_NAMES:
        raise ValueError(f"Unknown optimizer {optimizer_name!r}; choose one of "
                         + ", ".join(OPTIMIZER_NAMES))
    where = surface(surface_name)
    kwargs = {k: v for k, v in dict(hyperparams).items() if k in HYPERPARAMETERS[optimizer_name]}
    opt = optimizers.OPTIMIZERS[optimizer_name](**kwargs)
    path = surfaces.trajectory(opt, where, start=start, steps=steps).points
    out = np.full((steps + 1, 2), np.nan)
    out[:len(path)] = path
    return out


def losses(surface_name: str, path) -> np.ndarray:
    r""":math:`J(x_t, y_t)` at every row of ``path`` (shape ``(n, 2)``), shape ``(n,)``."""
    pts = np.asarray(path, dtype=float)
    return np.asarray(surface(surface_name).f(pts[:, 0], pts[:, 1]), dtype=float)


def iteration_table(path, surface_name: str) -> list[dict]:
    """One dict ``{"t", "x", "y", "loss"}`` of plain Python numbers per row of ``path``."""
    pts = np.asarray(path, dtype=float)
    return [{"t": t, "x": float(x), "y": float(y), "loss": float(j)}
            for t, ((x, y), j) in enumerate(zip(pts, losses(surface_name, pts)))]


def contour_with_path(surface_name: str, paths: Mapping, *, title: str | None = None,
                      figsize=(6.4, 5.0)):
    """A Figure: the contours of the surface with one line per entry of ``paths``
    (label → array of shape ``(n, 2)``), a black dot at the first path's start and a
    square at each path's last finite point.  A path that diverged is drawn up to its
    last finite point."""
    paths = {label: np.asarray(p, dtype=float) for label, p in dict(paths).items()}
    where = surface(surface_name)
    fig = contour_figure(where, paths, show_start=True, figsize=figsize,
                         title=title or f"{surface_name}: $J = {where.formula}$")
    ax = fig.axes[0]
    color = {line.get_label(): line.get_color() for line in ax.get_lines()}
    for label, pts in paths.items():
        finite = pts[np.isfinite(pts).all(axis=1)]
        if len(finite):
            ax.scatter(*finite[-1], marker="s", s=36, color=color[label], edgecolors="k", zorder=5)
    return fig


# ------------------------------------------------------------------ what the app adds
def compare(surface_name: str, settings: Mapping[str, Mapping], start, steps: int) -> dict:
    """:func:`run` for several optimizers: ``settings`` maps an optimizer's name to its
    hyperparameters; returns name → path."""
    return {name: run(name, surface_name, hp, start, steps) for name, hp in settings.items()}


def detailed_table(path, surface_name: str) -> list[dict]:
    r""":func:`iteration_table` with three more columns per row: the gradient
    :math:`\partial J/\partial x`, :math:`\partial J/\partial y` at the point, and the
    length of the step that led to it, :math:`\|\theta_t - \theta_{t-1}\|` (``nan`` at
    :math:`t = 0`)."""
    pts = np.asarray(path, dtype=float)
    gx, gy = surface(surface_name).grad(pts[:, 0], pts[:, 1])
    steps = np.r_[np.nan, np.linalg.norm(np.diff(pts, axis=0), axis=1)]
    return [{**row, "dJ/dx": float(a), "dJ/dy": float(b), "step": float(s)}
            for row, a, b, s in zip(iteration_table(pts, surface_name), gx, gy, steps)]


def table_csv(rows: list[dict]) -> str:
    """The rows as CSV text with a header line (numbers at full precision, ``nan`` for
    the rows after a divergence): what the app's download button hands out."""
    if not rows:
        raise ValueError("table_csv needs at least one row")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: repr(v) for k, v in row.items()} for row in rows)
    return out.getvalue()


def summary(surface_name: str, path, *, tolerance: float = 1e-6) -> dict:
    r"""How a run ended: ``final_loss`` (at the last finite point), ``distance`` from
    there to the nearest global minimum, ``diverged_at`` (the first ``nan`` row, or
    ``None``) and ``reached_at`` (the first step with
    :math:`J - J_{\min} <` ``tolerance``, or ``None``)."""
    where = surface(surface_name)
    pts = np.asarray(path, dtype=float)
    finite = np.isfinite(pts).all(axis=1)
    last = int(np.flatnonzero(finite)[-1])
    values = losses(surface_name, pts[:last + 1])
    below = np.flatnonzero(values - (where.f_min or 0.0) < tolerance)
    distance = min(math.dist(pts[last], m) for m in where.minima)
    return {"final_loss": float(values[-1]), "distance": float(distance),
            "diverged_at": None if finite.all() else last + 1,
            "reached_at": int(below[0]) if len(below) else None}


def presets() -> dict:
    r"""(surface, optimizer) → the hyperparameters the app starts from: the α that
    works best in :data:`PRESET_STEPS` steps from the surface's standard start
    (:func:`optbook.book.playground.tuned_lr`), the book's defaults for the rest (which
    :func:`run` fills in when they are missing)."""
    return {(s, name): {"lr": tuned_lr(name, s, steps=PRESET_STEPS)}
            for s in SURFACE_NAMES for name in OPTIMIZER_NAMES}
