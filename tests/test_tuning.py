"""optbook.tuning: the range test against its formula and a hand-written replay; the noise
scale against exact values (linear regression with Gaussian inputs, where tr Σ and |G|²
are known in closed form, and per-example gradients of a finite data set)."""

import math

import numpy as np
import pytest
import torch

from optbook.tuning import (NoiseScale, gradient_noise_scale, gradient_sq_norms,
                            linear_regression_noise_scale, lr_range_test,
                            noise_scale_from_norms, predicted_steps, range_test_lrs,
                            suggest_lr)


def squared_error(model, batch):
    X, y = batch
    return ((model(X).squeeze(-1) - y) ** 2).mean()


def linear_model(w):
    model = torch.nn.Linear(len(w), 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor(w, dtype=torch.float64)[None])
    return model


def regression(N, D, sigma, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, D, generator=g, dtype=torch.float64)
    w_star = torch.randn(D, generator=g, dtype=torch.float64)
    return X, X @ w_star + sigma * torch.randn(N, generator=g, dtype=torch.float64), w_star


# ------------------------------------------------------------------- range test
@pytest.mark.parametrize("lr_min, lr_max, steps", [(1e-5, 10.0, 100), (0.1, 0.2, 2),
                                                   (3e-4, 7.0, 37)])
def test_range_test_lrs_follow_the_formula(lr_min, lr_max, steps):
    lrs = range_test_lrs(lr_min, lr_max, steps)
    expected = [lr_min * (lr_max / lr_min) ** (k / (steps - 1)) for k in range(steps)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    np.testing.assert_allclose(lrs, np.geomspace(lr_min, lr_max, steps), rtol=1e-12)
    assert lrs[0] == pytest.approx(lr_min) and lrs[-1] == pytest.approx(lr_max)


@pytest.mark.parametrize("args, word", [((0.0, 1.0, 10), "lr_min"), ((1.0, 0.5, 10), "lr_max"),
                                        ((1e-3, 1.0, 1), "steps"), ((1e-3, math.inf, 5), "lr_max"),
                                        ((True, 1.0, 5), "lr_min")])
def test_range_test_lrs_rejects_bad_input(args, word):
    with pytest.raises(ValueError, match=word):
        range_test_lrs(*args)


def test_range_test_matches_a_hand_written_replay_and_stops_past_the_stability_edge():
    """Gradient descent on (λ/2)·θ² is stable only for α < 2/λ: the recorded losses are
    those of a plain replay with the same rates, and the run stops only beyond 2/λ."""
    lam, steps = 4.0, 60
    theta = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    model = lambda batch: theta                                     # noqa: E731
    loss_fn = lambda m, batch: 0.5 * lam * (m(batch) ** 2).sum()    # noqa: E731
    opt = torch.optim.SGD([theta], lr=1.0)
    result = lr_range_test(model, loss_fn, iter([None] * steps), opt, lr_min=1e-3,
                           lr_max=10.0, steps=steps, beta=0.5)
    lrs = range_test_lrs(1e-3, 10.0, steps)
    x, replay = 1.0, []
    for lr in lrs[: len(result.losses)]:
        replay.append(0.5 * lam * x * x)
        x -= lr * lam * x
    np.testing.assert_allclose(result.losses, replay, rtol=1e-12)
    np.testing.assert_allclose(result.lrs, lrs[: len(result.losses)])
    assert result.stopped_at is not None and result.lrs[result.stopped_at] > 2 / lam
    # the smoothed loss is the bias-corrected EWA of the losses (8.3)
    from optbook.ewa import ewa
    np.testing.assert_allclose(result.smoothed, ewa(result.losses, 0.5, bias_correction=True))


def test_range_test_needs_enough_batches():
    theta = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(ValueError, match="ran out after 3"):
        lr_range_test(lambda b: theta, lambda m, b: (m(b) ** 2).sum(), [None] * 3,
                      torch.optim.SGD([theta], lr=0.1), steps=10)


def test_suggest_lr_rules():
    lrs = np.geomspace(1e-4, 1.0, 9)
    curve = np.array([2.0, 2.0, 1.9, 1.5, 0.8, 0.5, 0.45, 0.9, 5.0])
    assert suggest_lr(lrs, curve) == pytest.approx(lrs[6] / 10)
    assert suggest_lr(lrs, curve, rule="steepest") == pytest.approx(lrs[3])
    with pytest.raises(ValueError, match="rule"):
        suggest_lr(lrs, curve, rule="max")
    with pytest.raises(ValueError, match="lowest at the first"):
        suggest_lr(lrs, np.arange(9.0), rule="steepest")
    with pytest.raises(ValueError, match="same length"):
        suggest_lr(lrs, curve[:-1])


# ------------------------------------------------------------------- noise scale
def test_linear_regression_noise_scale_formula_against_monte_carlo():
    """The closed form against per-example gradients of a million drawn examples."""
    rng = np.random.default_rng(1)
    D, sigma = 4, 0.7
    w_star, w = rng.normal(size=D), rng.normal(size=D)
    x = rng.normal(size=(1_000_000, D))
    r = x @ (w - w_star) - sigma * rng.normal(size=len(x))
    g = 2 * x * r[:, None]
    exact = linear_regression_noise_scale(w, w_star, sigma)
    assert exact.g2 == pytest.approx(np.sum(g.mean(0) ** 2), rel=0.02)
    assert exact.trace == pytest.approx(np.sum(g.var(0)), rel=0.01)


@pytest.mark.parametrize("seed", [0, 2])
def test_noise_scale_estimate_matches_the_exact_value(seed):
    """On linear regression with Gaussian inputs the two-batch estimator recovers the
    exact tr Σ, |G|² and B_simple. With 1500 batches per size the estimate's relative
    standard deviation is about 3.5 % (measured over seeds), so 15 % is over 4 of them."""
    D, sigma = 5, 1.0
    X, y, w_star = regression(200_000, D, sigma, seed)
    w = w_star.numpy() + 0.3 * np.random.default_rng(seed).normal(size=D)
    model = linear_model(w)
    exact = linear_regression_noise_scale(w, w_star.numpy(), sigma)
    est = gradient_noise_scale(model, squared_error, (X, y), b_small=8, b_big=256,
                               n_batches=1500, seed=seed)
    assert est.trace == pytest.approx(exact.trace, rel=0.15)
    assert est.g2 == pytest.approx(exact.g2, rel=0.1)
    assert est.b_simple == pytest.approx(exact.b_simple, rel=0.15)
    assert exact.b_simple > 10   # the check could tell a noise scale of 1 from the truth


def test_gradient_sq_norms_mean_is_g2_plus_trace_over_b():
    """With replacement, E|G_B|² = |G|² + tr Σ / B for the data set's own per-example
    gradients (computed here directly)."""
    X, y, _ = regression(500, 3, 0.5, seed=3)
    w = np.array([0.2, -0.1, 0.4])
    model = linear_model(w)
    r = X.numpy() @ w - y.numpy()
    g = 2 * X.numpy() * r[:, None]
    G2, trace = np.sum(g.mean(0) ** 2), np.sum(g.var(0))
    for B in (1, 16):
        sq = gradient_sq_norms(model, squared_error, (X, y), B, 4000,
                               torch.Generator().manual_seed(B))
        assert sq.mean() == pytest.approx(G2 + trace / B, rel=0.05)
    assert model.weight.grad is None   # the parameters' .grad are left alone


def test_noise_scale_from_norms_is_exact_on_exact_inputs_and_checks_arguments():
    ns = noise_scale_from_norms([2.0 + 30 / 4] * 3, 4, [2.0 + 30 / 64], 64)
    assert (ns.g2, ns.trace) == (pytest.approx(2.0), pytest.approx(30.0))
    assert ns.b_simple == pytest.approx(15.0)
    assert NoiseScale(0.0, 1.0).b_simple == math.inf
    with pytest.raises(ValueError, match="b_big"):
        noise_scale_from_norms([1.0], 64, [1.0], 64)
    with pytest.raises(ValueError, match="b_small"):
        noise_scale_from_norms([1.0], 0, [1.0], 64)


def test_predicted_steps_limits():
    s = predicted_steps([1, 10, 1e6], b_noise=100.0, s_min=20.0)
    assert s[0] == pytest.approx(20 * 101) and s[-1] == pytest.approx(20.0, rel=1e-3)
    with pytest.raises(ValueError, match="b_noise"):
        predicted_steps([1], b_noise=-1.0, s_min=1.0)
