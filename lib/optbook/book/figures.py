"""What every figure of the book shares: the colours, the font sizes (static figures and
slider frames), plain log axes, figures as PNG or SVG bytes, and the kept backdrop that
makes a slider's frames fast.

Pages keep the teaching code visible and call the figure helpers of :mod:`optbook.book`
for the plumbing (hidden with ``hide-input``).  Every helper returns the matplotlib
``Figure`` it made, so a page can show it, save it, or hand it to
:func:`optbook.book.widgets.frame_slider` as one frame.
"""

from __future__ import annotations

import io
import numbers

import matplotlib.pyplot as plt
import numpy as np

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

#: The rcParams of a slider frame (:func:`optbook.book.widgets.frame_slider` draws every frame
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
    an image that is sharp on a high-DPI screen; :func:`optbook.book.widgets.frame_slider`
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


def color_of(name: str, i: int = 0) -> str:
    """The book's colour for an optimizer name (falls back to matplotlib's cycle)."""
    return COLORS.get(name, f"C{i}")


def _path_color(label: str, i: int, colors: dict | None) -> str:
    """``colors[label]`` if given, else the book's colour for the label's first word
    (``"RMSprop, β = 0.9"`` and ``"RMSprop (α = 0.1)"`` both get RMSprop's colour)."""
    if colors and label in colors:
        return colors[label]
    return color_of(label.split(" ")[0].rstrip(",;:"), i)


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


def two_panels(stacked: bool, figsize=None, *, side=((11.0, 4.2), (1.3, 1.0)),
               above=((5.4, 6.6), (1.25, 1.0)), **subplots):
    """A figure of two panels (a path and its loss curves, say): side by side, or with
    ``stacked`` one above the other, narrow enough for a phone.  ``side`` and ``above``
    give each layout's default size (inches) and the panels' size ratios; ``figsize``
    overrides the size.  Returns ``(fig, (first, second))``."""
    size, ratios = above if stacked else side
    shape, key = ((2, 1), "height_ratios") if stacked else ((1, 2), "width_ratios")
    return plt.subplots(*shape, figsize=figsize or size, gridspec_kw={key: list(ratios)},
                        **subplots)


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


def check_colors(colors) -> None:
    """``ValueError`` unless ``colors`` is a palette size PNG allows: an integer 2 to 256."""
    if not (isinstance(colors, numbers.Integral) and not isinstance(colors, bool)
            and 2 <= colors <= 256):
        raise ValueError(f"Invalid colors: {colors!r} (must be an integer from 2 to 256)")


def frame_png(image, density: int = 1, colors: int | None = None) -> FramePNG:
    """A PIL image as a :class:`FramePNG`: full colour, or with an adaptive palette of
    ``colors`` colours (2 to 256), about a third of the bytes for a figure of lines on
    white, which a phone fetches once per slider position."""
    from PIL import Image

    buf = io.BytesIO()
    if colors is None:
        image.save(buf, format="png", compress_level=6)
    else:
        check_colors(colors)
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
        if colors is not None:
            check_colors(colors)
        self.dpi, self.density, self.colors = dpi, density, colors
        self.fig = self._backdrop = None

    def _keep(self, fig, kept, redrawn) -> None:
        plt.close(fig)  # owned by this object, not by pyplot: drawn on its own canvas
        self.fig = fig
        self._backdrop = Backdrop(fig, kept, redrawn)

    def _render(self) -> FramePNG:
        return frame_png(self._backdrop.image(), self.density, self.colors)


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
