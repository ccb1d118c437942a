"""8.1: mini-batches, the logistic model, the training loop, the timing helpers, the
learning-rate scaling rules and the 2-parameter line fit — against closed forms, finite
differences and PyTorch."""

import math
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from optbook.minibatch import (MinibatchRun, line_fit_path, line_fit_problem,  # noqa: E402
                               line_fit_surface, logistic_data, logistic_loss_and_grads,
                               logistic_minimum, minibatches, mlp_seconds_per_example,
                               run_minibatch, scaled_lr, timings, updates_per_epoch)
from optbook.models import init_linear  # noqa: E402
from optbook.optimizers import SGD, Adam  # noqa: E402
from optbook.book.surface_figures import (batch_size_color, batch_size_race_figure,
                                          minibatch_path_figure)

from finite_differences import fd_gradients  # noqa: E402


# ----------------------------------------------------------------- updates and batches
@pytest.mark.parametrize("N, B, expected", [
    (1000, 32, 32), (1000, 1000, 1), (1000, 1, 1000), (1000, 5000, 1), (60_000, 32, 1875),
    (48_000_000, 512, 93_750), (48_000_001, 512, 93_751), (10**18 + 1, 10**9, 10**9 + 1),
])
def test_updates_per_epoch(N, B, expected):
    assert updates_per_epoch(N, B) == expected
    assert isinstance(updates_per_epoch(N, B), int)


@pytest.mark.parametrize("N, B", [(0, 1), (10, 0), (-5, 2), (10, 2.0), (True, 3), (10, None)])
def test_updates_per_epoch_rejects_bad_input(N, B):
    with pytest.raises(ValueError):
        updates_per_epoch(N, B)


@pytest.mark.parametrize("N, B", [(10, 3), (10, 10), (10, 1), (7, 100), (1000, 32)])
def test_minibatches_partition_the_examples(N, B):
    for rng in (None, np.random.default_rng(0)):
        batches = minibatches(N, B, rng)
        assert len(batches) == updates_per_epoch(N, B)
        assert all(len(b) == min(B, N) for b in batches[:-1])
        assert 1 <= len(batches[-1]) <= B
        np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(N))


def test_minibatches_shuffle_with_a_generator_and_not_without():
    ordered = np.concatenate(minibatches(100, 8))
    np.testing.assert_array_equal(ordered, np.arange(100))
    a = np.concatenate(minibatches(100, 8, np.random.default_rng(1)))
    b = np.concatenate(minibatches(100, 8, np.random.default_rng(1)))
    np.testing.assert_array_equal(a, b)  # seeded: reproducible
    assert not np.array_equal(a, ordered)
    rng = np.random.default_rng(1)
    first, second = (np.concatenate(minibatches(100, 8, rng)) for _ in range(2))
    assert not np.array_equal(first, second)  # a fresh permutation every epoch


# ----------------------------------------------------------------- the logistic model
def test_logistic_data_shapes_labels_and_scales():
    X, y, W_true, b_true = logistic_data(N=500, D=4, seed=2)
    assert X.shape == (4, 500) and y.shape == (1, 500) and W_true.shape == (4, 1)
    assert set(np.unique(y)) == {0.0, 1.0}
    scales = np.array([0.1, 1.0, 3.0, 10.0])
    Xs, ys, Ws, _ = logistic_data(N=500, D=4, seed=2, feature_scales=scales)
    np.testing.assert_allclose(Xs, X * scales[:, None])  # same draw, rescaled features
    np.testing.assert_array_equal(ys, y)
    np.testing.assert_array_equal(Ws, W_true)
    with pytest.raises(ValueError):
        logistic_data(N=10, D=4, feature_scales=[1.0, 2.0])
    with pytest.raises(ValueError):
        logistic_data(N=10, D=2, feature_scales=[1.0, -2.0])


def test_logistic_labels_follow_the_model():
    X, y, W_true, b_true = logistic_data(N=200_000, D=3, seed=0)
    p = 1 / (1 + np.exp(-(W_true.T @ X + b_true)))
    assert abs(y.mean() - p.mean()) < 0.005


def _random_params(D, seed):
    rng = np.random.default_rng(seed)
    return {"W": rng.standard_normal((D, 1)), "b": rng.standard_normal((1, 1))}


def test_logistic_gradients_match_finite_differences():
    X, y, *_ = logistic_data(N=60, D=4, seed=5, feature_scales=[0.5, 1, 2, 3])
    params = _random_params(4, 1)
    _, grads = logistic_loss_and_grads(params, X, y)
    fd = fd_gradients(lambda p: logistic_loss_and_grads(p, X, y)[0], params)
    for key in grads:
        np.testing.assert_allclose(grads[key], fd[key], rtol=1e-6, atol=1e-9)


def test_logistic_loss_and_gradients_match_torch():
    X, y, *_ = logistic_data(N=300, D=6, seed=7)
    params = _random_params(6, 3)
    loss, grads = logistic_loss_and_grads(params, X, y)
    W = torch.tensor(params["W"], requires_grad=True)
    b = torch.tensor(params["b"], requires_grad=True)
    z = W.T @ torch.tensor(X) + b
    ref = torch.nn.functional.binary_cross_entropy_with_logits(z, torch.tensor(y))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(grads["dW"], W.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads["db"], b.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_logistic_loss_is_stable_for_huge_logits():
    X = np.array([[1000.0, -1000.0, 1000.0]])
    y = np.array([[1.0, 0.0, 0.0]])
    params = {"W": np.array([[1.0]]), "b": np.zeros((1, 1))}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning allowed
        loss, grads = logistic_loss_and_grads(params, X, y)
    # two examples are confidently right (loss ≈ 0), one confidently wrong (loss = z = 1000)
    assert loss == pytest.approx(1000.0 / 3)
    assert np.all(np.isfinite(grads["dW"])) and np.all(np.isfinite(grads["db"]))


def test_logistic_loss_rejects_mismatched_shapes():
    X, y, *_ = logistic_data(N=10, D=3)
    with pytest.raises(ValueError):
        logistic_loss_and_grads(init_linear(4), X, y)
    with pytest.raises(ValueError):
        logistic_loss_and_grads(init_linear(3), X, y[:, :5])


def test_logistic_minimum_is_a_stationary_point_and_the_lowest_loss():
    X, y, *_ = logistic_data(N=2000, D=5, seed=4, feature_scales=[0.3, 1, 1, 2, 3])
    J_star, best = logistic_minimum(X, y)
    loss, grads = logistic_loss_and_grads(best, X, y)
    assert loss == pytest.approx(J_star, rel=1e-14)
    assert np.linalg.norm(grads["dW"]) < 1e-9 and abs(grads["db"].item()) < 1e-9
    rng = np.random.default_rng(0)
    for _ in range(20):  # convex: every nearby point is higher
        moved = {k: v + 1e-2 * rng.standard_normal(v.shape) for k, v in best.items()}
        assert logistic_loss_and_grads(moved, X, y)[0] > J_star


def test_logistic_minimum_reports_separable_data():
    X = np.array([[-2.0, -1.0, 1.0, 2.0]])
    y = np.array([[0.0, 0.0, 1.0, 1.0]])  # perfectly separable: no finite minimum
    with pytest.raises(RuntimeError):
        logistic_minimum(X, y, iterations=30)


# ----------------------------------------------------------------- the training loop
def _plain_minibatch_sgd(params, X, y, B, lr, epochs, seed):
    """The 8.1 page's loop, written independently of run_minibatch."""
    rng = np.random.default_rng(seed)
    N = X.shape[1]
    for _ in range(epochs):
        order = rng.permutation(N)
        for start in range(0, N, B):
            idx = order[start:start + B]
            _, g = logistic_loss_and_grads(params, X[:, idx], y[:, idx])
            for key in params:
                params[key] -= lr * g["d" + key]
    return params


@pytest.mark.parametrize("B", [1, 7, 32, 100])
def test_run_minibatch_matches_the_plain_loop(B):
    X, y, *_ = logistic_data(N=100, D=3, seed=1)
    expected = _plain_minibatch_sgd(init_linear(3), X, y, B, lr=0.3, epochs=3, seed=9)
    params = init_linear(3)
    run = run_minibatch(logistic_loss_and_grads, params, X, y, batch_size=B,
                        optimizer=SGD(lr=0.3), epochs=3, seed=9)
    for key in params:
        np.testing.assert_allclose(params[key], expected[key], rtol=1e-10, atol=1e-13)
    assert run.batch_size == B
    assert run.updates[-1] == 3 * updates_per_epoch(100, B)
    assert len(run.epoch_losses) == 4 and len(run.epoch_seconds) == 3
    assert run.losses[-1] == pytest.approx(logistic_loss_and_grads(params, X, y)[0])


def test_full_batch_run_is_gradient_descent():
    X, y, *_ = logistic_data(N=64, D=2, seed=3)
    params = init_linear(2)
    run = run_minibatch(logistic_loss_and_grads, params, X, y, batch_size=10**6,
                        optimizer=SGD(lr=0.5), epochs=5)
    assert run.batch_size == 64  # clipped to N
    ref = init_linear(2)
    losses = [logistic_loss_and_grads(ref, X, y)[0]]
    for _ in range(5):
        _, g = logistic_loss_and_grads(ref, X, y)
        for key in ref:
            ref[key] -= 0.5 * g["d" + key]
        losses.append(logistic_loss_and_grads(ref, X, y)[0])
    np.testing.assert_allclose(params["W"], ref["W"], rtol=1e-12)
    np.testing.assert_allclose(run.epoch_losses, losses, rtol=1e-12)
    np.testing.assert_array_equal(run.updates, np.arange(6))


def test_run_minibatch_matches_torch_sgd_on_the_same_batches():
    X, y, *_ = logistic_data(N=90, D=4, seed=2)
    params = init_linear(4, seed=1, scale=0.3)
    W = torch.tensor(params["W"].copy(), requires_grad=True)
    b = torch.tensor(params["b"].copy(), requires_grad=True)
    opt = torch.optim.SGD([W, b], lr=0.2)
    rng = np.random.default_rng(4)
    for _ in range(2):
        for idx in minibatches(90, 16, rng):
            opt.zero_grad()
            z = W.T @ torch.tensor(X[:, idx]) + b
            torch.nn.functional.binary_cross_entropy_with_logits(z, torch.tensor(y[:, idx])).backward()
            opt.step()
    run_minibatch(logistic_loss_and_grads, params, X, y, batch_size=16,
                  optimizer=SGD(lr=0.2), epochs=2, seed=4)
    np.testing.assert_allclose(params["W"], W.detach().numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(params["b"], b.detach().numpy(), rtol=1e-10, atol=1e-13)


def test_run_minibatch_records_are_consistent():
    X, y, *_ = logistic_data(N=500, D=3, seed=0)
    run = run_minibatch(logistic_loss_and_grads, init_linear(3), X, y, batch_size=10,
                        optimizer=Adam(lr=0.01), epochs=2, n_records=30)
    assert isinstance(run, MinibatchRun)
    assert run.updates[0] == 0 and run.seconds[0] == 0.0
    assert np.all(np.diff(run.updates) > 0) and np.all(np.diff(run.seconds) >= 0)
    assert len(run.updates) == len(run.seconds) == len(run.losses)
    assert 100 in run.updates and 50 in run.updates  # every epoch end is recorded
    for e, k in enumerate((0, 50, 100)):
        assert run.epoch_losses[e] == run.losses[list(run.updates).index(k)]
    assert run.seconds_per_epoch > 0 and math.isfinite(run.seconds_per_epoch)
    assert run.losses[-1] < run.losses[0]


def test_run_minibatch_time_budget_stops_early():
    X, y, *_ = logistic_data(N=2000, D=3, seed=0)
    run = run_minibatch(logistic_loss_and_grads, init_linear(3), X, y, batch_size=1,
                        optimizer=SGD(lr=0.01), epochs=50, time_budget=0.02)
    assert run.updates[-1] < 50 * 2000
    assert run.seconds[-1] >= 0.02
    assert len(run.epoch_seconds) == run.updates[-1] // 2000  # only complete epochs


def test_run_minibatch_rejects_bad_arguments():
    X, y, *_ = logistic_data(N=20, D=2)
    for kwargs in ({"batch_size": 0}, {"batch_size": 4, "epochs": 0}):
        with pytest.raises(ValueError):
            run_minibatch(logistic_loss_and_grads, init_linear(2), X, y,
                          optimizer=SGD(lr=0.1), **{"batch_size": 4, **kwargs})
    with pytest.raises(ValueError):
        run_minibatch(logistic_loss_and_grads, init_linear(2), X, y[:, :10],
                      batch_size=4, optimizer=SGD(lr=0.1))


# ----------------------------------------------------------------- timing and scaling
def test_timings_counts_calls_and_measures_sleep():
    calls = []
    t = timings(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(t) == 4 and len(calls) == 6 and np.all(t >= 0)
    import time
    slept = timings(lambda: time.sleep(0.01), repeats=2, warmup=0)
    assert np.all(slept >= 0.009)
    with pytest.raises(ValueError):
        timings(lambda: None, repeats=0)
    with pytest.raises(ValueError):
        timings(lambda: None, warmup=-1)


@pytest.mark.parametrize("B, linear, sqrt", [
    (256, 0.1, 0.1), (1024, 0.4, 0.2), (8192, 3.2, 0.1 * math.sqrt(32)), (64, 0.025, 0.05),
])
def test_scaled_lr(B, linear, sqrt):
    assert scaled_lr(0.1, 256, B) == pytest.approx(linear)
    assert scaled_lr(0.1, 256, B, rule="linear") == pytest.approx(linear)
    assert scaled_lr(0.1, 256, B, rule="sqrt") == pytest.approx(sqrt)


@pytest.mark.parametrize("args", [(0.0, 256, 512), (-1, 256, 512), (0.1, 0, 512),
                                  (0.1, 256, 0), (float("inf"), 1, 1), (True, 1, 1)])
def test_scaled_lr_rejects_bad_input(args):
    with pytest.raises(ValueError):
        scaled_lr(*args)
    with pytest.raises(ValueError):
        scaled_lr(0.1, 256, 512, rule="cubic")


def test_mlp_seconds_per_example_shapes_and_thread_restore():
    before = torch.get_num_threads()
    out = mlp_seconds_per_example([8, 12, 16], N=64, D=4, hidden=8, device="cpu",
                                  repeats=3, cpu_threads=1)
    assert torch.get_num_threads() == before
    assert list(out) == [8, 12, 16]
    for t in out.values():
        assert t.shape == (3,) and np.all(t > 0) and np.all(t < 1)
    with pytest.raises(ValueError):
        mlp_seconds_per_example([128], N=64, device="cpu", repeats=1)
    with pytest.raises(ValueError):
        mlp_seconds_per_example([8, 8], N=64, device="cpu", repeats=1)


# ----------------------------------------------------------------- the line fit
def test_line_fit_surface_is_the_mean_squared_error():
    x, y = line_fit_problem(N=300, seed=2)
    s = line_fit_surface(x, y)
    rng = np.random.default_rng(0)
    for w, b in rng.normal(size=(5, 2)) * 3:
        assert s.value([w, b]) == pytest.approx(np.mean((w * x + b - y) ** 2), rel=1e-10)
        h = 1e-6
        fd = [(s.value([w + h, b]) - s.value([w - h, b])) / (2 * h),
              (s.value([w, b + h]) - s.value([w, b - h])) / (2 * h)]
        np.testing.assert_allclose(s.gradient([w, b]), fd, rtol=1e-6, atol=1e-8)
    w_fit, b_fit = np.polyfit(x, y, 1)
    np.testing.assert_allclose(s.minima[0], (w_fit, b_fit), rtol=1e-9)
    assert s.f_min == pytest.approx(np.mean((w_fit * x + b_fit - y) ** 2), rel=1e-9)
    np.testing.assert_allclose(s.gradient(s.minima[0]), [0.0, 0.0], atol=1e-10)
    X, Y, Z = s.grid(11)  # works on whole grids
    assert Z.shape == (11, 11) and np.all(Z >= s.f_min - 1e-12)


def test_line_fit_path_full_batch_is_gradient_descent():
    x, y = line_fit_problem(N=200, seed=1)
    s = line_fit_surface(x, y)
    path = line_fit_path(x, y, batch_size=200, lr=0.1, steps=15)
    theta = np.array(s.default_start)
    for t in range(1, 16):
        theta = theta - 0.1 * s.gradient(theta)
        np.testing.assert_allclose(path.points[t], theta, rtol=1e-12)
    np.testing.assert_allclose(path.losses, [s.value(p) for p in path.points], rtol=1e-12)
    assert path.diverged_at is None


def test_line_fit_path_minibatches_are_noisier_and_seeded():
    x, y = line_fit_problem(N=1000, seed=0)
    s = line_fit_surface(x, y)
    a = line_fit_path(x, y, batch_size=4, lr=0.1, steps=200, seed=3)
    b = line_fit_path(x, y, batch_size=4, lr=0.1, steps=200, seed=3)
    np.testing.assert_array_equal(a.points, b.points)
    late = {B: np.mean(line_fit_path(x, y, batch_size=B, lr=0.1, steps=200, seed=3).losses[100:])
            - s.f_min for B in (1, 16, 256)}
    assert late[1] > late[16] > late[256]  # the noise floor falls as B grows


def test_line_fit_path_reports_divergence_and_bad_input():
    x, y = line_fit_problem(N=100)
    path = line_fit_path(x, y, batch_size=100, lr=5.0, steps=500)
    assert path.diverged_at is not None and len(path.points) == path.diverged_at
    for kwargs in ({"batch_size": 0}, {"lr": 0.0}, {"lr": -1.0}, {"steps": 0}):
        with pytest.raises(ValueError):
            line_fit_path(x, y, **{"batch_size": 4, "lr": 0.1, "steps": 5, **kwargs})
    with pytest.raises(ValueError):
        line_fit_surface(x, y[:50])


# ----------------------------------------------------------------- the 8.1 figures
def test_batch_size_colors_distinguish_the_ends():
    assert batch_size_color(1, 1000) != batch_size_color(1000, 1000)
    assert batch_size_color(32, 1000) != batch_size_color(512, 1000)


def test_race_and_path_figures():
    X, y, *_ = logistic_data(N=256, D=3, seed=0)
    J_star, _ = logistic_minimum(X, y)
    runs = {f"B = {B}": run_minibatch(logistic_loss_and_grads, init_linear(3), X, y,
                                      batch_size=B, optimizer=SGD(lr=0.5), epochs=2)
            for B in (8, 256)}
    fig = batch_size_race_figure(runs, J_star)
    ax_u, ax_s = fig.axes
    assert len(ax_u.lines) == 2 and len(ax_s.lines) == 2
    assert ax_u.get_xscale() == "log" and ax_s.get_yscale() == "log"
    plt.close(fig)

    x, yy = line_fit_problem(N=100)
    s = line_fit_surface(x, yy)
    p = line_fit_path(x, yy, batch_size=4, lr=0.1, steps=10)
    q = line_fit_path(x, yy, batch_size=100, lr=0.1, steps=10)
    fig = minibatch_path_figure(s, p, q, loss_ylim=(1e-6, 10))
    assert fig.axes[1].get_ylim() == pytest.approx((1e-6, 10))
    assert len(fig.axes[1].lines) == 2
    plt.close(fig)
