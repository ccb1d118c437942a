"""Tests for the figure helpers of "Optimizers side by side" and "Common mistakes"
(optbook.book), and for the facts those pages state about the optimizers: the
extra memory per weight (checked against torch.optim's own state) and the size of
the first steps of RMSprop and Adam."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from optbook.optimizers import OPTIMIZERS, SGD, Adam, RMSprop  # noqa: E402
from optbook.book.average_figures import bias_correction_compact_figure
from optbook.book.figures import COLORS, figure_svg
from optbook.book.run_figures import (FAMILY_EDGES, FAMILY_TREE, family_tree_figure,
                                      loss_grid_figure, run_groups_figure)
from optbook.book.surface_figures import paths_and_losses_figure
from optbook.surfaces import Trajectory, quadratic, rosenbrock, trajectory  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def same_color(a, b) -> bool:
    return np.allclose(mcolors.to_rgba(a), mcolors.to_rgba(b))


# --- paths_and_losses_figure, as the side-by-side page calls it ----------------------

SIDE_BY_SIDE = dict(loss_title="excess loss per step", excess=True, cut_diverged=False,
                    mark_diverged=True, max_loss_factor=None, min_loss_factor=None,
                    legend="loss", legend_loc="best", figsize=(11.0, 4.3))


def test_paths_and_losses_figure_excess_draws_every_path_and_its_excess_loss():
    paths = {"SGD α=0.001": trajectory(SGD(lr=0.001), rosenbrock, steps=5),
             "Adam α=0.1": trajectory(Adam(lr=0.1), rosenbrock, steps=5)}
    fig = paths_and_losses_figure(rosenbrock, paths, resolution=41, **SIDE_BY_SIDE)
    ax_path, ax_loss = fig.axes[:2]
    labelled = {line.get_label(): line for line in ax_path.get_lines()
                if not line.get_label().startswith("_")}
    assert set(labelled) == set(paths)
    for label, path in paths.items():
        np.testing.assert_allclose(labelled[label].get_xydata(), path.points)
        assert same_color(labelled[label].get_color(), COLORS[label.split(" ")[0]])
    loss_lines = {line.get_label(): line for line in ax_loss.get_lines()}
    for label, path in paths.items():
        np.testing.assert_allclose(loss_lines[label].get_ydata(),
                                   np.maximum(path.losses - rosenbrock.f_min, 1e-12))
    assert ax_loss.get_yscale() == "log"
    assert "rosenbrock" in ax_path.get_title()


def test_paths_and_losses_figure_excess_marks_a_diverged_run_and_clips_zero_losses():
    diverged = trajectory(SGD(lr=2.0), quadratic, steps=100)   # |1 - 2α| = 3 > 1
    assert diverged.diverged_at is not None
    exact = Trajectory(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([1.0, 0.0]))
    fig = paths_and_losses_figure(quadratic, {"SGD big": diverged, "Adam exact": exact},
                                  resolution=31, loss_floor=1e-9, **SIDE_BY_SIDE)
    ax_path, ax_loss = fig.axes[:2]
    labels = [line.get_label() for line in ax_loss.get_lines()]
    assert f"SGD big (diverged at t = {diverged.diverged_at})" in labels
    crosses = [line for line in ax_loss.get_lines() if line.get_marker() == "x"]
    assert len(crosses) == 1 and crosses[0].get_xdata()[0] == len(diverged.losses) - 1
    exact_line = next(line for line in ax_loss.get_lines() if line.get_label() == "Adam exact")
    assert exact_line.get_ydata()[-1] == pytest.approx(1e-9)   # a zero loss drawn at the floor


# --- family tree ---------------------------------------------------------------------


def test_family_tree_data_is_consistent():
    names = set(FAMILY_TREE)
    assert names == {"SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam", "AdamW"}
    for parent, child, bend in FAMILY_EDGES:
        assert parent in names and child in names
        # a child is never older than its parent (years like "2017/2019": first one)
        assert int(FAMILY_TREE[parent][2][:4]) <= int(FAMILY_TREE[child][2][:4])
    # Adam combines the two branches
    assert {p for p, c, _ in FAMILY_EDGES if c == "Adam"} == {"Momentum", "RMSprop"}
    # every method except SGD descends from SGD
    children = {c for _, c, _ in FAMILY_EDGES}
    assert children == names - {"SGD"}


def test_family_tree_figure_has_one_box_per_method_and_one_arrow_per_edge():
    box = (2.7, 1.25)
    fig = family_tree_figure(box=box)
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(boxes) == len(FAMILY_TREE) and len(arrows) == len(FAMILY_EDGES)
    texts = " ".join(t.get_text() for t in ax.texts)
    for name, (_, _, year, who, _) in FAMILY_TREE.items():
        assert f"{name} ({year})" in texts and who in texts
    # each box is centred on its node
    centres = sorted((b.get_x() + b.get_width() / 2, b.get_y() + b.get_height() / 2)
                     for b in boxes)
    assert np.allclose(centres, sorted(v[:2] for v in FAMILY_TREE.values()))
    # arrows start and end on the boundary of their boxes, never inside
    w, h = box
    for arrow, (parent, child, _) in zip(arrows, FAMILY_EDGES):
        (xa, ya), (xb, yb) = arrow._posA_posB
        for (x, y), name in (((xa, ya), parent), ((xb, yb), child)):
            cx, cy = FAMILY_TREE[name][:2]
            dx, dy = abs(x - cx), abs(y - cy)
            assert dx <= w / 2 + 1e-9 and dy <= h / 2 + 1e-9
            assert np.isclose(dx, w / 2) or np.isclose(dy, h / 2)


def test_figure_svg_is_svg_deterministic_and_closes_the_figure():
    fig = family_tree_figure()
    first = figure_svg(fig)
    assert not plt.fignum_exists(fig.number)
    assert first.startswith(b"<?xml") and b"<svg" in first
    assert b"<text" not in first            # text is drawn as paths: no fonts needed
    assert figure_svg(family_tree_figure()) == first


# --- bias correction -----------------------------------------------------------------


def test_bias_correction_compact_figure_draws_both_panels():
    t = np.arange(1, 51)
    m = 1 - 0.9**t
    fig = bias_correction_compact_figure(
        t, {"m_t (uncorrected)": m, "m̂_t (corrected)": np.ones(50)},
        {"uncorrected Adam": m / np.sqrt(1 - 0.999**t), "corrected Adam": np.ones(50)})
    ax_m, ax_s = fig.axes
    assert ax_m.get_xscale() == ax_s.get_xscale() == "log" and ax_s.get_yscale() == "log"
    styles = {line.get_label(): line.get_linestyle() for line in ax_m.get_lines() + ax_s.get_lines()}
    assert styles["m̂_t (corrected)"] == "--" and styles["corrected Adam"] == "--"
    assert styles["m_t (uncorrected)"] == "-" and styles["uncorrected Adam"] == "-"
    np.testing.assert_allclose(
        next(l for l in ax_m.get_lines() if l.get_label() == "m_t (uncorrected)").get_ydata(), m)


# --- loss_grid_figure ----------------------------------------------------------------


def test_loss_grid_figure_annotates_every_cell_and_marks_divergence():
    grid = np.array([[1.0, 0.01, np.inf], [0.5, 1e-3, np.nan]])
    fig = loss_grid_figure(grid, [0.9, 0.99], [1e-3, 1e-2, 1e-1], row_label="β",
                           col_label="α", vmin=-3, vmax=0)
    ax = fig.axes[0]
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
             for t in ax.texts}
    assert cells == {(0, 0): "1", (0, 1): "0.01", (0, 2): "div",
                     (1, 0): "0.5", (1, 1): "0.001", (1, 2): "div"}
    image = ax.images[0]
    assert image.get_clim() == (-3, 0)
    np.testing.assert_allclose(image.get_array()[0, :2], [0.0, -2.0])
    assert np.ma.is_masked(image.get_array()[0, 2]) or np.isnan(image.get_array()[0, 2])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.001", "0.01", "0.1"]
    assert len(fig.axes) == 2                      # the heat map and its colour bar


def test_loss_grid_figure_colour_bar_names_what_is_plotted():
    """8.13 plots J − J* (the loss above the minimum); the colour bar says so by default,
    and a caller with another quantity names it."""
    grid = np.array([[1.0, 0.1], [0.5, 1e-3]])
    excess = loss_grid_figure(grid, [1, 2], [1, 2], row_label="r", col_label="c")
    assert excess.axes[1].get_ylabel() == r"$\log_{10}$ of final $J - J^*$"
    plain = loss_grid_figure(grid, [1, 2], [1, 2], row_label="r", col_label="c",
                             value_label="loss")
    assert plain.axes[1].get_ylabel() == r"$\log_{10}$ of final loss"


def test_loss_grid_figure_rejects_a_grid_of_the_wrong_shape():
    with pytest.raises(ValueError, match="2 rows and 3 columns"):
        loss_grid_figure(np.ones((3, 2)), [1, 2], [1, 2, 3], row_label="r", col_label="c")


# --- run_groups_figure ---------------------------------------------------------------


def test_run_groups_figure_one_colour_per_group_one_legend_entry_each():
    groups = {"no warm-up": [np.ones(5), 2 * np.ones(5), 3 * np.ones(5)],
              "warm-up": [np.ones(4), np.ones(4)]}
    fig = run_groups_figure(groups, colors={"warm-up": "#123456"})
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 5
    assert all(same_color(l.get_color(), "C0") for l in lines[:3])
    assert all(same_color(l.get_color(), "#123456") for l in lines[3:])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["no warm-up (3 runs)", "warm-up (2 runs)"]
    assert ax.get_yscale() == "log"


# --- the pages' facts about the optimizers --------------------------------------------


def extra_numbers_per_weight(opt, params):
    grads = {"d" + k: np.ones_like(v) for k, v in params.items()}
    opt.update(params, grads)
    stored = sum(buf.size for state in opt.state.values() for buf in state.values()
                 if isinstance(buf, np.ndarray))
    return stored / sum(p.size for p in params.values())


@pytest.mark.parametrize("name, torch_name, kwargs, expected", [
    ("SGD", "SGD", {"lr": 0.1}, 0),
    ("Momentum", "SGD", {"lr": 0.1, "momentum": 0.9}, 1),
    ("AdaGrad", "Adagrad", {"lr": 0.1}, 1),
    ("RMSprop", "RMSprop", {"lr": 0.1}, 1),
    ("Adam", "Adam", {"lr": 0.1}, 2),
    ("AdamW", "AdamW", {"lr": 0.1}, 2),
])
def test_extra_memory_per_weight_matches_the_table_and_torch(name, torch_name, kwargs, expected):
    import torch

    params = {"W": np.zeros((10, 3)), "b": np.zeros((1, 3))}
    assert extra_numbers_per_weight(OPTIMIZERS[name](), params) == expected
    # torch.optim keeps the same number of per-weight buffers (its step counters are scalars)
    weights = [torch.zeros(10, 3, requires_grad=True), torch.zeros(1, 3, requires_grad=True)]
    opt = getattr(torch.optim, torch_name)(weights, **kwargs)
    for w in weights:
        w.grad = torch.ones_like(w)
    opt.step()
    stored = sum(v.numel() for state in opt.state.values() for v in state.values()
                 if torch.is_tensor(v) and v.dim() > 0)      # 'step' is a 0-d tensor
    assert stored / sum(w.numel() for w in weights) == expected


def test_first_steps_rmsprop_is_alpha_over_sqrt_one_minus_beta_adam_is_alpha():
    for g in (1e-3, 1.0, 1e3):                     # whatever the gradient's size
        params = {"w": np.array([0.0])}
        RMSprop(lr=0.01, beta=0.999, epsilon=0.0).update(params, {"dw": np.array([g])})
        assert -params["w"][0] == pytest.approx(0.01 / np.sqrt(1 - 0.999))
        params = {"w": np.array([0.0])}
        Adam(lr=0.01, epsilon=0.0).update(params, {"dw": np.array([g])})
        assert -params["w"][0] == pytest.approx(0.01)


def test_adam_steps_stay_near_alpha_for_a_consistent_gradient():
    """The side-by-side page's argument: while a weight's gradient keeps its sign, Adam
    moves it by about α per step, whatever the gradient's scale: exactly α for a constant
    gradient, at most α for one that shrinks (as near a minimum), a little more for a
    noisy one; Kingma & Ba's bound α(1-β₁)/√(1-β₂) is reached only in the sparse case."""
    scales = np.array([1e-3, 1e-1, 1.0, 10.0, 1e3])

    def largest_step(gradient, steps=300):
        opt, params, largest = Adam(lr=0.01), {"w": np.zeros(5)}, 0.0
        for t in range(steps):
            before = params["w"].copy()
            opt.update(params, {"dw": gradient(t)})
            largest = max(largest, np.abs(params["w"] - before).max())
        return largest / 0.01                        # in units of α

    rng = np.random.default_rng(0)
    assert largest_step(lambda t: scales) == pytest.approx(1.0, rel=1e-4)
    assert largest_step(lambda t: scales * 0.98**t) <= 1.0 + 1e-12
    noisy = largest_step(lambda t: scales * rng.uniform(0.5, 1.5, 5))
    assert 1.0 < noisy < 1.25
    # one non-zero gradient after a long run of zeros (bias corrections ≈ 1 by then)
    sparse = largest_step(lambda t: scales * (t == 5000), steps=5001)
    assert sparse == pytest.approx((1 - 0.9) / np.sqrt(1 - 0.999), rel=0.01)
