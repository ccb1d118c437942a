"""Plain-text log-axis labels (the same ticks as matplotlib's, without mathtext), and
the slider frames that keep their background (the same pixels as a full redraw)."""

import matplotlib

matplotlib.use("Agg")
import io  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from optbook.optimizers import SGD, Adam, MomentumSGD  # noqa: E402
from optbook.book.figures import _decade_label, plain_log_axis
from optbook.book.surface_figures import PathsAndLossesFrames, paths_and_losses_figure
from optbook.surfaces import ill_conditioned_quadratic, rosenbrock, trajectory  # noqa: E402

SUPER = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")


def value_of(label: str) -> float:
    mantissa, _, exponent = label.partition("10")
    mantissa = mantissa.rstrip("×") or "1"
    return float(mantissa) * 10.0 ** int(exponent.translate(SUPER))


@pytest.mark.parametrize("value, label", [(1e-5, "10⁻⁵"), (1.0, "10⁰"), (100.0, "10²"),
                                          (0.03, ""), (0.0, ""), (-10.0, "")])
def test_decade_labels(value, label):
    assert _decade_label(value) == label


@pytest.mark.parametrize("data", [[1e-6, 1.0, 1e3], [0.2, 0.5, 0.9], [3e-9, 2e-8, 5e-8]])
def test_labels_name_the_ticks_they_sit_on(data):
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], data)
    ax.set_yscale("log")
    plain_log_axis(ax)
    fig.canvas.draw()
    labelled = [(t.get_text(), tick) for minor in (False, True)
                for t, tick in zip(ax.get_yticklabels(minor=minor), ax.get_yticks(minor=minor))
                if t.get_text()]
    low, high = ax.get_ylim()
    visible = [(text, tick) for text, tick in labelled if low <= tick <= high]
    assert len(visible) >= 2, labelled          # an axis never ends up unlabelled
    for text, tick in labelled:
        assert "$" not in text
        assert value_of(text) == pytest.approx(tick, rel=1e-9)
    plt.close(fig)


# ------------------------------------------------------- frames that keep their background
VALLEY = ill_conditioned_quadratic(kappa=100, name="narrow ravine")
FRAME_OPTIONS = {
    "default": (VALLEY, {}),
    "excess, diverged marked, autoscaled": (VALLEY, dict(
        excess=True, cut_diverged=False, mark_diverged=True, max_loss_factor=None,
        min_loss_factor=None, legend="loss", legend_loc="best", resolution=101, levels=12)),
    "stacked, twice the pixels": (VALLEY, dict(stacked=True, legend="loss", density=2)),
    "rosenbrock, path legend only": (rosenbrock, dict(
        legend="path", legend_loc="upper left", resolution=81, levels=10, figsize=(8.8, 4.0))),
}


def frame_paths(surface, alpha):
    return {f"SGD (α = {alpha:g})": trajectory(SGD(lr=alpha), surface, steps=60),
            f"Momentum (α = {alpha:g})": trajectory(MomentumSGD(lr=alpha, beta=0.9), surface,
                                                     steps=60),
            "Adam": trajectory(Adam(lr=10 * alpha), surface, steps=60)}


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


@pytest.fixture(params=list(FRAME_OPTIONS), ids=list(FRAME_OPTIONS))
def frames(request):
    surface, options = FRAME_OPTIONS[request.param]
    return surface, PathsAndLossesFrames(surface, **options)


def test_a_kept_background_frame_is_a_full_redraw_of_the_same_figure(frames):
    surface, make = frames
    for alpha in (0.002, 0.05, 0.15):       # converging, oscillating, diverging
        png = make(frame_paths(surface, alpha), title=f"α = {alpha}", loss_title="loss")
    make.fig.canvas.draw()                  # everything drawn again, the usual way
    full = np.asarray(make.fig.canvas.buffer_rgba())
    assert np.array_equal(pixels(png), full)


def test_a_frame_does_not_depend_on_the_frames_before_it(frames):
    surface, make = frames
    first = make(frame_paths(surface, 0.01), title="first")
    for alpha in (0.15, 0.003):
        other = make(frame_paths(surface, alpha), title=f"α = {alpha}", loss_title="other")
        assert not np.array_equal(pixels(other), pixels(first))
    again = make(frame_paths(surface, 0.01), title="first")
    assert np.array_equal(pixels(again), pixels(first))


def test_frames_show_what_the_full_figure_shows():
    """Same lines, labels and loss-axis limits as paths_and_losses_figure."""
    paths = frame_paths(VALLEY, 0.05)
    make = PathsAndLossesFrames(VALLEY)
    make(frame_paths(VALLEY, 0.002), title="before")
    make(paths, title="now", loss_title="loss")
    fig = paths_and_losses_figure(VALLEY, paths, title="now", loss_title="loss")
    try:
        for mine, theirs in zip(make.fig.axes, fig.axes, strict=True):
            assert [l.get_label() for l in mine.lines] == [l.get_label() for l in theirs.lines]
            for a, b in zip(mine.lines, theirs.lines):
                assert np.array_equal(a.get_xydata(), b.get_xydata())
            assert mine.get_title() == theirs.get_title()
            assert np.allclose(mine.get_ylim(), theirs.get_ylim())
            assert ([t.get_text() for t in mine.get_legend().get_texts()]
                    == [t.get_text() for t in theirs.get_legend().get_texts()])
    finally:
        plt.close(fig)


def test_frames_reject_unknown_options():
    with pytest.raises(TypeError, match="unknown option.*'colour'"):
        PathsAndLossesFrames(VALLEY, colour="red")
    with pytest.raises(ValueError, match="Invalid legend: 'left'"):
        PathsAndLossesFrames(VALLEY, legend="left")


# ------------------------------------------------------------- frames read on a phone
PHONE_COLUMN = 358          # CSS px: the text column of a 390 px wide phone
FRAME_DPI = 90              # CSS px per inch of a frame (frame_slider's dpi)


def phone_px(text, fig) -> float:
    """CSS px of ``text`` in a frame of ``fig`` (shown at most as wide as it is at
    FRAME_DPI, shrunk to the phone's column)."""
    css_width = fig.get_figwidth() * FRAME_DPI
    return text.get_fontsize() * FRAME_DPI / 72 * min(1.0, PHONE_COLUMN / css_width)


def stacked_frames():
    """The stacked frames the pages show, each as its figure after one frame."""
    from optbook.minibatch import line_fit_path, line_fit_problem, line_fit_surface
    from optbook.book.playground import PlaygroundCanvas, runs
    from optbook.book.figures import FRAME_STYLE
    from optbook.book.surface_figures import MinibatchPathFrames

    with plt.rc_context(FRAME_STYLE):
        paths_frames = PathsAndLossesFrames(VALLEY, stacked=True, legend="loss",
                                            density=2, colors=64)
        paths_frames(frame_paths(VALLEY, 0.05), title="α = 0.05", loss_title="loss")
        x, y = line_fit_problem(N=200, seed=0)
        minibatch = MinibatchPathFrames(line_fit_surface(x, y), loss_ylim=(1e-7, 30))
        minibatch(line_fit_path(x, y, batch_size=4, lr=0.1, steps=20, seed=1),
                  line_fit_path(x, y, batch_size=200, lr=0.1, steps=20),
                  label="mini-batch SGD, B = 4", title="B = 4")
        canvas = PlaygroundCanvas("beale", stacked=True, dpi=FRAME_DPI, density=2,
                                  style=FRAME_STYLE)
        canvas.png(runs("beale", {n: {"lr": 0.01} for n in ("SGD", "Adam")}, steps=20),
                   "Adam", title="Adam", loss_title="both")
    return {"paths and losses": paths_frames.fig, "mini-batch": minibatch.fig,
            "playground": canvas.fig}


def test_stacked_frames_keep_legends_and_ticks_readable_on_a_phone():
    """At 390 px a frame shrinks to the column: its legend text must stay at 9 CSS px
    or more (a two-panel frame side by side got about 4) and its tick labels at 10."""
    for name, fig in stacked_frames().items():
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()]
        assert legends, name
        for legend in legends:
            assert min(phone_px(t, fig) for t in legend.get_texts()) >= 9, name
        ticks = [t for ax in fig.axes for t in ax.get_xticklabels() + ax.get_yticklabels()]
        assert min(phone_px(t, fig) for t in ticks) >= 10, name
        top, bottom = fig.axes[:2]
        assert top.get_position().y0 > bottom.get_position().y1, f"{name}: not stacked"
        plt.close(fig)


def test_side_by_side_frames_were_too_small_on_a_phone():
    """The measurement above, on the frames the pages used before (11 inches wide)."""
    fig = paths_and_losses_figure(VALLEY, frame_paths(VALLEY, 0.05))
    legend = fig.axes[0].get_legend()
    assert max(phone_px(t, fig) for t in legend.get_texts()) < 4
    plt.close(fig)


def test_text_sizes_follow_the_base_font():
    """Under book_style a helper's sizes are those it names; in FRAME_STYLE, 1.25 times."""
    from optbook.book.figures import FRAME_STYLE, book_style

    with plt.rc_context():      # book_style changes rcParams: only for this test
        book_style()
        fig = paths_and_losses_figure(VALLEY, frame_paths(VALLEY, 0.05), loss_title="l")
        with plt.rc_context(FRAME_STYLE):
            framed = paths_and_losses_figure(VALLEY, frame_paths(VALLEY, 0.05),
                                             loss_title="l")
    for f, scale in ((fig, 1.0), (framed, 1.25)):
        assert f.axes[0].get_legend().get_texts()[0].get_fontsize() == 8 * scale
        assert f.axes[1].title.get_fontsize() == 10 * scale
        plt.close(f)


def test_frames_at_a_density_are_that_many_times_larger_and_say_so():
    from optbook.book.figures import FramePNG

    for density in (1, 2):
        make = PathsAndLossesFrames(VALLEY, stacked=True, density=density, colors=64)
        png = make(frame_paths(VALLEY, 0.05), title="t")
        image = Image.open(io.BytesIO(png))
        assert isinstance(png, FramePNG) and png.density == density
        assert image.mode == "P"                     # a palette of at most 64 colours
        assert image.size[0] == pytest.approx(5.4 * 90 * density, abs=1)
    with pytest.raises(ValueError, match="density"):
        PathsAndLossesFrames(VALLEY, density=4)
    with pytest.raises(ValueError, match="Invalid colors"):
        PathsAndLossesFrames(VALLEY, colors=1)


def test_minibatch_frames_are_a_full_redraw_of_the_stacked_figure():
    from optbook.minibatch import line_fit_path, line_fit_problem, line_fit_surface
    from optbook.book.surface_figures import MinibatchPathFrames, minibatch_path_figure

    x, y = line_fit_problem(N=200, seed=0)
    surface = line_fit_surface(x, y)
    full = line_fit_path(x, y, batch_size=200, lr=0.1, steps=20)
    make = MinibatchPathFrames(surface, loss_ylim=(1e-7, 30), colors=None)
    for B in (1, 16, 4):
        path = line_fit_path(x, y, batch_size=B, lr=0.1, steps=20, seed=1)
        png = make(path, full, label=f"B = {B}", title=f"B = {B}")
    make.fig.canvas.draw()
    assert np.array_equal(pixels(png), np.asarray(make.fig.canvas.buffer_rgba()))
    fig = minibatch_path_figure(surface, path, full, label="B = 4", title="B = 4",
                                loss_ylim=(1e-7, 30), stacked=True)
    for mine, theirs in zip(make.fig.axes, fig.axes, strict=True):
        assert [l.get_label() for l in mine.lines] == [l.get_label() for l in theirs.lines]
        assert mine.get_title() == theirs.get_title()
        assert (mine.get_legend() is None) == (theirs.get_legend() is None)
    assert fig.axes[1].get_legend() is None      # stacked: one legend serves both panels
    plt.close(fig)
