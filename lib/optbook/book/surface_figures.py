"""Figure helpers shared by the chapter's pages.

Pages keep the teaching code visible and call these for the plumbing (hidden with
``hide-input``).  Every helper returns the matplotlib ``Figure`` it made, so a page can
show it, save it, or hand it to :func:`optbook.widgets.frame_slider` as one frame.
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np

from .ewa import ewa, weights

#: One colour per idea, used on every page (raw data, averages, corrected averages).
COLORS = {
    "raw": "#94a3b8",
    "ewa": "#2563eb",
    "corrected": "#dc2626",
    "truth": "#111827",
    "SGD": "#ef4444",
    "Momentum": "#f59e0b",
    "RMSprop": "#22c55e",
    "Adam": "#7c3aed",
    "AdaGrad": "#64748b",
    "AdamW": "#0891b2",
}


#: The base font size (points) of :func:`book_style`. The helpers give every other text
#: size for this base (a legend at 8 points, a panel title at 10) and scale it with the
#: base in force (:func:`_pt`): a figure drawn with :data:`FRAME_STYLE` enlarges them all.
BASE_FONT = 11

#: The rcParams of a slider frame (:func:`optbook.widgets.frame_slider` draws every frame
#: with them). A frame is one image: on a 390 px phone it shrinks to the column, about
#: 360 CSS px, so its small print has to be larger than a static figure's to stay
#: readable there. Frames are drawn about 480 CSS px wide (two panels one above the
#: other, see ``stacked``), shown at full size in a desktop column and at about 0.75 on a
#: phone; with these sizes a legend is 12.5 CSS px on a desktop and over 9 on a phone.
FRAME_STYLE = {
    "font.size": 1.25 * BASE_FONT,   # the base of every helper's explicit sizes: × 1.25
    "axes.titlesize": 12.5,
    "axes.labelsize": 12,
    "legend.fontsize": 10,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
}


def _pt(size: float) -> float:
    """``size`` points for the book's base font, scaled to the base font in force (as
    matplotlib's relative sizes "small", "large" are): unchanged under
    :func:`book_style`, 1.25 times larger in a slider frame (:data:`FRAME_STYLE`)."""
    return size * plt.rcParams["font.size"] / BASE_FONT


class FramePNG(bytes):
    """The bytes of a PNG image drawn with ``density`` pixels per CSS pixel, e.g. 2 for
    an image that is sharp on a high-DPI screen; :func:`optbook.widgets.frame_slider`
    shows it ``width / density`` CSS pixels wide."""

    def __new__(cls, data: bytes, density: int = 1):
        self = super().__new__(cls, data)
        self.density = density
        return self


def book_style() -> None:
    """Apply the book's matplotlib style (call once per page).

    In a notebook, figures are also shown at twice the pixel density ("retina"): the
    same size on the page, sharp on high-DPI screens."""
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # pragma: no cover - IPython is installed with the book
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        set_matplotlib_formats("retina")
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": BASE_FONT,
            "legend.frameon": False,
        }
    )


_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _decade_label(value, _position=None) -> str:
    """``10⁻³`` for a power of ten, nothing otherwise (plain text, no mathtext)."""
    if not value > 0:
        return ""
    exponent = np.log10(value)
    if abs(exponent - round(exponent)) > 1e-9:
        return ""
    return "10" + str(int(round(exponent))).translate(_SUPERSCRIPTS)


def plain_log_axis(ax, axis: str = "y") -> None:
    """Label a log axis 10⁻³, 10⁰, … with Unicode superscripts instead of matplotlib's
    mathtext ``$10^{-3}$``: the same look, but laying out mathtext tick labels is most
    of the time a slider frame takes (the figure is measured twice: tight layout, PNG)."""
    from matplotlib.ticker import FuncFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis

    def minor(value, _position=None):  # only where an axis has few decades to label
        low, high = sorted(target.get_view_interval())
        if not (value > 0 and low > 0 and high / low < 100):
            return ""
        exponent = int(np.floor(np.log10(value) + 1e-9))
        mantissa = round(value / 10.0**exponent)
        if high / low >= 10 and mantissa not in (2, 5):
            return ""
        return f"{mantissa}×10" + str(exponent).translate(_SUPERSCRIPTS)

    target.set_major_formatter(FuncFormatter(_decade_label))
    target.set_minor_formatter(FuncFormatter(minor))


def figure_png(fig, dpi: int = 90) -> bytes:
    """Render ``fig`` to PNG bytes and close it (frames for sliders are made this way)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


# --- 8.3 exponentially weighted averages ------------------------------------------


def ewa_figure(theta, beta: float, *, days=None, truth=None, bias_correction: bool = True,
               title: str | None = None, ylabel: str = "temperature (°C)",
               figsize=(8, 3.6)):
    r"""Raw series, its average :math:`V_t` and (optionally) :math:`\hat V_t`."""
    theta = np.asarray(theta, dtype=float)
    days = np.arange(1, len(theta) + 1) if days is None else np.asarray(days)
    fig, ax = plt.subplots(figsize=figsize)
    ax.plot(days, theta, ".", ms=4, color=COLORS["raw"], label=r"data $\theta_t$")
    if truth is not None:
        ax.plot(days, truth, "--", lw=1, color=COLORS["truth"], label="underlying trend")
    ax.plot(days, ewa(theta, beta), lw=2, color=COLORS["ewa"], label=r"$V_t$ (no correction)")
    if bias_correction:
        ax.plot(days, ewa(theta, beta, bias_correction=True), lw=2,
                color=COLORS["corrected"], label=r"$\hat V_t = V_t/(1-\beta^t)$")
    ax.set_xlabel("day $t$")
    ax.set_ylabel(ylabel)
    lo, hi = np.nanmin(theta), np.nanmax(theta)
    ax.set_ylim(min(0.0, lo) - 1, hi + 3)
    ax.set_title(title or rf"$\beta = {beta:g}$: averages over about {1 / (1 - beta):.0f} days")
    ax.legend(loc="lower right", ncol=2, fontsize=_pt(9))
    fig.tight_layout()
    return fig


def ewa_weights_figure(betas, t: int = 60):
    r"""The weight :math:`(1-\beta)\beta^{t-k}` that :math:`V_t` gives to each past value."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    age = np.arange(t)  # how many days ago: t - k
    for beta in betas:
        w = weights(beta, t)[::-1]  # newest first
        ax.plot(age, w, "o-", ms=3, lw=1.5, label=rf"$\beta={beta:g}$ (window $\approx${1 / (1 - beta):.0f})")
    ax.set_xlabel("age of the value (days ago, $t-k$)")
    ax.set_ylabel(r"weight $(1-\beta)\beta^{t-k}$")
    ax.legend(fontsize=_pt(9))
    fig.tight_layout()
    return fig


def bias_factor_figure(betas, t_max: int = 60):
    r"""The shortfall :math:`1-\beta^t` that bias correction divides out."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    t = np.arange(1, t_max + 1)
    for beta in betas:
        ax.plot(t, 1 - beta**t, lw=2, label=rf"$\beta={beta:g}$")
    ax.axhline(1.0, color=COLORS["truth"], lw=0.8)
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"$1-\beta^t$ (sum of the weights)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=_pt(9))
    fig.tight_layout()
    return fig


# --- 2-D loss surfaces and optimizer paths (8.4 onwards) --------------------------


def color_of(name: str, i: int = 0) -> str:
    """The book's colour for an optimizer name (falls back to matplotlib's cycle)."""
    return COLORS.get(name, f"C{i}")


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


def _finish_curves(fig, ax, *, logy, xlabel, ylabel, title):
    """Axis scale, labels, title and legend shared by the curve figures."""
    if logy:
        ax.set_yscale("log")
        plain_log_axis(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=_pt(10))
    ax.legend(fontsize=_pt(8))
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


def _path_color(label: str, i: int, colors: dict | None) -> str:
    """``colors[label]`` if given, else the book's colour for the label's first word
    (``"RMSprop, β = 0.9"`` and ``"RMSprop (α = 0.1)"`` both get RMSprop's colour)."""
    if colors and label in colors:
        return colors[label]
    return color_of(label.split(" ")[0].rstrip(",;:"), i)


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
    if stacked:
        fig, (ax_path, ax_loss) = plt.subplots(2, 1, figsize=figsize or (5.4, 6.6),
                                               gridspec_kw={"height_ratios": [1.25, 1.0]})
    else:
        fig, (ax_path, ax_loss) = plt.subplots(1, 2, figsize=figsize or (11.0, 4.2),
                                               gridspec_kw={"width_ratios": [1.3, 1.0]})
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


def empty_axes(ax) -> None:
    """Remove what was plotted on ``ax`` (lines, texts, collections, legend, title) but
    keep the axes themselves, so that the next frame can be plotted on them.  Unlike
    ``ax.cla()``, this keeps the tick objects: building them anew is a third of the
    time a frame of a two-panel figure takes."""
    for artist in [*ax.lines, *ax.texts, *ax.collections]:
        artist.remove()
    if ax.legend_ is not None:
        ax.legend_.remove()
    ax.set_title("")
    ax.relim()
    ax.set_autoscale_on(True)


class Backdrop:
    """What does not change between the frames of a figure, drawn once and kept as an
    image.

    ``kept`` is the axes whose background stays (its contours and other collections,
    grid, ticks and labels); what is plotted on it as lines, texts, legend and title
    changes from frame to frame.  The axes in ``redrawn`` change entirely.  The image is
    taken now: ``fig`` laid out and drawn once with those parts hidden (the title with
    no text, so that it is placed as in any full draw).  :meth:`image` then starts from
    that image, draws the changing artists of ``kept`` in the order a full draw would,
    and draws the ``redrawn`` axes whole: the same pixels as ``fig.canvas.draw()``
    (the tests check it), for a fraction of the time.
    """

    def __init__(self, fig, kept, redrawn=()):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        if not isinstance(fig.canvas, FigureCanvasAgg):
            FigureCanvasAgg(fig)    # a figure closed in pyplot has lost its Agg canvas
        self.fig, self.kept, self.redrawn = fig, kept, list(redrawn)
        hidden = [a for a in self._changing() if a is not kept.title] + self.redrawn
        text = kept.title.get_text()
        kept.title.set_text("")
        for artist in hidden:
            artist.set_visible(False)
        try:
            fig.canvas.draw()
            self._background = fig.canvas.copy_from_bbox(fig.bbox)
        finally:
            for artist in hidden:
                artist.set_visible(True)
            kept.title.set_text(text)

    def _changing(self):
        """The kept axes' artists that each frame draws, in the order Axes.draw uses."""
        ax = self.kept
        wanted = {id(a) for a in (*ax.lines, *ax.texts, ax.title, ax.legend_)}
        artists = [a for a in ax.get_children() if id(a) in wanted]
        return sorted(artists, key=lambda a: a.get_zorder())

    def image(self):
        """The current frame, as a PIL image (RGBA)."""
        from PIL import Image

        canvas = self.fig.canvas
        canvas.restore_region(self._background)
        for artist in self._changing():
            self.kept.draw_artist(artist)
        renderer = canvas.get_renderer()
        for ax in self.redrawn:
            ax.draw(renderer)
        width, height = canvas.get_width_height()
        return Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw",
                                "RGBA", 0, 1)


def frame_png(image, density: int = 1, colors: int | None = None) -> FramePNG:
    """A PIL image as a :class:`FramePNG`: full colour, or with an adaptive palette of
    ``colors`` colours (2 to 256), about a third of the bytes for a figure of lines on
    white, which a phone fetches once per slider position."""
    from PIL import Image

    buf = io.BytesIO()
    if colors is None:
        image.save(buf, format="png", compress_level=6)
    else:
        if not (isinstance(colors, int) and 2 <= colors <= 256):
            raise ValueError(f"Invalid colors: {colors!r} (must be an integer from 2 to 256)")
        # octree keeps the few pixels of a thin line's colour that median cut merges away
        image.convert("RGB").quantize(colors=colors, method=Image.Quantize.FASTOCTREE).save(
            buf, format="png", compress_level=6)
    return FramePNG(buf.getvalue(), density)


class _KeptFrames:
    """What the fast frame makers share: the figure is built at the first call, an
    image of what no frame changes is kept (:class:`Backdrop`), and each frame is that
    image plus what it changes, as a :class:`FramePNG` drawn with ``density`` pixels per
    CSS pixel, full colour or with a palette of ``colors`` colours (:func:`frame_png`)."""

    def __init__(self, *, dpi: int, density: int, colors: int | None):
        if density not in (1, 2, 3):
            raise ValueError(f"density must be 1, 2 or 3 pixels per CSS pixel, got {density!r}")
        if colors is not None and not (isinstance(colors, int) and 2 <= colors <= 256):
            raise ValueError(f"Invalid colors: {colors!r} (must be an integer from 2 to 256)")
        self.dpi, self.density, self.colors = dpi, density, colors
        self.fig = self._backdrop = None

    def _keep(self, fig, kept, redrawn) -> None:
        plt.close(fig)  # owned by this object, not by pyplot: drawn on its own canvas
        self.fig = fig
        self._backdrop = Backdrop(fig, kept, redrawn)

    def _render(self) -> FramePNG:
        return frame_png(self._backdrop.image(), self.density, self.colors)


class PathsAndLossesFrames(_KeptFrames):
    r"""The frames of a slider over :func:`paths_and_losses_figure`, made fast.

    ``frames = PathsAndLossesFrames(surface, **options)`` takes the options of
    :func:`paths_and_losses_figure` (all but ``paths``, ``title`` and ``loss_title``);
    ``frames(paths, title=..., loss_title=...)`` returns one frame as PNG bytes, which
    :func:`optbook.widgets.frame_slider` accepts from a ``render`` function.

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


# --- 8.4 momentum ------------------------------------------------------------------


def gradient_average_figure(g, m, *, beta: float, names=("$x$ (along the ravine)",
                                                         "$y$ (across the ravine)"),
                            figsize=(11.0, 3.4)):
    r"""One panel per coordinate: the gradients :math:`g_t` (grey) and their running
    average :math:`m_t` with decay ``beta`` (blue), against the step :math:`t`.

    ``g`` and ``m`` have shape ``(T, n)`` for ``n`` coordinates (one panel each).
    """
    g, m = np.atleast_2d(np.asarray(g, dtype=float)), np.atleast_2d(np.asarray(m, dtype=float))
    if g.shape != m.shape:
        raise ValueError(f"g and m must have the same shape, got {g.shape} and {m.shape}")
    t = np.arange(1, g.shape[0] + 1)
    fig, axes = plt.subplots(1, g.shape[1], figsize=figsize, squeeze=False)
    for j, ax in enumerate(axes[0]):
        ax.plot(t, g[:, j], "o-", ms=3, lw=0.8, color=COLORS["raw"], label="gradient $g_t$")
        ax.plot(t, m[:, j], lw=2.2, color=COLORS["ewa"],
                label=rf"average $m_t$ ($\beta = {beta:g}$)")
        ax.axhline(0.0, color=COLORS["truth"], lw=0.7)
        ax.set_xlabel("step $t$")
        ax.set_title(f"component {j + 1}: {names[j]}" if j < len(names) else f"component {j + 1}",
                     fontsize=_pt(10))
        ax.legend(fontsize=_pt(8))
    fig.tight_layout()
    return fig


# --- 8.5 RMSprop and AdaGrad -------------------------------------------------------


def effective_step_figure(curves: dict, *, reference: dict | None = None,
                          colors: dict | None = None,
                          ylabel: str = r"effective step $\alpha/(\sqrt{\cdot}+\varepsilon)$",
                          title: str | None = None, figsize=(8.0, 3.8)):
    r"""Effective learning rates against the step :math:`t = 1, 2, \dots` on log–log axes.

    ``curves`` maps a label to an array; the label's first word picks the book's colour
    (``"AdaGrad"``, ``"RMSprop, β = 0.99"``) unless ``colors`` maps the label to one.
    ``reference`` maps a label to a constant drawn as a dotted horizontal line (e.g. the
    level :math:`\alpha/|g|`).
    """
    fig, ax = plt.subplots(figsize=figsize)
    for i, (label, values) in enumerate(curves.items()):
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, len(values) + 1), values, lw=2,
                color=_path_color(label, i, colors), label=label)
    for label, level in (reference or {}).items():
        ax.axhline(level, ls=":", lw=1.2, color=COLORS["truth"], label=label)
    ax.set_xscale("log")
    return _finish_curves(fig, ax, logy=True, xlabel="step $t$", ylabel=ylabel, title=title)


# --- 8.6 Adam and AdamW -----------------------------------------------------------


def adam_moments_figure(g, beta1: float = 0.9, beta2: float = 0.999, *, mean=None,
                        mean_square=None):
    r"""Adam's moments on a gradient sequence ``g``: :math:`m_t, \hat m_t` (left) and
    :math:`v_t, \hat v_t` (right), with the values they estimate when given."""
    g = np.asarray(g, dtype=float)
    t = np.arange(1, len(g) + 1)
    fig, (ax_m, ax_v) = plt.subplots(1, 2, figsize=(10, 4.2))
    panels = [(ax_m, g, beta1, "m", r"\beta_1", mean, r"$g_t$", r"$\mathbb{E}[g]$"),
              (ax_v, g**2, beta2, "v", r"\beta_2", mean_square, r"$g_t^2$", r"$\mathbb{E}[g^2]$")]
    for ax, x, beta, sym, bsym, target, data_label, target_label in panels:
        ax.plot(t, x, ".", ms=4, color=COLORS["raw"], label=data_label)
        if target is not None:
            ax.axhline(target, ls="--", lw=1, color=COLORS["truth"], label=target_label)
        ax.plot(t, ewa(x, beta), lw=2, color=COLORS["ewa"], label=rf"${sym}_t$")
        ax.plot(t, ewa(x, beta, bias_correction=True), lw=2, color=COLORS["corrected"],
                label=rf"$\hat {sym}_t = {sym}_t/(1-{bsym}^t)$")
        ax.set_xlabel("step $t$")
        ax.set_title(rf"${bsym} = {beta:g}$", fontsize=_pt(10))
        ax.legend(fontsize=_pt(9), loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    ax_m.set_ylabel("first moment")
    ax_v.set_ylabel("second moment")
    fig.tight_layout()
    return fig


def weight_decay_figure(adamw: dict, adam_l2: dict, *, alpha: float | None = None):
    r"""A weight's value over the steps under decoupled decay (AdamW) and under L2 in the
    gradient (Adam + L2): each dict maps :math:`\lambda` to the sequence
    :math:`\theta_0, \theta_1, \dots`."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    styles = ["-", "--", ":", "-."]
    for kind, runs, color in (("AdamW", adamw, COLORS["AdamW"]),
                              ("Adam + L2", adam_l2, COLORS["Adam"])):
        for i, (lam, theta) in enumerate(runs.items()):
            theta = np.asarray(theta, dtype=float)
            ax.plot(np.arange(len(theta)), theta, styles[i % len(styles)], lw=2, color=color,
                    label=rf"{kind}, $\lambda = {lam:g}$")
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"$\theta_t$")
    note = rf", $\alpha = {alpha:g}$" if alpha is not None else ""
    ax.set_title(r"zero data gradient: only the regulariser acts" + note, fontsize=_pt(10))
    ax.legend(fontsize=_pt(8), ncol=2)
    fig.tight_layout()
    return fig


# --- worked example: Adam step by step ---------------------------------------------


def adam_trace_figure(w, alpha: float, *, compare: dict | None = None, target: float = 0.1,
                      stacked: bool = False, figsize=None):
    r"""Adam's iterates :math:`w_t` on :math:`f(w) = w^2` (left, with the band
    :math:`|w| <` ``target``) and its step sizes :math:`|w_t - w_{t-1}|` against
    :math:`\alpha` (right).  ``compare`` adds other runs' iterates to the left panel.
    With ``stacked`` the step sizes are under the iterates (a figure narrow enough for
    a phone); ``figsize`` defaults to (10, 3.6) inches side by side, (5.4, 6.0) stacked."""
    w = np.asarray(w, dtype=float)
    t = np.arange(len(w))
    if stacked:
        fig, (ax_w, ax_s) = plt.subplots(2, 1, figsize=figsize or (5.4, 6.0), sharex=True)
    else:
        fig, (ax_w, ax_s) = plt.subplots(1, 2, figsize=figsize or (10, 3.6))
    ax_w.axhspan(-target, target, color="#facc15", alpha=0.35, lw=0,
                 label=rf"$|w| < {target:g}$")
    for i, (label, other) in enumerate((compare or {}).items()):
        other = np.asarray(other, dtype=float)
        ax_w.plot(np.arange(len(other)), other, "--", lw=1.5,
                  color=color_of(label.split(" ")[0], i + 1), label=label)
    ax_w.plot(t, w, lw=2, color=COLORS["Adam"], label="Adam")
    ax_w.axhline(0, color=COLORS["truth"], lw=0.8)
    if not stacked:   # stacked, the panels share the axis labelled under the lower one
        ax_w.set_xlabel("iteration $t$")
    ax_w.set_ylabel("$w_t$")
    ax_w.set_title(rf"iterates, $\alpha = {alpha:g}$", fontsize=_pt(10))
    ax_w.legend(fontsize=_pt(8))
    steps = np.abs(np.diff(w))
    ax_s.plot(t[1:], steps, lw=2, color=COLORS["Adam"], label=r"$|w_t - w_{t-1}|$")
    ax_s.axhline(alpha, ls="--", lw=1, color=COLORS["truth"], label=r"$\alpha$")
    ax_s.set_xlabel("iteration $t$")
    ax_s.set_ylabel("step size")
    ax_s.set_ylim(0, 1.25 * max(alpha, steps.max(initial=0.0)))
    ax_s.set_title("how far each step moves $w$", fontsize=_pt(10))
    ax_s.legend(fontsize=_pt(8))
    fig.tight_layout()
    return fig


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
    if stacked:
        fig, (ax_c, ax_l) = plt.subplots(2, 1, figsize=figsize or (5.4, 6.6),
                                         gridspec_kw={"height_ratios": [1.25, 1]})
    else:
        fig, (ax_c, ax_l) = plt.subplots(1, 2, figsize=figsize or (8.4, 3.4),
                                         gridspec_kw={"width_ratios": [1.15, 1]})
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


# --- optimizers side by side -------------------------------------------------------


#: The nodes of :func:`family_tree_figure`: name -> (x, y, year, who, what it added).
FAMILY_TREE = {
    "SGD": (0.0, 0.0, "1951", "Robbins & Monro", r"step against $g_t$"),
    "Momentum": (3.0, 1.45, "1964", "Polyak", "+ velocity $m_t$,\nan average of $g_t$"),
    "Nesterov": (6.0, 1.45, "1983", "Nesterov", "+ gradient at the\nlook-ahead point"),
    "AdaGrad": (3.0, -1.45, "2011", "Duchi, Hazan & Singer",
                "+ a step per weight,\n$\\alpha/\\sqrt{G_t}$"),
    "RMSprop": (6.0, -1.45, "2012", "Hinton (lecture)", "sum $G_t$ $\\to$ decaying\naverage $v_t$"),
    "Adam": (9.0, 0.0, "2014", "Kingma & Ba", "$m_t$ and $v_t$\n+ bias correction"),
    "AdamW": (12.0, 0.0, "2017/2019", "Loshchilov & Hutter", "+ decoupled\nweight decay"),
}

#: The arrows of :func:`family_tree_figure`: (parent, child, bend); a non-zero bend
#: curves the arrow (matplotlib's ``arc3`` radius) around a box in its way.
FAMILY_EDGES = (("SGD", "Momentum", 0.0), ("Momentum", "Nesterov", 0.0),
                ("SGD", "AdaGrad", 0.0), ("AdaGrad", "RMSprop", 0.0),
                ("Momentum", "Adam", 0.25), ("RMSprop", "Adam", 0.0), ("Adam", "AdamW", 0.0))


def family_tree_figure(nodes: dict | None = None, edges=FAMILY_EDGES, *,
                       box=(2.7, 1.25), figsize=(11.0, 4.6)):
    r"""The optimizer family tree, drawn with matplotlib only (no graphviz): one rounded
    box per method with its year, authors and the mechanism it added, and an arrow from
    each method to the ones built on it.  ``nodes`` defaults to :data:`FAMILY_TREE`.

    Arrows start and end on the boxes' edges, so they never cross a box's text.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    nodes = FAMILY_TREE if nodes is None else nodes
    w, h = box
    fig, ax = plt.subplots(figsize=figsize)
    for name, (x, y, year, who, added) in nodes.items():
        color = COLORS.get(name, "#b45309")
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                    boxstyle="round,pad=0.02,rounding_size=0.12",
                                    fc="white", ec=color, lw=2.2, zorder=2))
        ax.text(x, y + 0.38, f"{name} ({year})", ha="center", va="center",
                fontsize=_pt(11.5), fontweight="bold", color=color, zorder=3)
        ax.text(x, y + 0.12, who, ha="center", va="center", fontsize=_pt(9.5),
                color="#475569", zorder=3)
        ax.text(x, y - 0.27, added, ha="center", va="center", fontsize=_pt(9.5),
                linespacing=1.25, zorder=3)

    def edge_point(centre, towards):
        """Where the ray from a box's centre towards another point leaves the box."""
        (cx, cy), (tx, ty) = centre, towards
        dx, dy = tx - cx, ty - cy
        scale = min((w / 2) / abs(dx) if dx else np.inf, (h / 2) / abs(dy) if dy else np.inf)
        return cx + dx * scale, cy + dy * scale

    for parent, child, *bend in edges:
        p, c = nodes[parent][:2], nodes[child][:2]
        ax.add_patch(FancyArrowPatch(edge_point(p, c), edge_point(c, p), arrowstyle="-|>",
                                     connectionstyle=f"arc3,rad={bend[0] if bend else 0.0}",
                                     mutation_scale=16, lw=1.5, color="#334155", zorder=1,
                                     shrinkA=2, shrinkB=2))
    xs = [v[0] for v in nodes.values()]
    ys = [v[1] for v in nodes.values()]
    ax.set_xlim(min(xs) - w / 2 - 0.1, max(xs) + w / 2 + 0.1)
    ax.set_ylim(min(ys) - h / 2 - 0.1, max(ys) + h / 2 + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    return fig


def figure_svg(fig) -> bytes:
    """Render ``fig`` to SVG bytes (text as paths, so no fonts are needed) and close it.

    For ``IPython.display.SVG(data=...)``: a diagram stays sharp at any zoom.  The output
    carries no date and fixed element ids, so the same figure always gives the same bytes.
    """
    buf = io.BytesIO()
    with plt.rc_context({"svg.fonttype": "path", "svg.hashsalt": "optbook"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buf.getvalue()


def bias_correction_compact_figure(t, moments: dict, steps: dict, *, figsize=(11.0, 3.6)):
    r"""Bias correction in two panels, against the step :math:`t` (log scale).

    Left, ``moments``: running averages of a constant gradient :math:`g = 1` with and
    without correction (label → values); the true value 1 is the dotted line.  Right,
    ``steps``: the size of each update divided by :math:`\alpha` (label → values), where
    1 is the step Adam is designed to take.  A label's first word picks the book's
    colour; labels containing "corrected" (but not "uncorrected") are drawn dashed.
    """
    t = np.asarray(t)
    fig, (ax_m, ax_s) = plt.subplots(1, 2, figsize=figsize)
    for ax, curves in ((ax_m, moments), (ax_s, steps)):
        for i, (label, values) in enumerate(curves.items()):
            dashed = "corrected" in label and "uncorrected" not in label
            ax.plot(t, np.asarray(values, dtype=float), "--" if dashed else "-", lw=2,
                    color=color_of(label.split(" ")[0], i), label=label)
        ax.axhline(1.0, ls=":", lw=1.2, color=COLORS["truth"])
        ax.set_xscale("log")
        ax.set_xlabel("step $t$ (log scale)")
        ax.legend(fontsize=_pt(8))
    ax_m.set_ylabel("estimate of $g$ or $g^2$ (true value 1)")
    ax_m.set_title("the averages, for a constant gradient $g = 1$", fontsize=_pt(10))
    ax_s.set_yscale("log")
    ax_s.set_ylabel(r"step size $/\ \alpha$ (log scale)")
    ax_s.set_title("how far one update moves a weight", fontsize=_pt(10))
    fig.tight_layout()
    return fig


# --- common mistakes ---------------------------------------------------------------


def loss_grid_figure(grid, row_values, col_values, *, row_label: str, col_label: str,
                     ax=None, title: str | None = None, vmin=None, vmax=None,
                     figsize=(6.0, 3.6)):
    r"""A heat map of ``log10`` of a grid of final losses, each cell annotated.

    ``grid[i, j]`` belongs to ``row_values[i]`` and ``col_values[j]``; a non-finite
    value (a diverged run) is drawn as a black cell marked "div".  ``vmin``/``vmax``
    (in ``log10`` units) fix the colour scale so that two panels can share it.
    """
    grid = np.asarray(grid, dtype=float)
    if grid.shape != (len(row_values), len(col_values)):
        raise ValueError(f"grid has shape {grid.shape} but there are {len(row_values)} rows "
                         f"and {len(col_values)} columns")
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    finite = np.isfinite(grid) & (grid > 0)
    logs = np.where(finite, np.log10(np.where(finite, grid, 1.0)), np.nan)
    cmap = plt.get_cmap("viridis").with_extremes(bad="black")
    image = ax.imshow(logs, cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            text = f"{grid[i, j]:.2g}" if finite[i, j] else "div"
            ax.text(j, i, text, ha="center", va="center", fontsize=_pt(7.5),
                    color="white" if not finite[i, j] or logs[i, j] < np.nanmean(logs) else "black")
    ax.set_xticks(range(len(col_values)), [f"{v:g}" for v in col_values], fontsize=_pt(8))
    ax.set_yticks(range(len(row_values)), [f"{v:g}" for v in row_values], fontsize=_pt(8))
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    ax.grid(False)
    fig.colorbar(image, ax=ax, label=r"$\log_{10}$ final loss")
    if title:
        ax.set_title(title, fontsize=_pt(10))
    fig.tight_layout()
    return fig


def run_groups_figure(groups: dict, *, colors: dict | None = None, logy: bool = True,
                      xlabel: str = "step", ylabel: str = "loss", title: str | None = None,
                      figsize=(8.0, 3.8)):
    r"""Repeated runs of a few settings: one colour per setting, one thin line per run.

    ``groups`` maps a setting's label (e.g. ``"no warm-up"``) to a list of curves (one
    per seed).  The legend names each setting once, with its number of runs.
    ``colors`` maps a label to a colour; by default the settings take matplotlib's
    colour cycle in order.
    """
    fig, ax = plt.subplots(figsize=figsize)
    for i, (label, curves) in enumerate(groups.items()):
        color = (colors or {}).get(label, f"C{i}")
        for k, curve in enumerate(curves):
            curve = np.asarray(curve, dtype=float)
            ax.plot(np.arange(len(curve)), curve, lw=1.4, alpha=0.85, color=color,
                    label=f"{label} ({len(curves)} runs)" if k == 0 else None)
    return _finish_curves(fig, ax, logy=logy, xlabel=xlabel, ylabel=ylabel, title=title)


# --- 8.7 schedules -----------------------------------------------------------------


def schedules_figure(curves: dict, *, xlabel: str = "epoch $t$", title: str | None = None,
                     figsize=(8.5, 7.0)):
    r"""Learning-rate curves :math:`\alpha_t`, one per label: linear scale (top), log scale
    (bottom), with one legend for both underneath.

    ``curves`` maps a label to the rates :math:`\alpha_0, \alpha_1, \dots` (e.g. from
    :func:`optbook.schedules.lr_curve`).  The log panel shows what the linear one hides:
    how many orders of magnitude each schedule falls by the end.
    """
    fig, axes = plt.subplots(2, 1, figsize=figsize, sharex=True)
    for ax, logy in zip(axes, (False, True)):
        for i, (label, lrs) in enumerate(curves.items()):
            lrs = np.asarray(lrs, dtype=float)
            ax.plot(np.arange(len(lrs)), lrs, lw=2, color=f"C{i}", label=label)
        ax.set_ylabel(r"learning rate $\alpha_t$" + (" (log scale)" if logy else ""))
        if logy:
            ax.set_yscale("log")
    axes[1].set_xlabel(xlabel)
    if title:
        axes[0].set_title(title, fontsize=_pt(11))
    handles, labels = axes[0].get_legend_handles_labels()
    ncol = min(3, len(labels)) or 1
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=_pt(9))
    rows = -(-len(labels) // ncol)
    fig.tight_layout(rect=(0, 0.035 * rows + 0.01, 1, 1))
    return fig


def schedule_frame_figure(lrs, *, spans=(), marks=(), title: str | None = None,
                          ymax: float | None = None, xlabel: str = "epoch $t$",
                          color: str = "C0", figsize=(8.0, 3.4)):
    r"""One schedule :math:`\alpha_t` (a slider frame): shaded ``spans`` ``[(start, end,
    label)]`` (e.g. the warm-up) and dotted vertical lines at ``marks`` (e.g. restarts).
    The legend is one row at the top right: leave room for it above the curve with
    ``ymax``."""
    lrs = np.asarray(lrs, dtype=float)
    fig, ax = plt.subplots(figsize=figsize)
    for start, end, label in spans:
        ax.axvspan(start, end, color="#fde68a", alpha=0.6, lw=0, label=label)
    for j, x in enumerate(marks):
        ax.axvline(x, color=COLORS["truth"], lw=0.8, ls=":", label="restart" if j == 0 else None)
    ax.plot(np.arange(len(lrs)), lrs, lw=2, color=color, label=r"$\alpha_t$")
    ax.set_xlim(0, len(lrs) - 1)
    ax.set_ylim(0, ymax if ymax is not None else 1.08 * lrs.max())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"learning rate $\alpha_t$")
    if title:
        ax.set_title(title, fontsize=_pt(10))
    entries = len(ax.get_legend_handles_labels()[1])
    ax.legend(fontsize=_pt(9), loc="upper right", ncol=max(entries, 1))
    fig.tight_layout()
    return fig


def warmup_runs_figure(runs: dict, *, schedules: dict | None = None,
                       blowup: float | None = None, title: str | None = None,
                       figsize=(8.5, 7.0)):
    r"""The warm-up experiment: each schedule's :math:`\alpha_t` (top) and the training
    loss of every seed (bottom, log scale).

    ``runs`` maps a label to a list of :class:`optbook.torch_loops.TrainRun` (one per
    seed).  ``schedules`` (same labels) gives each schedule's whole curve
    :math:`\alpha_t`; without it, the rates the longest run used are drawn.  A run that
    blew up ends in a cross; the loss axis is cut at ``blowup`` (drawn as a dotted line),
    so a cross sits on that line when the loss went beyond it.
    """
    fig, (ax_lr, ax_loss) = plt.subplots(2, 1, figsize=figsize, sharex=True,
                                         gridspec_kw={"height_ratios": [1.0, 1.6]})
    floor = np.inf
    for i, (label, seed_runs) in enumerate(runs.items()):
        color = f"C{i}"
        if schedules is not None:
            lrs = np.asarray(schedules[label], dtype=float)
        else:
            lrs = max(seed_runs, key=lambda r: len(r.lrs)).lrs
        ax_lr.plot(np.arange(len(lrs)), lrs, lw=2, color=color, label=label)
        for j, run in enumerate(seed_runs):
            losses = np.asarray(run.losses, dtype=float)
            if blowup is not None:
                losses = np.where(np.isfinite(losses), np.minimum(losses, blowup), blowup)
            floor = min(floor, np.nanmin(losses))
            steps = np.arange(len(losses))
            ax_loss.plot(steps, losses, lw=1.2, color=color, alpha=0.85,
                         label=label if j == 0 else None)
            if run.diverged_at is not None:
                ax_loss.plot(steps[-1], losses[-1], "x", ms=10, mew=2.5, color=color,
                             clip_on=False, zorder=5)
    if blowup is not None:
        ax_loss.axhline(blowup, color=COLORS["truth"], lw=0.8, ls=":")
        ax_loss.text(0.99, blowup, "blow-up threshold ", transform=ax_loss.get_yaxis_transform(),
                     ha="right", va="top", fontsize=_pt(8))
        ax_loss.set_ylim(0.5 * floor, 3 * blowup)
    ax_lr.set_ylabel(r"learning rate $\alpha_t$")
    ax_lr.set_title(title or "the three schedules (top) and the training loss of each seed "
                    "(bottom; × = blew up)", fontsize=_pt(10))
    ax_lr.legend(fontsize=_pt(9))
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("update $t$")
    ax_loss.set_ylabel("mini-batch loss (MSE, log scale)")
    ax_loss.legend(fontsize=_pt(9), loc="center right")
    fig.tight_layout()
    return fig


# --- PyTorch in practice -----------------------------------------------------------


def loss_panels_figure(panels: dict, *, clip: float | None = None, xlabel: str = "epoch",
                       ylabel: str = "training loss", colors=("#2563eb", "#dc2626"),
                       figsize=None):
    r"""One log-scale panel of loss curves per entry of ``panels`` (``{title: {label:
    losses}}``), the same colour for the same label position in every panel.

    With ``clip``, a curve that exceeds it (or stops being finite) is drawn up to the
    clip line and ends in a cross there, so one blow-up does not flatten the others.
    """
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=figsize or (4.0 * n, 3.8), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items()):
        for i, (label, losses) in enumerate(curves.items()):
            losses = np.asarray(losses, dtype=float)
            color = colors[i % len(colors)]
            bad = ~np.isfinite(losses) | ((losses > clip) if clip is not None else False)
            if clip is not None and bad.any():
                k = int(np.argmax(bad))
                shown = np.append(losses[:k], clip)
                ax.plot(np.arange(k + 1), shown, lw=2, color=color, label=label)
                ax.plot(k, clip, "x", ms=10, mew=2.5, color=color, clip_on=False, zorder=5)
            else:
                ax.plot(np.arange(len(losses)), losses, lw=2, color=color, label=label)
        if clip is not None:
            ax.axhline(clip, color=COLORS["truth"], lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=_pt(10))
        ax.set_xlabel(xlabel)
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend(fontsize=_pt(9))
    fig.tight_layout()
    return fig
