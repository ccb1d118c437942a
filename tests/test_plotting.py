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
from optbook.plotting import (PathsAndLossesFrames, _decade_label,  # noqa: E402
                              paths_and_losses_figure, plain_log_axis)
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
