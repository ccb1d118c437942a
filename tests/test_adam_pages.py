"""Tests for the figure helpers of 8.6 (Adam and AdamW) and of 8.8 (the worked Adam
example), and for the numbers those two pages build their text on."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from numpy.testing import assert_allclose  # noqa: E402

from optbook.optimizers import Adam, AdamW, adam_step  # noqa: E402
from optbook.book.average_figures import (adam_moments_figure, adam_trace_figure,
                                          weight_decay_figure)
from optbook.book.figures import COLORS, figure_png
from optbook.book.surface_figures import paths_and_losses_figure
from optbook.surfaces import rosenbrock, trajectory  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def same_color(a, b):
    return mcolors.to_hex(a) == mcolors.to_hex(b)


# ------------------------------------------------------------------ adam_moments_figure
def moments_by_loop(g, beta):
    """m_t and its bias-corrected m̂_t, written out independently of optbook.ewa."""
    m, raw, corrected = 0.0, [], []
    for t, x in enumerate(g, start=1):
        m = beta * m + (1 - beta) * x
        raw.append(m)
        corrected.append(m / (1 - beta**t))
    return np.array(raw), np.array(corrected)


def test_moments_figure_plots_adams_moments():
    g = 1.0 + 0.5 * np.random.default_rng(3).standard_normal(40)
    fig = adam_moments_figure(g, 0.9, 0.999, mean=1.0, mean_square=1.25)
    ax_m, ax_v = fig.axes
    m_lines, v_lines = lines_by_label(ax_m), lines_by_label(ax_v)
    m, m_hat = moments_by_loop(g, 0.9)
    v, v_hat = moments_by_loop(g**2, 0.999)
    assert_allclose(m_lines["$m_t$"].get_ydata(), m, rtol=1e-12)
    assert_allclose(m_lines[r"$\hat m_t = m_t/(1-\beta_1^t)$"].get_ydata(), m_hat, rtol=1e-12)
    assert_allclose(v_lines["$v_t$"].get_ydata(), v, rtol=1e-12)
    assert_allclose(v_lines[r"$\hat v_t = v_t/(1-\beta_2^t)$"].get_ydata(), v_hat, rtol=1e-12)
    # bias correction puts the first values exactly on the first data point
    assert m_hat[0] == pytest.approx(g[0]) and v_hat[0] == pytest.approx(g[0] ** 2)
    assert_allclose(m_lines["$g_t$"].get_xdata(), np.arange(1, 41))
    assert m_lines[r"$\mathbb{E}[g]$"].get_ydata()[0] == 1.0
    assert v_lines[r"$\mathbb{E}[g^2]$"].get_ydata()[0] == 1.25
    assert ax_m.get_title() == r"$\beta_1 = 0.9$" and ax_v.get_title() == r"$\beta_2 = 0.999$"


def test_moments_figure_without_targets_draws_no_reference_lines():
    fig = adam_moments_figure([1.0, 2.0, 3.0], 0.5, 0.9)
    for ax in fig.axes:
        assert len(ax.get_lines()) == 3  # data, raw average, corrected average
    assert len(figure_png(fig)) > 1000


# ------------------------------------------- paths_and_losses_figure, as the Adam page calls it
ADAM_PAGE = dict(loss_title="loss (log scale)", max_loss_factor=None, min_loss_factor=None,
                 resolution=151, levels=20, legend="path", legend_loc="upper left",
                 figsize=(8.8, 4.0))


def test_paths_and_losses_figure_draws_the_trajectory():
    run = trajectory(Adam(lr=0.05), rosenbrock, steps=50)
    fig = paths_and_losses_figure(rosenbrock, {"Adam": run}, title="a title", **ADAM_PAGE)
    ax_path, ax_loss = fig.axes
    path = lines_by_label(ax_path)["Adam"]
    assert_allclose(path.get_xdata(), run.points[:, 0])
    assert_allclose(path.get_ydata(), run.points[:, 1])
    assert same_color(path.get_color(), COLORS["Adam"])
    loss = lines_by_label(ax_loss)["Adam"]
    assert_allclose(loss.get_ydata(), run.losses)
    assert ax_loss.get_yscale() == "log"
    assert ax_path.get_xlim() == rosenbrock.window[0]
    assert ax_path.get_ylim() == rosenbrock.window[1]
    assert ax_path.get_title() == "a title"
    stars = [ln for ln in ax_path.get_lines() if ln.get_marker() == "*"]
    assert [(s.get_xdata()[0], s.get_ydata()[0]) for s in stars] == rosenbrock.minima
    assert len(ax_path.collections) > 0  # the contour lines


def test_paths_and_losses_figure_marks_divergence():
    run = trajectory(Adam(lr=50.0), rosenbrock, steps=200, blow_up=3.0)
    assert run.diverged_at is not None
    fig = paths_and_losses_figure(rosenbrock, {"Adam": run}, **ADAM_PAGE)
    assert "Adam (diverged)" in lines_by_label(fig.axes[1])


# ------------------------------------------------------------------ weight_decay_figure
def test_weight_decay_figure_one_line_per_run():
    adamw = {0.1: [2.0, 1.9, 1.8], 1.0: [2.0, 1.0, 0.5]}
    adam_l2 = {0.1: [2.0, 1.99, 1.98]}
    fig = weight_decay_figure(adamw, adam_l2, alpha=0.01)
    (ax,) = fig.axes
    lines = lines_by_label(ax)
    assert set(lines) == {r"AdamW, $\lambda = 0.1$", r"AdamW, $\lambda = 1$",
                          r"Adam + L2, $\lambda = 0.1$"}
    assert_allclose(lines[r"AdamW, $\lambda = 1$"].get_ydata(), [2.0, 1.0, 0.5])
    assert_allclose(lines[r"AdamW, $\lambda = 1$"].get_xdata(), [0, 1, 2])
    assert same_color(lines[r"AdamW, $\lambda = 0.1$"].get_color(), COLORS["AdamW"])
    assert same_color(lines[r"Adam + L2, $\lambda = 0.1$"].get_color(), COLORS["Adam"])
    # different λ of the same method are told apart by the line style
    assert (lines[r"AdamW, $\lambda = 0.1$"].get_linestyle()
            != lines[r"AdamW, $\lambda = 1$"].get_linestyle())
    assert "0.01" in ax.get_title()


# ------------------------------------------------------------------ adam_trace_figure
def test_trace_figure_shows_iterates_and_step_sizes():
    w = np.array([5.0, 4.9, 4.8001, 4.7002])
    fig = adam_trace_figure(w, 0.1, compare={"gradient descent": [5.0, 4.0, 3.2, 2.56]})
    ax_w, ax_s = fig.axes
    assert_allclose(lines_by_label(ax_w)["Adam"].get_ydata(), w)
    assert_allclose(lines_by_label(ax_w)["gradient descent"].get_ydata(), [5.0, 4.0, 3.2, 2.56])
    steps = lines_by_label(ax_s)[r"$|w_t - w_{t-1}|$"]
    assert_allclose(steps.get_xdata(), [1, 2, 3])
    assert_allclose(steps.get_ydata(), np.abs(np.diff(w)))
    assert lines_by_label(ax_s)[r"$\alpha$"].get_ydata()[0] == 0.1
    assert ax_s.get_ylim()[1] >= 0.1  # the α line is inside the axes


def test_trace_figure_ylim_covers_steps_larger_than_alpha():
    w = np.array([5.0, 2.0, -1.0])
    fig = adam_trace_figure(w, 0.5)
    assert fig.axes[1].get_ylim()[1] >= 3.0


# ------------------------------------------------ the numbers the two pages rely on
def worked_example():
    w, m, v = np.array(5.0), np.array(0.0), np.array(0.0)
    rows = []
    for t in (1, 2, 3):
        g = 2 * w
        m_hat, v_hat = adam_step(w, g, m, v, t, 0.1, 0.9, 0.999, 1e-8)
        rows.append({"g": float(g), "m": float(m), "v": float(v), "m_hat": float(m_hat),
                     "v_hat": float(v_hat), "w": float(w)})
    return rows


def test_hand_rounded_worked_example_differs_in_three_values():
    """A table worked by hand, rounding v as it goes, agrees with the exact values
    except for v₂, v̂₂ and v̂₃."""
    by_hand = {"g": ["10.0", "9.8", "9.6"], "m": ["1.0", "1.88", "2.652"],
               "v": ["0.1", "0.1960", "0.288"], "m_hat": ["10.0", "9.895", "9.786"],
               "v_hat": ["100.0", "98.05", "96.10"], "w": ["4.9", "4.8", "4.7"]}
    rows = worked_example()
    wrong = {(key, t) for key, values in by_hand.items() for t, text in enumerate(values, 1)
             if round(rows[t - 1][key], len(text.split(".")[1])) != float(text)}
    assert wrong == {("v", 2), ("v_hat", 2), ("v_hat", 3)}
    assert round(rows[1]["v_hat"], 2) == 98.02 and round(rows[2]["v_hat"], 2) == 96.06


def test_hand_v_hat_values_come_from_rounding_v_to_three_decimals():
    beta2 = 0.999
    v2 = beta2 * 0.1 + (1 - beta2) * 9.8**2           # exact formula, rounded gradient
    assert round(round(v2, 3) / (1 - beta2**2), 2) == 98.05
    v3 = beta2 * round(v2, 3) + (1 - beta2) * 9.6**2
    assert round(round(v3, 3) / (1 - beta2**3), 2) == 96.10
    slip = 0.1 + (1 - beta2) * 9.8**2                 # β₂ dropped on v₁
    assert round(slip, 4) == 0.1960                   # explains the hand-worked v₂ ...
    assert round(slip / (1 - beta2**2), 2) == 98.07   # ... but not its v̂₂


def test_bias_correction_of_v_alone_scales_the_first_step_by_sqrt_1000():
    # only m corrected: step α·m̂₁/√v₁ = α·g/(√0.001·|g|)
    g = 7.0
    m1, v1 = 0.1 * g, 0.001 * g**2
    assert (m1 / 0.1) / np.sqrt(v1) == pytest.approx(np.sqrt(1000))
    assert m1 / np.sqrt(v1) == pytest.approx(0.1 / np.sqrt(0.001))  # neither corrected


def test_adam_and_adamw_match_torch_with_and_without_l2():
    rng = np.random.default_rng(0)
    target = rng.standard_normal(5)
    for weight_decay in (0.0, 0.3):
        theta = {"w": np.zeros(5)}
        ours = AdamW(lr=0.05, weight_decay=weight_decay)
        w_t = torch.zeros(5, dtype=torch.float64, requires_grad=True)
        theirs = torch.optim.AdamW([w_t], lr=0.05, weight_decay=weight_decay)
        for _ in range(50):
            ours.update(theta, {"dw": 2 * (theta["w"] - target)})
            theirs.zero_grad()
            ((w_t - torch.from_numpy(target)) ** 2).sum().backward()
            theirs.step()
        assert_allclose(theta["w"], w_t.detach().numpy(), atol=1e-12)


def test_decoupled_decay_alone_is_geometric_and_l2_in_adam_ignores_lambda():
    finals = []
    for lam in (0.01, 1.0):
        decoupled, coupled = {"w": np.array([2.0])}, {"w": np.array([2.0])}
        opt_w, opt_l2 = AdamW(lr=0.01, weight_decay=lam), Adam(lr=0.01)
        for _ in range(100):
            opt_w.update(decoupled, {"dw": np.zeros(1)})
            opt_l2.update(coupled, {"dw": lam * coupled["w"]})
        assert decoupled["w"][0] == pytest.approx(2.0 * (1 - 0.01 * lam) ** 100)
        finals.append(coupled["w"][0])
    assert finals[0] == pytest.approx(finals[1], abs=1e-5)
    assert finals[0] < 1.2  # about α per step
