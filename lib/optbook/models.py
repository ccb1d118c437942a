r"""Small models with hand-written gradients, for the chapter's experiments.

The chapter's comparison problem (its section "Comparing all optimizers") is linear
regression on synthetic data: :math:`N = 1000` examples with :math:`D = 10` features
drawn with seed 42, a hidden weight vector, and a little noise.  The model is
:math:`\hat y = W^\top x + b` with the mean squared error

.. math::

    J(W, b) = \frac1N \sum_{i=1}^{N} (\hat y_i - y_i)^2, \qquad
    \frac{\partial J}{\partial W} = \frac2N X (\hat y - y)^\top, \qquad
    \frac{\partial J}{\partial b} = \frac2N \sum_i (\hat y_i - y_i).

Shapes follow the chapter: ``X`` is ``(D, N)`` (one column per example), ``y`` and
``y_hat`` are ``(1, N)``, ``W`` is ``(D, 1)`` and ``b`` is ``(1, 1)``.  Gradients come back
in the optimizers' format, ``{'dW': ..., 'db': ...}``.
"""

from __future__ import annotations

import numpy as np


def chapter_regression(N: int = 1000, D: int = 10, seed: int = 42, noise: float = 0.1):
    """The chapter's synthetic regression data: ``(X, y, W_true)``.

    Drawn exactly as the chapter's listing draws it (NumPy's legacy generator seeded
    with ``seed``: ``X`` first, then ``W_true`` scaled by 0.5, then the noise), so the
    numbers are the ones a reader of the original listing gets.
    """
    if N < 1 or D < 1:
        raise ValueError(f"Invalid N, D: {N}, {D} (both must be positive)")
    rng = np.random.RandomState(seed)
    X = rng.randn(D, N)
    W_true = rng.randn(D, 1) * 0.5
    y = (X.T @ W_true + rng.randn(N, 1) * noise).T
    return X, y, W_true


def init_linear(D: int, seed: int = 0, scale: float = 0.01) -> dict:
    """Small random ``W`` and zero ``b``: the same starting point for every optimizer."""
    rng = np.random.RandomState(seed)
    return {"W": rng.randn(D, 1) * scale, "b": np.zeros((1, 1))}


def mse_loss_and_grads(params: dict, X: np.ndarray, y: np.ndarray):
    """Mean squared error of the linear model on ``(X, y)`` and its gradients."""
    W, b = params["W"], params["b"]
    if X.shape[0] != W.shape[0]:
        raise ValueError(f"X has {X.shape[0]} features per example but W has shape {W.shape}")
    if y.shape != (1, X.shape[1]):
        raise ValueError(f"y must have shape (1, {X.shape[1]}), got {y.shape}")
    residual = W.T @ X + b - y  # (1, N)
    N = X.shape[1]
    loss = float(np.mean(residual**2))
    grads = {"dW": (2.0 / N) * (X @ residual.T), "db": (2.0 / N) * residual.sum(axis=1, keepdims=True)}
    return loss, grads


def least_squares_loss(X: np.ndarray, y: np.ndarray) -> float:
    """The smallest achievable MSE on ``(X, y)`` (solved directly), the floor for the curves."""
    A = np.vstack([X, np.ones((1, X.shape[1]))]).T  # (N, D + 1)
    coef, *_ = np.linalg.lstsq(A, y.ravel(), rcond=None)
    return float(np.mean((A @ coef - y.ravel()) ** 2))
