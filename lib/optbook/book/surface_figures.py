"""Figures of 2-D loss surfaces and the paths optimizers take on them (8.1, 8.4 onwards),
with their loss curves, and the fast slider frames of both."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from optbook.book.figures import (COLORS, FramePNG, _finish_curves, _KeptFrames,
                                  _path_color, _pt, color_of, empty_axes,
                                  plain_log_axis, two_panels)


def _draw_surface(ax, surface, *, resolution: int = 201, levels: int = 25,
                  title: str | None = None) -> None:
    """The background of every path figure: contours of ``surface`` on a
    ``resolution`` × ``resolution`` grid, a star on each known minimum, the axes cut to
    the surface's window, and a title (by default the surface's name and formula)."""
    X, Y, Z = surface.grid(resolution)
    ax.contour(X, Y, Z, levels=surface.contour_levels(levels, resolution), cmap="Greys_r",
               linewidths=0.7, alpha=0.8)
    for mx, my in surface.minima:
        ax.plot(mx, my, "*", ms=13, color="#facc15", mec="k", mew=0.8, zorder=5)
    (x0, x1), (y0, y1) = surface.window
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="$x$", ylabel="$y$")
    ax.set_title(_surface_title(surface, title), fontsize=_pt(10))


def _surface_title(surface, title: str | None = None) -> str:
    return title or f"{surface.name}: $J = {surface.formula}$"


def contour_figure(surface, paths: dict | None = None, *, ax=None, levels: int = 25,
                   title: str | None = None, show_start: bool = True, figsize=(6.4, 4.8),
                   marker_every: int | None = None):
    r"""Contours of ``surface`` with each optimizer's path on top.

    ``paths`` maps a label to a :class:`optbook.surfaces.Trajectory` (or an ``(n, 2)``
    array of points).  Known minima are marked with a star; a path that diverged is
    drawn up to its last finite point (the axes stay on the window) and labelled "diverged".
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    _draw_surface(ax, surface, levels=levels, title=title)
    for i, (label, path) in enumerate((paths or {}).items()):
        pts = np.asarray(getattr(path, "points", path))
        diverged = getattr(path, "diverged_at", None)
        name = label + (" (diverged)" if diverged else "")
        color = color_of(label.split(" ")[0], i)
        ax.plot(pts[:, 0], pts[:, 1], "-", color=color, lw=1.8, label=name, zorder=3,
                marker="o" if marker_every else None, ms=3, markevery=marker_every)
        if show_start and i == 0:
            ax.plot(pts[0, 0], pts[0, 1], "o", color="k", ms=5, zorder=4)
    if paths:
        ax.legend(fontsize=_pt(8), loc="best")
    fig.tight_layout()
    return fig




def loss_curves_figure(curves: dict, *, ax=None, logy: bool = True, xlabel: str = "step $t$",
                       ylabel: str = r"loss $J(\theta_t)$", title: str | None = None,
                       figsize=(6.4, 4.0)):
    """Loss curves, one per label (the book's colour per optimizer name), log scale by default."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    for i, (label, values) in enumerate(curves.items()):
        values = np.asarray(getattr(values, "losses", values), dtype=float)
        ax.plot(np.arange(len(values)), values, lw=2, color=color_of(label.split(" ")[0], i), label=label)
    return _finish_curves(fig, ax, logy=logy, xlabel=xlabel, ylabel=ylabel, title=title)




def _first_outside(points, window) -> int:
    """Index of the first point outside ``window`` (the last index if none is)."""
    (x0, x1), (y0, y1) = window
    x, y = points[:, 0], points[:, 1]
    outside = np.flatnonzero((x < x0) | (x > x1) | (y < y0) | (y > y1))
    return int(outside[0]) if len(outside) else len(points) - 1


def paths_and_losses_figure(surface, paths: dict, *, title: str | None = None,
                            loss_title: str | None = None, colors: dict | None = None,
                            excess: bool = False, loss_floor: float = 1e-12,
                            cut_diverged: bool = True, mark_diverged: bool = False,
                            max_loss_factor: float | None = 30.0,
                            min_loss_factor: float | None = 1e-16,
                            resolution: int = 201, levels: int = 25,
                            legend: str = "both", legend_loc: str = "upper right",
                            stacked: bool = False, figsize=None):
    r"""Two panels: each optimizer's path on the contours of ``surface`` (left) and its
    loss :math:`J(\theta_t)` against the step on a log scale (right); with ``stacked``,
    the loss panel is under the path panel instead (a figure narrow enough to read on a
    phone: slider frames). ``figsize`` defaults to (11, 4.2) inches side by side and to
    (5.4, 6.6) stacked.

    ``paths`` maps a label to a :class:`optbook.surfaces.Trajectory`.  A label's first
    word picks the book's colour (``"SGD ..."``, ``"Momentum ..."``, ``"Adam (α = 0.1)"``)
    unless ``colors`` maps the label to one.  The contours are drawn on a ``resolution``
    × ``resolution`` grid with ``levels`` levels (a slider renders one figure per frame,
    so its pages may ask for a coarser grid).

    With ``excess=True`` the right panel shows the excess loss
    :math:`J(\theta_t) - J_{\min}` instead, raised to ``loss_floor`` so that an exact
    zero can be drawn.  A run that diverged is labelled so; with ``cut_diverged`` its
    path is drawn only until it first leaves the window, and with ``mark_diverged`` its
    label gives the step and its loss curve ends in a cross.  The loss axis is cut at
    ``max_loss_factor`` times the largest starting loss so that a blow-up does not
    flatten the other curves, and below at ``min_loss_factor`` times it (losses can fall
    to 1e-200 and beyond, far below anything worth seeing); ``None`` leaves that end to
    matplotlib.  ``legend`` puts the legend on ``"both"`` panels, only the ``"path"``
    panel or only the ``"loss"`` panel, at ``legend_loc``.
    """
    _check_legend(legend)
    fig, (ax_path, ax_loss) = two_panels(stacked, figsize)
    _draw_surface(ax_path, surface, resolution=resolution, levels=levels, title=title)
    _draw_paths_and_losses(ax_path, ax_loss, surface, paths, loss_title=loss_title,
                           colors=colors, excess=excess, loss_floor=loss_floor,
                           cut_diverged=cut_diverged, mark_diverged=mark_diverged,
                           max_loss_factor=max_loss_factor, min_loss_factor=min_loss_factor,
                           legend=legend, legend_loc=legend_loc)
    fig.tight_layout()
    return fig


def _check_legend(legend) -> None:
    if legend not in ("both", "path", "loss"):
        raise ValueError(f"Invalid legend: {legend!r} (must be 'both', 'path' or 'loss')")


def _draw_paths_and_losses(ax_path, ax_loss, surface, paths, *, loss_title, colors, excess,
                           loss_floor, cut_diverged, mark_diverged, max_loss_factor,
                           min_loss_factor, legend, legend_loc) -> None:
    """What changes from frame to frame in :func:`paths_and_losses_figure`: the paths
    and their legend on ``ax_path`` (its contours are drawn already), and everything on
    ``ax_loss``."""
    f_min = (surface.f_min or 0.0) if excess else None
    start_loss, low = 0.0, np.inf
    for i, (label, path) in enumerate(paths.items()):
        color = _path_color(label, i, colors)
        diverged = getattr(path, "diverged_at", None)
        if diverged:
            name = label + (f" (diverged at t = {diverged})" if mark_diverged else " (diverged)")
        else:
            name = label
        pts, values = np.asarray(path.points), np.asarray(path.losses, dtype=float)
        if excess:
            values = np.maximum(values - f_min, loss_floor)
        if diverged and cut_diverged:  # draw it only until it first leaves the window
            pts = pts[:_first_outside(pts, surface.window) + 1]
        ax_path.plot(pts[:, 0], pts[:, 1], "-", color=color, lw=1.8, label=name, zorder=3)
        ax_loss.plot(np.arange(len(values)), values, lw=2, color=color, label=name)
        if diverged and mark_diverged:
            ax_loss.plot(len(values) - 1, values[-1], "x", ms=9, mew=2, color=color)
        start_loss = max(start_loss, float(values[0]))
        low = min(low, float(np.nanmin(values)))
    if paths:
        first = np.asarray(next(iter(paths.values())).points)
        ax_path.plot(first[0, 0], first[0, 1], "o", color="k", ms=5, zorder=4)
        for ax, panel in ((ax_path, "path"), (ax_loss, "loss")):
            if legend in ("both", panel):
                ax.legend(fontsize=_pt(8), loc=legend_loc)
    ax_loss.set_yscale("log")
    plain_log_axis(ax_loss)
    if start_loss > 0:
        bottom = None if min_loss_factor is None else max(low / 3, start_loss * min_loss_factor)
        top = None if max_loss_factor is None else start_loss * max_loss_factor
        ax_loss.set_ylim(bottom, top)
    ax_loss.set_xlabel("step $t$")
    ax_loss.set_ylabel(r"$J(\theta_t) - J_{\min}$ (log scale)" if excess
                       else r"loss $J(\theta_t)$")
    if loss_title:
        ax_loss.set_title(loss_title, fontsize=_pt(10))


class PathsAndLossesFrames(_KeptFrames):
    r"""The frames of a slider over :func:`paths_and_losses_figure`, made fast.

    ``frames = PathsAndLossesFrames(surface, **options)`` takes the options of
    :func:`paths_and_losses_figure` (all but ``paths``, ``title`` and ``loss_title``);
    ``frames(paths, title=..., loss_title=...)`` returns one frame as PNG bytes, which
    :func:`optbook.book.widgets.frame_slider` accepts from a ``render`` function.

    The first call builds the figure and its layout as :func:`paths_and_losses_figure`
    does and keeps an image of what no frame changes: the contours, the path panel's
    axes, ticks and labels.  Each frame then starts from that image and draws only what
    it changes: the paths, the minima and start point above them, the legend and the
    title of the path panel, and the loss panel (whose scale follows the frame's
    losses).  Drawing the contours and laying out text is most of the time a
    two-panel figure takes, so a frame costs a fraction of a new figure; the image is
    the same as a full redraw of the same figure (see the tests).  Every frame has the
    size and layout of the first (no per-frame tight cropping). A frame is drawn with
    ``density`` pixels per CSS pixel (2: sharp on high-DPI screens) and shown as large
    as the figure is at ``dpi`` (a :class:`FramePNG`); ``colors`` gives it a palette of
    that many colours (:func:`frame_png`).
    """

    #: What is fixed when the figure is built; the other options are needed per frame.
    LAYOUT = ("resolution", "levels", "figsize", "stacked")

    def __init__(self, surface, *, dpi: int = 90, density: int = 1,
                 colors: int | None = None, **options):
        import inspect

        # paths_and_losses_figure's own keyword options and defaults, but the per-frame
        # title and loss_title
        defaults = {name: p.default for name, p in
                    inspect.signature(paths_and_losses_figure).parameters.items()
                    if p.kind is p.KEYWORD_ONLY and name not in ("title", "loss_title")}
        unknown = set(options) - set(defaults)
        if unknown:
            raise TypeError(f"PathsAndLossesFrames got unknown option(s) {sorted(unknown)}; "
                            f"it takes those of paths_and_losses_figure: {sorted(defaults)}")
        self.options = {**defaults, **options}
        _check_legend(self.options["legend"])
        super().__init__(dpi=dpi, density=density, colors=colors)
        self.surface = surface

    def __call__(self, paths: dict, *, title: str | None = None,
                 loss_title: str | None = None) -> FramePNG:
        if self.fig is None:
            self._build(paths, title, loss_title)
        else:
            self._update(paths, title, loss_title)
        return self._render()

    def _build(self, paths, title, loss_title):
        with plt.rc_context({"figure.dpi": self.dpi * self.density}):
            fig = paths_and_losses_figure(self.surface, paths, title=title,
                                          loss_title=loss_title, **self.options)
        self.ax_path, self.ax_loss = fig.axes
        self._keep(fig, self.ax_path, [self.ax_loss])

    def _update(self, paths, title, loss_title):
        ax_path = self.ax_path
        minima = ax_path.lines[:len(self.surface.minima)]   # drawn first, and kept
        for line in ax_path.lines[len(minima):]:
            line.remove()
        if ax_path.legend_ is not None:
            ax_path.legend_.remove()
        ax_path.title.set_text(_surface_title(self.surface, title))
        empty_axes(self.ax_loss)
        per_frame = {k: v for k, v in self.options.items() if k not in self.LAYOUT}
        _draw_paths_and_losses(ax_path, self.ax_loss, self.surface, paths,
                               loss_title=loss_title, **per_frame)


# --- 8.1 gradient descent variants -------------------------------------------------


def batch_size_color(batch_size: int, N: int) -> str:
    """One colour per batch size on the 8.1 figures: B = 1 (SGD) red, B = N (full batch)
    near-black, mini-batches in blue-green shades that darken as B grows."""
    if batch_size <= 1:
        return COLORS["SGD"]
    if batch_size >= N:
        return COLORS["truth"]
    shade = np.log(batch_size) / np.log(N)  # 0 < shade < 1
    return plt.get_cmap("viridis")(0.85 - 0.6 * shade)


def batch_size_race_figure(runs: dict, floor: float, *, N: int | None = None,
                           figsize=(9.0, 3.6), title: str | None = None):
    r"""The excess loss :math:`J - J^*` of several :class:`optbook.minibatch.MinibatchRun`
    against the number of updates (left) and against wall-clock seconds (right).

    ``runs`` maps a label to a run; ``floor`` is :math:`J^*`.  Both axes are
    logarithmic, so the first point shown is after the first update.
    """
    N = N or max(r.batch_size for r in runs.values())
    fig, (ax_u, ax_s) = plt.subplots(1, 2, figsize=figsize, sharey=True)
    for label, run in runs.items():
        keep = run.updates > 0
        gap = np.maximum(run.losses[keep] - floor, 1e-12)
        color = batch_size_color(run.batch_size, N)
        ax_u.plot(run.updates[keep], gap, lw=1.8, color=color, label=label)
        ax_s.plot(run.seconds[keep], gap, lw=1.8, color=color, label=label)
    for ax in (ax_u, ax_s):
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax_u.set_xlabel("number of updates (log scale)")
    ax_s.set_xlabel("wall-clock seconds spent on updates (log scale)")
    ax_u.set_ylabel(r"$J(\theta) - J^*$ on all the data")
    ax_u.set_title("progress per update", fontsize=_pt(10))
    ax_s.set_title("progress per second", fontsize=_pt(10))
    ax_s.legend(fontsize=_pt(8), loc="lower left")
    if title:
        fig.suptitle(title, fontsize=_pt(11))
    fig.tight_layout()
    return fig


def minibatch_path_figure(surface, path, reference=None, *, label: str = "mini-batch SGD",
                          reference_label: str = "batch GD ($B = N$)", title: str | None = None,
                          loss_ylim: tuple[float, float] | None = None, stacked: bool = False,
                          figsize=None):
    r"""Left: the contours of ``surface`` with a mini-batch ``path`` (and, dashed, a
    ``reference`` path such as batch gradient descent).  Right: :math:`J - J^*` along
    both paths, per update (``loss_ylim`` fixes its range, so that the frames of a
    slider can be compared).  Paths are :class:`optbook.surfaces.Trajectory` objects.
    With ``stacked`` the loss panel is under the contours (a figure narrow enough for a
    phone) and the title is the top panel's; ``figsize`` defaults to (8.4, 3.4) inches
    side by side and (5.4, 6.6) stacked.
    """
    fig, (ax_c, ax_l) = two_panels(stacked, figsize, side=((8.4, 3.4), (1.15, 1)),
                                   above=((5.4, 6.6), (1.25, 1)))
    X, Y, Z = surface.grid(161)
    ax_c.contour(X, Y, Z, levels=surface.contour_levels(18), cmap="Greys_r",
                 linewidths=0.7, alpha=0.8)
    (x0, x1), (y0, y1) = surface.window
    ax_c.set_xlim(x0, x1)
    ax_c.set_ylim(y0, y1)
    ax_c.set_xlabel("slope $w$")
    ax_c.set_ylabel("intercept $b$")
    ax_l.set_yscale("log")
    _draw_minibatch_paths(ax_c, ax_l, surface, path, reference, label=label,
                          reference_label=reference_label, loss_ylim=loss_ylim,
                          loss_legend=not stacked)
    if title and stacked:
        ax_c.set_title(title, fontsize=_pt(11))
    elif title:
        fig.suptitle(title, fontsize=_pt(11))
    fig.tight_layout()
    return fig


def _draw_minibatch_paths(ax_c, ax_l, surface, path, reference, *, label, reference_label,
                          loss_ylim, loss_legend: bool = True) -> None:
    """What changes from frame to frame in :func:`minibatch_path_figure`: the minima,
    the paths and their legend on ``ax_c`` (its contours are drawn already), and the
    curves, scale, labels and (unless stacked under ``ax_c``, whose legend serves both)
    legend of ``ax_l``."""
    for mx, my in surface.minima:
        ax_c.plot(mx, my, "*", ms=13, color="#facc15", mec="k", mew=0.8, zorder=5)
    diverged = getattr(path, "diverged_at", None)
    if reference is not None:
        ax_c.plot(reference.points[:, 0], reference.points[:, 1], "--", lw=1.5,
                  color=COLORS["truth"], label=reference_label, zorder=3)
    name = label + (" (diverged)" if diverged else "")
    ax_c.plot(path.points[:, 0], path.points[:, 1], "-", lw=1.3, color=COLORS["SGD"],
              marker="o", ms=2.5, label=name, zorder=4)
    ax_c.plot(*path.points[0], "o", color="k", ms=5, zorder=6)
    ax_c.legend(fontsize=_pt(8), loc="lower right")
    floor = surface.f_min or 0.0
    for p, lab, style, color in ((reference, reference_label, "--", COLORS["truth"]),
                                 (path, name, "-", COLORS["SGD"])):
        if p is not None:
            ax_l.plot(np.arange(len(p.losses)), np.maximum(p.losses - floor, 1e-12), style,
                      lw=1.6, color=color, label=lab)
    ax_l.set_yscale("log")
    if loss_ylim is not None:
        ax_l.set_ylim(*loss_ylim)
    ax_l.set_xlabel("update $t$")
    ax_l.set_ylabel(r"$J(\theta_t) - J^*$")
    if loss_legend:
        ax_l.legend(fontsize=_pt(8), loc="upper right")


class MinibatchPathFrames(_KeptFrames):
    r"""The frames of a slider over :func:`minibatch_path_figure` (stacked), made fast
    as :class:`PathsAndLossesFrames` makes its own: the contours and the top panel's
    axes are drawn once; each frame draws the paths, the legend, the title and the loss
    panel. ``frames(path, reference, label=..., title=...)`` returns a :class:`FramePNG`.
    """

    def __init__(self, surface, *, reference_label: str = "batch GD ($B = N$)",
                 loss_ylim: tuple[float, float] | None = None, figsize=None,
                 dpi: int = 90, density: int = 2, colors: int | None = 64):
        super().__init__(dpi=dpi, density=density, colors=colors)
        self.surface, self.figsize = surface, figsize
        self.reference_label, self.loss_ylim = reference_label, loss_ylim

    def __call__(self, path, reference=None, *, label: str = "mini-batch SGD",
                 title: str | None = None) -> FramePNG:
        if self.fig is None:
            with plt.rc_context({"figure.dpi": self.dpi * self.density}):
                fig = minibatch_path_figure(
                    self.surface, path, reference, label=label, title=title,
                    reference_label=self.reference_label, loss_ylim=self.loss_ylim,
                    stacked=True, figsize=self.figsize)
            self.ax_c, self.ax_l = fig.axes
            self._keep(fig, self.ax_c, [self.ax_l])
        else:
            for line in list(self.ax_c.lines):
                line.remove()
            self.ax_c.legend_.remove()
            self.ax_c.title.set_text(title or "")
            empty_axes(self.ax_l)
            _draw_minibatch_paths(self.ax_c, self.ax_l, self.surface, path, reference,
                                  label=label, reference_label=self.reference_label,
                                  loss_ylim=self.loss_ylim, loss_legend=False)
        return self._render()
