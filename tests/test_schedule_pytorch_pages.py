"""Tests for what the 8.7 schedules page and the PyTorch page add to the library:
``optbook.training.torch_loops`` (the warm-up experiment's data, model, training loop and
sharpness) and the figure helpers appended to ``optbook.book`` for those pages.

Closed forms and independent computations are the reference wherever there is one: the
Hessian of a linear least-squares loss, the full Hessian of a tiny network from
``torch.autograd.functional.hessian``, a hand-written SGD loop.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from optbook.book.run_figures import (loss_panels_figure, schedule_frame_figure,
                                      schedules_figure, warmup_runs_figure)
from optbook.schedules import (CosineAnnealingSchedule, WarmupCosineSchedule,  # noqa: E402
                               lr_curve)
from optbook.training.torch_loops import (TrainRun, nonlinear_regression, relu_mlp,
                                          top_hessian_eigenvalue, train_with_schedule)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --------------------------------------------------------------------------------------
# nonlinear_regression
# --------------------------------------------------------------------------------------


def test_regression_follows_its_formula_and_seed():
    X, y = nonlinear_regression(seed=3, N=500, D=6, noise=0.2)
    assert X.shape == (500, 6) and y.shape == (500, 1)
    assert X.dtype == torch.float32 and y.dtype == torch.float32
    # Redraw in the documented order (X, then w, then the noise) and rebuild y.
    g = torch.Generator().manual_seed(3)
    X2 = torch.randn(500, 6, generator=g)
    w = torch.randn(6, 1, generator=g) / math.sqrt(6)
    noise = torch.randn(500, 1, generator=g)
    expected = torch.sin(2 * X2 @ w) + 0.5 * X2[:, :1] * X2[:, 1:2] + 0.2 * noise
    assert torch.equal(X, X2)
    torch.testing.assert_close(y, expected)
    X3, _ = nonlinear_regression(seed=4, N=500, D=6)
    assert not torch.equal(X, X3)


def test_regression_variance_is_what_the_page_says():
    """The page says predicting the mean scores about 0.75 (it computes the measured value)."""
    for seed in range(3):
        _, y = nonlinear_regression(seed=seed)
        assert 0.6 < y.var().item() < 0.9


def test_regression_rejects_bad_sizes():
    with pytest.raises(ValueError, match="N, D"):
        nonlinear_regression(N=0)
    with pytest.raises(ValueError, match="N, D"):
        nonlinear_regression(D=1)


# --------------------------------------------------------------------------------------
# relu_mlp
# --------------------------------------------------------------------------------------


def test_relu_mlp_structure_and_he_initialisation():
    model = relu_mlp((10, 256, 256, 1), seed=0)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    for layer in model[::2]:
        fan_in = layer.weight.shape[1]
        std = layer.weight.std().item()
        if layer.weight.numel() > 1000:  # enough samples for a 10% check
            assert std == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.1)
        assert torch.count_nonzero(layer.bias) == 0
    same = relu_mlp((10, 256, 256, 1), seed=0)
    other = relu_mlp((10, 256, 256, 1), seed=1)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), same.parameters()))
    assert not torch.equal(model[0].weight, other[0].weight)


def test_relu_mlp_default_is_six_hidden_layers_of_64():
    model = relu_mlp()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == (
        [(10, 64)] + [(64, 64)] * 5 + [(64, 1)])


def test_relu_mlp_rejects_bad_sizes():
    with pytest.raises(ValueError, match="sizes"):
        relu_mlp((10,))
    with pytest.raises(ValueError, match="sizes"):
        relu_mlp((10, 0, 1))


# --------------------------------------------------------------------------------------
# train_with_schedule
# --------------------------------------------------------------------------------------


def _small_problem(seed=0):
    X, y = nonlinear_regression(seed=seed, N=256, D=4)
    return X, y, relu_mlp((4, 16, 1), seed=seed)


def test_training_loop_is_plain_sgd_with_the_scheduled_rate():
    X, y, model = _small_problem()
    reference = relu_mlp((4, 16, 1), seed=0)
    schedule = WarmupCosineSchedule(0.05, warmup_epochs=3, total_epochs=12, lr_min=0.0)
    run = train_with_schedule(model, X, y, schedule, 12, 32, torch.Generator().manual_seed(5))

    # The same updates written out by hand, without torch.optim.
    rng = torch.Generator().manual_seed(5)
    losses = []
    for k in range(12):
        idx = torch.randint(len(X), (32,), generator=rng)
        loss = ((reference(X[idx]) - y[idx]) ** 2).mean()
        losses.append(loss.item())
        grads = torch.autograd.grad(loss, list(reference.parameters()))
        with torch.no_grad():
            for p, g in zip(reference.parameters(), grads):
                p -= schedule(k) * g
    np.testing.assert_allclose(run.losses, losses, rtol=1e-6)
    np.testing.assert_array_equal(run.lrs, [schedule(k) for k in range(12)])
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert run.diverged_at is None and run.first_step == 0


def test_training_can_be_continued_exactly():
    """Two calls with the same generator and first_step = steps done equal one call."""
    schedule = CosineAnnealingSchedule(0.05, lr_min=0.0, total_epochs=20)
    X, y, whole = _small_problem()
    one = train_with_schedule(whole, X, y, schedule, 20, 32, torch.Generator().manual_seed(1))
    _, _, split = _small_problem()
    rng = torch.Generator().manual_seed(1)
    first = train_with_schedule(split, X, y, schedule, 8, 32, rng)
    second = train_with_schedule(split, X, y, schedule, 12, 32, rng, first_step=8)
    assert second.first_step == 8
    assert np.concatenate([first.losses, second.losses]).tolist() == one.losses.tolist()
    assert np.concatenate([first.lrs, second.lrs]).tolist() == one.lrs.tolist()


def test_training_stops_at_a_blow_up():
    X, y, model = _small_problem()
    run = train_with_schedule(model, X, y, lambda k: 50.0, 100, 64,
                              torch.Generator().manual_seed(0), blowup=1e3)
    assert run.diverged_at is not None and run.diverged_at < 100
    assert len(run.losses) == run.diverged_at + 1  # stopped at the first bad loss
    assert not (run.losses[-1] <= 1e3)  # above the threshold, or not finite
    assert np.all(run.losses[:-1] <= 1e3)


def test_training_rejects_bad_arguments():
    X, y, model = _small_problem()
    with pytest.raises(ValueError):
        train_with_schedule(model, X, y, lambda k: 0.1, -1, 8, torch.Generator())
    with pytest.raises(ValueError):
        train_with_schedule(model, X, y, lambda k: 0.1, 5, 0, torch.Generator())


def test_the_pages_warmup_claim_holds_for_three_seeds():
    """8.7: at peak 0.2, no warm-up blows up within a few updates; a 60-update warm-up
    to the same peak trains (and ends below the small-peak run the page compares with)."""
    T, W, B = 300, 60, 1024
    for seed in range(3):
        X, y = nonlinear_regression(seed=seed)
        cold = train_with_schedule(relu_mlp(seed=seed), X, y,
                                   CosineAnnealingSchedule(0.2, 0.0, T), T, B,
                                   torch.Generator().manual_seed(seed))
        assert cold.diverged_at is not None and cold.diverged_at < 10
        model = relu_mlp(seed=seed)
        start = torch.nn.functional.mse_loss(model(X), y).item()
        warm = train_with_schedule(model, X, y, WarmupCosineSchedule(0.2, W, T, 0.0), T, B,
                                   torch.Generator().manual_seed(seed))
        assert warm.diverged_at is None
        end = torch.nn.functional.mse_loss(model(X), y).item()
        assert end < 0.5 * start and end < 0.4


# --------------------------------------------------------------------------------------
# top_hessian_eigenvalue
# --------------------------------------------------------------------------------------


def test_sharpness_of_a_linear_model_is_the_closed_form():
    """For the MSE of y ≈ Xw + b the Hessian is (2/N) AᵀA with A = [X, 1]."""
    g = torch.Generator().manual_seed(0)
    N, D = 400, 5
    X = torch.randn(N, D, generator=g, dtype=torch.float64)
    X[:, 0] *= 3.0  # a clear top eigenvalue, so the power iteration converges fast
    y = torch.randn(N, 1, generator=g, dtype=torch.float64)
    model = relu_mlp((D, 1), seed=0).double()
    A = np.hstack([X.numpy(), np.ones((N, 1))])
    expected = np.linalg.eigvalsh(2.0 / N * A.T @ A).max()
    assert top_hessian_eigenvalue(model, X, y, iters=100) == pytest.approx(expected, rel=1e-8)


def test_sharpness_of_a_small_network_matches_its_full_hessian():
    X, y = nonlinear_regression(seed=0, N=64, D=3)
    X, y = X.double(), y.double()
    model = relu_mlp((3, 5, 1), seed=2).double()
    params = list(model.parameters())
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]

    def loss_of(flat):
        chunks = torch.split(flat, sizes)
        h = X
        ws = [c.reshape(s) for c, s in zip(chunks, shapes)]
        h = torch.relu(h @ ws[0].T + ws[1])
        return torch.mean((h @ ws[2].T + ws[3] - y) ** 2)

    flat = torch.cat([p.detach().flatten() for p in params])
    H = torch.autograd.functional.hessian(loss_of, flat).numpy()
    eig = np.linalg.eigvalsh(H)
    largest = eig[np.argmax(np.abs(eig))]
    assert top_hessian_eigenvalue(model, X, y, iters=1000) == pytest.approx(largest, rel=1e-4)


def test_sharpness_leaves_the_parameters_alone():
    X, y, model = _small_problem()
    before = [p.detach().clone() for p in model.parameters()]
    top_hessian_eigenvalue(model, X, y, iters=5)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    assert all(p.grad is None for p in model.parameters())


# --------------------------------------------------------------------------------------
# Figure helpers
# --------------------------------------------------------------------------------------


def test_schedules_figure_draws_each_curve_linear_and_log():
    curves = {"cosine": lr_curve(CosineAnnealingSchedule(0.01, 1e-6, 50), 50),
              "flat": np.full(50, 0.005)}
    fig = schedules_figure(curves, title="t")
    top, bottom = fig.axes
    assert len(top.lines) == len(bottom.lines) == 2
    assert top.get_yscale() == "linear" and bottom.get_yscale() == "log"
    np.testing.assert_array_equal(top.lines[0].get_ydata(), curves["cosine"])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["cosine", "flat"]


def test_schedule_frame_figure_marks_spans_and_restarts():
    lrs = lr_curve(WarmupCosineSchedule(0.01, 5, 40), 40)
    fig = schedule_frame_figure(lrs, spans=[(0, 4, "warm-up")], marks=[10, 30], ymax=0.02)
    ax = fig.axes[0]
    assert len(ax.patches) == 1  # the shaded warm-up
    vertical = [ln for ln in ax.lines if len(set(ln.get_xdata())) == 1]
    assert sorted(ln.get_xdata()[0] for ln in vertical) == [10, 30]
    assert ax.get_ylim() == (0, 0.02)


def test_warmup_runs_figure_clips_and_crosses_blow_ups():
    ok = TrainRun(np.array([1.0, 0.5, 0.2]), np.array([0.1, 0.2, 0.2]))
    bad = TrainRun(np.array([1.0, 50.0, np.inf]), np.array([0.2, 0.2, 0.2]), diverged_at=2)
    fig = warmup_runs_figure({"warm": [ok], "cold": [bad]}, blowup=10.0,
                             schedules={"warm": [0.1, 0.2, 0.2, 0.1], "cold": [0.2] * 4})
    ax_lr, ax_loss = fig.axes
    assert [len(ln.get_xdata()) for ln in ax_lr.lines] == [4, 4]  # whole schedules
    crosses = [ln for ln in ax_loss.lines if ln.get_marker() == "x"]
    assert len(crosses) == 1 and crosses[0].get_ydata()[0] == 10.0
    curves = [ln for ln in ax_loss.lines if ln.get_marker() != "x" and len(ln.get_xdata()) == 3]
    assert max(np.max(ln.get_ydata()) for ln in curves) == 10.0  # nothing drawn above
    assert ax_loss.get_yscale() == "log"


def test_loss_panels_figure_one_panel_each_and_clipped():
    panels = {"A": {"good": [1.0, 0.1, 0.01], "bad": [1.0, 1e9, np.inf]},
              "B": {"good": [2.0, 1.0, 0.5], "bad": [2.0, 3.0, 4.0]}}
    fig = loss_panels_figure(panels, clip=1e6)
    assert len(fig.axes) == 2
    a, b = fig.axes
    crosses_a = [ln for ln in a.lines if ln.get_marker() == "x"]
    assert len(crosses_a) == 1 and crosses_a[0].get_xdata()[0] == 1
    assert not [ln for ln in b.lines if ln.get_marker() == "x"]
    assert a.get_title() == "A" and a.get_yscale() == "log"
