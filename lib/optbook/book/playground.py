r"""The Optimizer Playground: six optimizers, four surfaces, one set of controls.

The playground puts every method of the chapter (SGD, momentum, RMSprop, Adam, AdaGrad
and AdamW) on the four classic two-dimensional test surfaces of
:mod:`optbook.surfaces`: the round ``quadratic`` bowl, ``rosenbrock``'s curved valley,
``rastrigin``'s ripples and ``beale``'s plateaus.  A reader picks an optimizer, a
surface and the hyperparameters, and sees the path and the loss.

**A fair start: one tuned α per optimizer and surface.**  The methods do not share a
scale for :math:`\alpha`.  Plain SGD moves by :math:`\alpha g`, so on Rosenbrock, whose
walls have gradients in the hundreds, it needs :math:`\alpha \approx 10^{-3}`; Adam
moves each coordinate by about :math:`\alpha` whatever the gradient, so at the same
:math:`\alpha` it would hardly move.  Comparing them at one :math:`\alpha` compares the
choice of :math:`\alpha`, not the methods.  So every comparison in the book starts each
method at its own tuned value, chosen by one rule, :func:`tuned_lr`: run the method for
:data:`TUNING_STEPS` steps at every :math:`\alpha` of :data:`TUNING_GRID` (a factor of
about 3 apart), every other hyperparameter at the library's default, and keep the
:math:`\alpha` whose run ends lowest without diverging.  Final losses within
:data:`LOSS_FLOOR` of the minimum count as equal (below that, a lower number measures
rounding, not the method), and a tie goes to the smaller :math:`\alpha`.  A winner at
either end of the grid is refused: the best value might lie beyond it.  That is how a
practitioner tunes, and it has the practitioner's weakness: on a rugged surface such
as Rastrigin the "best" :math:`\alpha` is the one that happened to land in a lower
ripple, which is luck more than merit.

>>> from optbook.surfaces import quadratic
>>> tuned_lr("SGD", quadratic, steps=50)
0.3

This module holds what the book's playground page
(``chapters/appendix-b-playground.md``), its side-by-side page
(``chapters/09-optimizers-side-by-side.md``) and the reference app for exercise E
(``solutions/playground/``) share: the names, which hyperparameters each optimizer
takes, the tuning rule and its grid, the loss panel with one curve per optimizer, and
the two-panel frame the playground page shows.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import LogFormatter, NullFormatter

from optbook.optimizers import OPTIMIZERS
from optbook.book.figures import (Backdrop, _pt, check_colors, color_of, empty_axes, frame_png,
                                  two_panels)
from optbook.book.surface_figures import contour_figure
from optbook.surfaces import SURFACES, Surface, trajectory

#: The optimizers in the order the controls list them (the four of exercise E first).
OPTIMIZER_NAMES: tuple[str, ...] = ("SGD", "Momentum", "RMSprop", "Adam", "AdaGrad",
                                    "AdamW")
#: The surfaces of exercise E, by their names in :data:`optbook.surfaces.SURFACES`.
SURFACE_NAMES: tuple[str, ...] = ("quadratic", "rosenbrock", "rastrigin", "beale")
#: The candidate learning rates of :func:`tuned_lr`: 1 and 3 × 10⁻⁵, 10⁻⁴, …, 10.
#: Wide enough that no optimizer's best α on any of the four surfaces is at either end
#: (``tests/test_pages_tuning.py`` checks it).
TUNING_GRID: tuple[float, ...] = tuple(round(m * 10.0**e, 12) for e in range(-5, 2)
                                       for m in (1, 3))
#: How many steps each tuning run makes: the length of every run the pages show.
TUNING_STEPS: int = 200
#: Final losses within this distance of the minimum count as equal when tuning.
LOSS_FLOOR: float = 1e-12
#: A coarser grid, 10⁻⁴ … 1: the α values that the reference app's analysis sweeps.
LR_GRID: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0)

#: The hyperparameters each optimizer takes, as keyword names (see
#: :mod:`optbook.notation`): α ``lr``, β ``beta``, β₁ ``beta1``, β₂ ``beta2``,
#: ε ``epsilon``, λ ``weight_decay``.  Momentum's ``nesterov`` switch is left out.
HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "SGD": ("lr",),
    "Momentum": ("lr", "beta"),
    "RMSprop": ("lr", "beta", "epsilon"),
    "Adam": ("lr", "beta1", "beta2", "epsilon"),
    "AdaGrad": ("lr", "epsilon"),
    "AdamW": ("lr", "beta1", "beta2", "epsilon", "weight_decay"),
}


def _surface(surface) -> Surface:
    if isinstance(surface, Surface):
        return surface
    if surface not in SURFACES:
        raise ValueError(f"Unknown surface {surface!r}; choose one of {', '.join(SURFACES)}")
    return SURFACES[surface]


def _optimizer(name: str, hyperparams: Mapping):
    """``OPTIMIZERS[name](**hyperparams)``, with errors that name the problem."""
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    extra = sorted(set(hyperparams) - set(HYPERPARAMETERS[name]))
    if extra:
        raise ValueError(f"{name} takes no {', '.join(extra)} (its hyperparameters are "
                         f"{', '.join(HYPERPARAMETERS[name])})")
    return OPTIMIZERS[name](**hyperparams)


def best_lr(scores: Mapping[float, float | None], *, what: str = "the method") -> float:
    r"""The :math:`\alpha` with the lowest score in ``scores`` (:math:`\alpha` → score,
    ``None`` for a run that failed, e.g. diverged); a tie goes to the smaller
    :math:`\alpha`.  Raises ``ValueError`` if every run failed, or if the best
    :math:`\alpha` is the smallest or the largest tried: the best value might then lie
    beyond the grid, which must be extended.  ``what`` names the runs in the message.

    >>> best_lr({0.01: 5.0, 0.03: 2.0, 0.1: 2.0, 0.3: None})
    0.03
    """
    if not scores:
        raise ValueError("best_lr needs the scores of a non-empty grid of learning rates")
    grid = sorted(float(lr) for lr in scores)
    ok = {float(lr): score for lr, score in scores.items() if score is not None}
    if not ok:
        raise ValueError(f"{what} fails at every lr of {grid}")
    best = min(ok, key=lambda lr: (ok[lr], lr))
    if best in (grid[0], grid[-1]):
        end = "smallest" if best == grid[0] else "largest"
        raise ValueError(f"for {what} the best lr, {best:g}, is the {end} of the grid "
                         f"{grid[0]:g} … {grid[-1]:g}: the best value may lie beyond "
                         "it, so extend the grid")
    return best


def tuned_lr(optimizer_name: str, surface, *, steps: int = TUNING_STEPS, start=None,
             grid=TUNING_GRID, **hyperparams) -> float:
    r"""The book's tuning rule: the :math:`\alpha` of ``grid`` whose run of ``steps``
    updates from ``start`` (default: the surface's ``default_start``) ends at the
    lowest loss without diverging, with final losses less than :data:`LOSS_FLOOR` above
    the minimum counted as equal and ties going to the smaller :math:`\alpha`
    (:func:`best_lr`).  ``hyperparams`` (e.g. ``beta=0.9``) are held fixed; the others
    keep the library's defaults.  Raises ``ValueError`` if every run diverges or the
    best :math:`\alpha` is at either end of ``grid``.
    """
    surface = _surface(surface)
    if "lr" in hyperparams:
        raise ValueError("tuned_lr chooses lr itself; do not pass it")
    grid = [float(lr) for lr in grid]
    if not grid:
        raise ValueError("tuned_lr needs a non-empty grid of learning rates")
    f_min = surface.f_min or 0.0
    scores = {}
    for lr in grid:
        path = trajectory(_optimizer(optimizer_name, {"lr": lr, **hyperparams}), surface,
                          start=start, steps=steps)
        scores[lr] = (None if path.diverged_at is not None
                      else max(float(path.losses[-1]) - f_min, LOSS_FLOOR))
    if all(score is None for score in scores.values()):
        raise ValueError(f"{optimizer_name} diverges on {surface.name} at every lr of {grid}")
    return best_lr(scores, what=f"{optimizer_name} on {surface.name}")


def runs(surface, settings: Mapping[str, Mapping], *, steps: int = 200, start=None) -> dict:
    r"""One :class:`~optbook.surfaces.Trajectory` per optimizer: ``settings`` maps an
    optimizer's name to its hyperparameters (``{"Adam": {"lr": 0.1, "beta1": 0.9}}``)."""
    surface = _surface(surface)
    return {name: trajectory(_optimizer(name, hp), surface, start=start, steps=steps)
            for name, hp in settings.items()}


# ---------------------------------------------------------------------------- figures
def draw_loss_curves(ax, surface, curves: Mapping, *, selected: str | None = None,
                     floor: float = 1e-12, title: str | None = None,
                     legend_columns: int = 1) -> None:
    r"""The excess loss :math:`J(\theta_t) - J_{\min}` of each curve against the step,
    on a log scale, raised to ``floor`` so that an exact zero can be drawn.

    ``curves`` maps an optimizer's name to its losses (an array, or a
    :class:`~optbook.surfaces.Trajectory`).  A run that diverged (a Trajectory with
    ``diverged_at``, or an array that turns non-finite) ends in a cross at its last
    finite point and is labelled so.  The ``selected`` optimizer is
    drawn thick and the others thin, so the one under study stands out among them.
    The legend has ``legend_columns`` columns.
    """
    surface = _surface(surface)
    f_min = surface.f_min or 0.0
    starts, low = [], np.inf
    for i, (name, curve) in enumerate(curves.items()):
        values = np.asarray(getattr(curve, "losses", curve), dtype=float)
        finite = np.isfinite(values)
        n = int(np.argmin(finite)) if not finite.all() else len(values)
        diverged = n < len(values) or getattr(curve, "diverged_at", None) is not None
        shown = np.maximum(values[:n] - f_min, floor)
        if n:
            starts.append(shown[0])
            low = min(low, shown.min())
        thick = selected is None or name == selected
        color = color_of(name, i)
        ax.plot(np.arange(n), shown, color=color, lw=2.6 if thick else 1.2,
                zorder=3 if name == selected else 2,
                label=name + (" (diverged)" if diverged else ""))
        if diverged and n:
            ax.plot(n - 1, shown[-1], "x", ms=8, mew=2, color=color, zorder=4)
    if starts:  # cut a blow-up at 30 × the start, so that it does not flatten the rest
        ax.set_ylim(max(floor, low / 3), 30 * max(starts))
    ax.set_yscale("log")
    # plain-text tick labels ("1e-06"): as fast to draw as any text, unlike mathtext
    ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=True))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"$J(\theta_t) - J_{\min}$ (log scale)")
    if title:
        ax.set_title(title, fontsize=_pt(10))
    ax.legend(fontsize=_pt(8), loc="best", ncol=legend_columns)


class PlaygroundCanvas:
    r"""A two-panel playground frame whose contours are drawn only once.

    Left: the ``selected`` optimizer's path on the contours of ``surface`` (a dot every
    20 steps, a square at the end); right: the loss curves of every run, the selected
    one thick (:func:`draw_loss_curves`).  A page that shows a hundred frames of one
    surface would spend most of its time redrawing the same contours and laying out
    the same tick labels; this figure keeps them, and :meth:`png` redraws only what
    changed.  The layout is fixed, so every frame has the same size in pixels. With
    ``stacked`` the loss panel is under the path panel (narrow enough to read on a
    phone); ``density`` draws ``density`` pixels per CSS pixel (:meth:`png` returns a
    :class:`~optbook.book.figures.FramePNG`), and ``style`` is rcParams to build the figure
    with (e.g. :data:`optbook.book.figures.FRAME_STYLE`, as the slider draws its frames).

    >>> from optbook.surfaces import quadratic
    >>> canvas = PlaygroundCanvas(quadratic)
    >>> png = canvas.png(runs(quadratic, {"SGD": {"lr": 0.1}}, steps=20), "SGD")
    >>> png[:4], canvas.close()
    (b'\x89PNG', None)
    """

    def __init__(self, surface, *, levels: int = 20, figsize=None, dpi: int = 72,
                 stacked: bool = False, density: int = 1, style: Mapping | None = None):
        if density not in (1, 2, 3):
            raise ValueError(f"density must be 1, 2 or 3 pixels per CSS pixel, got {density!r}")
        self.surface, self.density = _surface(surface), density
        with plt.rc_context(style or {}):   # e.g. FRAME_STYLE: its text sizes, kept
            self._build(levels, figsize, dpi, stacked)

    def _build(self, levels, figsize, dpi, stacked):
        self.fig, (self.ax_path, self.ax_loss) = two_panels(
            stacked, figsize, side=((10.0, 3.9), (1.0, 1.15)),
            above=((5.4, 7.2), (1.0, 1.0)), dpi=dpi * self.density)
        contour_figure(self.surface, None, ax=self.ax_path, levels=levels)
        self.ax_path.grid(False)  # the contours are grid enough
        if stacked:
            self.fig.subplots_adjust(left=0.16, right=0.97, bottom=0.07, top=0.95, hspace=0.3)
        else:
            self.fig.subplots_adjust(left=0.07, right=0.985, bottom=0.13, top=0.91, wspace=0.3)
        self.stacked = stacked
        self._drawn = []
        self._backdrop = None    # made at the first png()

    def draw(self, trajectories: Mapping, selected: str, *, title: str | None = None,
             loss_title: str | None = None):
        """Draw one frame (replacing the last) and return the figure."""
        if selected not in trajectories:
            raise ValueError(f"selected={selected!r} is not one of the trajectories "
                             f"({', '.join(trajectories)})")
        for artist in self._drawn:
            artist.remove()
        ax = self.ax_path
        path = trajectories[selected]
        points = np.asarray(getattr(path, "points", path), dtype=float)
        finite = points[np.isfinite(points).all(axis=1)]  # rows after a divergence are nan
        diverged = getattr(path, "diverged_at", None) is not None or len(finite) < len(points)
        points = finite
        color = color_of(selected)
        # the whole path: the axes stay on the window and clip what leaves it
        self._drawn = [
            *ax.plot(points[:, 0], points[:, 1], "-", color=color, lw=1.8, marker="o",
                     ms=3, markevery=20, label=selected, zorder=3),
            *ax.plot(*points[0], "o", color="k", ms=5, zorder=4),
            *ax.plot(*points[-1], "s", ms=6, color=color, mec="k", zorder=5),
        ]
        (x0, x1), (y0, y1) = self.surface.window
        x, y = points[-1]
        note = ("diverged" if diverged else None if x0 <= x <= x1 and y0 <= y <= y1 else "ends outside the window")
        if note:
            self._drawn.append(ax.text(0.02, 0.02, note, transform=ax.transAxes, fontsize=_pt(9),
                                       color="#b91c1c"))
        ax.title.set_text(title or f"{selected} on {self.surface.name}")  # keeps its place
        empty_axes(self.ax_loss)
        draw_loss_curves(self.ax_loss, self.surface, trajectories, selected=selected,
                         title=loss_title, legend_columns=2 if self.stacked else 1)
        return self.fig

    def png(self, trajectories: Mapping, selected: str, *, title: str | None = None,
            loss_title: str | None = None, colors: int = 32) -> bytes:
        """One frame as PNG bytes with an adaptive palette of ``colors`` colours (a
        third of the size of a full-colour PNG), e.g. for
        :func:`optbook.book.widgets.frame_slider`.  Drawn on a kept image of the contours
        (:class:`optbook.book.figures.Backdrop`): the same pixels as a full redraw."""

        check_colors(colors)
        self.draw(trajectories, selected, title=title, loss_title=loss_title)
        if self._backdrop is None:   # the contours and the path panel's axes, kept
            self._backdrop = Backdrop(self.fig, self.ax_path, [self.ax_loss])
        return frame_png(self._backdrop.image(), self.density, colors)

    def close(self) -> None:
        plt.close(self.fig)


def playground_figure(surface, trajectories: Mapping, selected: str, *,
                      title: str | None = None, loss_title: str | None = None,
                      levels: int = 20, figsize=(10.0, 3.9)):
    """One playground frame as a new matplotlib Figure (see :class:`PlaygroundCanvas`)."""
    canvas = PlaygroundCanvas(surface, levels=levels, figsize=figsize)
    return canvas.draw(trajectories, selected, title=title, loss_title=loss_title)


def _palette_png(image, colors: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    # octree keeps the few pixels of a thin line's colour that median cut merges away
    image.quantize(colors=colors, method=Image.Quantize.FASTOCTREE).save(out, format="PNG",
                                                                         compress_level=9)
    return out.getvalue()


def compact_png(fig, dpi: int = 72, colors: int = 32) -> bytes:
    """Render ``fig`` to a PNG with an adaptive palette of ``colors`` colours and close
    it: about a third the size of :func:`optbook.book.figures.figure_png`'s full-colour
    PNG, which matters when a page carries a hundred precomputed frames."""
    from PIL import Image

    check_colors(colors)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    buf.seek(0)
    return _palette_png(Image.open(buf).convert("RGB"), colors)
