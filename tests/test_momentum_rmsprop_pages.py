"""Figure helpers added for pages 8.4 (momentum) and 8.5 (RMSprop and AdaGrad)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from optbook.optimizers import SGD, MomentumSGD  # noqa: E402
from optbook.book.average_figures import effective_step_figure, gradient_average_figure
from optbook.book.figures import COLORS
from optbook.book.surface_figures import _first_outside, paths_and_losses_figure
from optbook.surfaces import ill_conditioned_quadratic, ravine, trajectory  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


# --- paths_and_losses_figure ----------------------------------------------------------


def test_paths_and_losses_figure_draws_each_path_and_its_losses():
    paths = {"SGD (α = 0.05)": trajectory(SGD(lr=0.05), ravine, steps=30),
             "Momentum (β = 0.9)": trajectory(MomentumSGD(lr=0.05, beta=0.9), ravine, steps=30)}
    fig = paths_and_losses_figure(ravine, paths)
    ax_path, ax_loss = fig.axes
    on_path, on_loss = lines_by_label(ax_path), lines_by_label(ax_loss)
    assert set(on_path) == set(on_loss) == set(paths)
    for label, path in paths.items():
        np.testing.assert_array_equal(on_path[label].get_xydata(), path.points)
        np.testing.assert_array_equal(on_loss[label].get_ydata(), path.losses)
        np.testing.assert_array_equal(on_loss[label].get_xdata(), np.arange(len(path.losses)))
    # the book's colour per optimizer, taken from the label's first word
    assert to_hex(on_path["SGD (α = 0.05)"].get_color()) == COLORS["SGD"]
    assert to_hex(on_loss["Momentum (β = 0.9)"].get_color()) == COLORS["Momentum"]
    assert ax_loss.get_yscale() == "log"
    assert ax_path.get_xlim() == ravine.window[0] and ax_path.get_ylim() == ravine.window[1]


def test_paths_and_losses_figure_explicit_colors_override_the_book_colours():
    path = trajectory(SGD(lr=0.05), ravine, steps=5)
    fig = paths_and_losses_figure(ravine, {"Nesterov": path, "SGD": path},
                                  colors={"Nesterov": "#0f766e"})
    on_path = lines_by_label(fig.axes[0])
    assert to_hex(on_path["Nesterov"].get_color()) == "#0f766e"
    assert to_hex(on_path["SGD"].get_color()) == COLORS["SGD"]


def test_diverged_path_is_labelled_cut_at_the_window_and_the_loss_axis_is_capped():
    diverged = trajectory(SGD(lr=0.2), ravine, steps=200)   # 0.2 > 2/κ = 0.1
    assert diverged.diverged_at is not None
    ok = trajectory(SGD(lr=0.05), ravine, steps=200)
    fig = paths_and_losses_figure(ravine, {"SGD (big α)": diverged, "SGD": ok},
                                  max_loss_factor=30.0)
    ax_path, ax_loss = fig.axes
    drawn = lines_by_label(ax_path)["SGD (big α) (diverged)"].get_xydata()
    (x0, x1), (y0, y1) = ravine.window
    inside = (drawn[:, 0] >= x0) & (drawn[:, 0] <= x1) & (drawn[:, 1] >= y0) & (drawn[:, 1] <= y1)
    assert inside[:-1].all() and not inside[-1]       # stops at the first point outside
    assert len(drawn) < len(diverged.points)
    assert ax_loss.get_ylim()[1] == pytest.approx(30.0 * ok.losses[0])
    assert "SGD (big α) (diverged)" in lines_by_label(ax_loss)


def test_loss_axis_floor_keeps_tiny_losses_from_squashing_the_plot():
    valley = ill_conditioned_quadratic(kappa=4, name="easy")
    fast = trajectory(SGD(lr=0.4), valley, steps=400)   # reaches ~1e-300
    assert fast.losses.min() < 1e-100
    fig = paths_and_losses_figure(valley, {"SGD": fast}, min_loss_factor=1e-12)
    low, high = fig.axes[1].get_ylim()
    assert low == pytest.approx(1e-12 * fast.losses[0])
    # without the floor the axis would follow the data
    slow = trajectory(SGD(lr=0.01), valley, steps=50)
    low_slow, _ = paths_and_losses_figure(valley, {"SGD": slow}).axes[1].get_ylim()
    assert low_slow == pytest.approx(slow.losses.min() / 3)


def test_uncut_diverged_path_unclipped_loss_axis_and_one_legend():
    diverged = trajectory(SGD(lr=0.2), ravine, steps=200)
    fig = paths_and_losses_figure(ravine, {"SGD": diverged}, cut_diverged=False,
                                  max_loss_factor=None, min_loss_factor=None, legend="loss")
    ax_path, ax_loss = fig.axes
    np.testing.assert_array_equal(lines_by_label(ax_path)["SGD (diverged)"].get_xydata(),
                                  diverged.points)
    low, high = ax_loss.get_ylim()
    assert high >= diverged.losses.max() and low <= diverged.losses.min()
    assert ax_path.get_legend() is None and ax_loss.get_legend() is not None
    with pytest.raises(ValueError, match="legend"):
        paths_and_losses_figure(ravine, {"SGD": diverged}, legend="left")


def test_first_outside():
    window = ((-1.0, 1.0), (-1.0, 1.0))
    pts = np.array([[0.0, 0.0], [0.5, 0.9], [0.5, 1.5], [0.0, 0.0]])
    assert _first_outside(pts, window) == 2
    assert _first_outside(pts[:2], window) == 1       # none outside: the last index
    assert _first_outside(np.array([[-2.0, 0.0]]), window) == 0


# --- gradient_average_figure ------------------------------------------------------------


def test_gradient_average_figure_one_panel_per_coordinate():
    g = np.array([[1.0, -2.0], [1.0, 2.0], [1.0, -2.0]])
    m = np.array([[0.1, -0.2], [0.19, 0.02], [0.271, -0.182]])
    fig = gradient_average_figure(g, m, beta=0.9)
    assert len(fig.axes) == 2
    for j, ax in enumerate(fig.axes):
        lines = lines_by_label(ax)
        np.testing.assert_array_equal(lines["gradient $g_t$"].get_ydata(), g[:, j])
        average = next(line for label, line in lines.items() if label.startswith("average"))
        np.testing.assert_array_equal(average.get_ydata(), m[:, j])
        np.testing.assert_array_equal(average.get_xdata(), [1, 2, 3])   # steps count from 1
        assert r"\beta = 0.9" in average.get_label()


def test_gradient_average_figure_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        gradient_average_figure(np.zeros((3, 2)), np.zeros((4, 2)), beta=0.9)


# --- effective_step_figure --------------------------------------------------------------


def test_effective_step_figure_is_log_log_from_step_one_with_reference_levels():
    t = np.arange(1, 101)
    curves = {"AdaGrad": 0.1 / np.sqrt(t), "RMSprop, β = 0.99": np.full(100, 0.1)}
    fig = effective_step_figure(curves, reference={"level": 0.1})
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    lines = lines_by_label(ax)
    np.testing.assert_array_equal(lines["AdaGrad"].get_xdata(), t)
    np.testing.assert_allclose(lines["AdaGrad"].get_ydata(), curves["AdaGrad"])
    assert to_hex(lines["AdaGrad"].get_color()) == COLORS["AdaGrad"]
    assert to_hex(lines["RMSprop, β = 0.99"].get_color()) == COLORS["RMSprop"]  # "RMSprop,"
    assert set(lines["level"].get_ydata()) == {0.1}
    recoloured = effective_step_figure(curves, colors={"RMSprop, β = 0.99": "#15803d"})
    assert to_hex(lines_by_label(recoloured.axes[0])["RMSprop, β = 0.99"].get_color()) == "#15803d"
