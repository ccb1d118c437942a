"""The hand-written gradients of optbook.models against finite differences."""

import numpy as np
import pytest

from finite_differences import fd_gradients
from optbook.models import chapter_regression, init_linear, least_squares_loss, mse_loss_and_grads


def test_chapter_data_shapes_and_seed():
    X, y, W_true = chapter_regression()
    assert X.shape == (10, 1000) and y.shape == (1, 1000) and W_true.shape == (10, 1)
    # reproduces the chapter's listing: np.random.seed(42); X = randn(D, N) first
    np.random.seed(42)
    np.testing.assert_array_equal(X, np.random.randn(10, 1000))


def test_gradients_match_finite_differences():
    X, y, _ = chapter_regression(N=50, D=4, seed=3)
    params = init_linear(4, seed=1, scale=0.5)
    params["b"] += 0.3
    _, grads = mse_loss_and_grads(params, X, y)
    fd = fd_gradients(lambda p: mse_loss_and_grads(p, X, y)[0], params)
    for key in grads:
        np.testing.assert_allclose(grads[key], fd[key], rtol=1e-6, atol=1e-8)


def test_least_squares_floor_is_the_noise_level():
    X, y, W_true = chapter_regression()
    floor = least_squares_loss(X, y)
    assert 0.005 < floor < 0.0125  # noise variance 0.1² = 0.01, minus what D+1 fitted weights absorb
    at_truth, _ = mse_loss_and_grads({"W": W_true, "b": np.zeros((1, 1))}, X, y)
    assert floor <= at_truth


def test_shape_errors_are_named():
    X, y, _ = chapter_regression(N=20, D=3)
    with pytest.raises(ValueError, match="features"):
        mse_loss_and_grads(init_linear(4), X, y)
    with pytest.raises(ValueError, match="y must have shape"):
        mse_loss_and_grads(init_linear(3), X, y.T)
