r"""8.1 Gradient descent variants: mini-batches, their cost and their noise.

Batch gradient descent, stochastic gradient descent and mini-batch gradient descent
are one algorithm with one knob, the batch size :math:`B`.  Each update uses the
average gradient over :math:`B` examples,

.. math::

    \theta \leftarrow \theta - \alpha \, \frac1B \sum_{i \in \text{batch}}
    \nabla J\big(\theta; x^{(i)}, y^{(i)}\big),

and an *epoch* (one pass over all :math:`N` examples) makes
:math:`\lceil N/B \rceil` updates: :math:`B = N` is batch gradient descent, :math:`B = 1`
is SGD.  This module holds what the 8.1 page and the chapter opening measure:

* :func:`updates_per_epoch`: :math:`\lceil N/B \rceil`;
* :func:`minibatches`: the index sets of one epoch (shuffled or in order);
* :func:`logistic_data`, :func:`logistic_loss_and_grads`, :func:`logistic_minimum`: a
  synthetic classification problem, its mean cross-entropy with gradients, and its
  exact minimum (the floor of the loss curves);
* :func:`run_minibatch`: mini-batch training that records the full-data loss against
  updates and against wall-clock time (:class:`MinibatchRun`);
* :func:`timings`: repeated wall-clock timings of a function;
* :func:`scaled_lr`: the linear and square-root learning-rate scaling rules;
* :func:`line_fit_problem`, :func:`line_fit_surface`, :func:`line_fit_path`: a
  two-parameter least-squares problem, its loss surface and mini-batch SGD paths on it;
* :func:`mlp_seconds_per_example`: training time per example of a small PyTorch MLP.

Shapes follow :mod:`optbook.models`: ``X`` is ``(D, N)`` with one column per example,
``y`` is ``(1, N)``, ``W`` is ``(D, 1)`` and ``b`` is ``(1, 1)``; gradients come back as
``{'dW': ..., 'db': ...}`` for the optimizers in :mod:`optbook.optimizers`.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._checks import check_int
from .surfaces import Surface, Trajectory

__all__ = ["updates_per_epoch", "minibatches", "logistic_data", "logistic_loss_and_grads",
           "logistic_minimum", "MinibatchRun", "run_minibatch", "timings", "scaled_lr",
           "line_fit_problem", "line_fit_surface", "line_fit_path", "mlp_seconds_per_example"]


def _check_count(name: str, value) -> int:
    return check_int(name, value, 1)


# ------------------------------------------------------------------ batches and epochs
def updates_per_epoch(N: int, batch_size: int) -> int:
    r"""Updates in one pass over ``N`` examples with batches of ``batch_size``:
    :math:`\lceil N/B \rceil` (the last batch may be smaller).

    >>> updates_per_epoch(1000, 32), updates_per_epoch(48_000_000, 512), updates_per_epoch(10, 10)
    (32, 93750, 1)
    """
    N, B = _check_count("N", N), _check_count("batch_size", batch_size)
    return -(-N // B)  # exact integer ceiling, also for N in the billions


def minibatches(N: int, batch_size: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """The example indices of each mini-batch in one epoch.

    With a random generator ``rng`` the examples are shuffled first (a fresh permutation
    each call, which is what one epoch of SGD uses); without one they are taken in order.
    Every index appears exactly once; all batches have ``batch_size`` indices except
    possibly the last.

    >>> [b.tolist() for b in minibatches(5, 2)]
    [[0, 1], [2, 3], [4]]
    """
    N, B = _check_count("N", N), _check_count("batch_size", batch_size)
    order = np.arange(N) if rng is None else rng.permutation(N)
    return [order[start:start + B] for start in range(0, N, B)]


# ------------------------------------------------------------------ logistic regression
def logistic_data(N: int = 10_000, D: int = 20, seed: int = 0, feature_scales=None):
    r"""A synthetic binary-classification problem: ``(X, y, W_true, b_true)``.

    Features are standard normal and labels are drawn from the logistic model
    :math:`P(y = 1 \mid x) = \sigma(W_{\text{true}}^\top x + b_{\text{true}})`, with
    the entries of :math:`W_{\text{true}}` normal with standard deviation
    :math:`2/\sqrt D` and :math:`b_{\text{true}} = 0.5`.  The labels are random, so the
    classes overlap and the loss has a finite minimum.

    ``feature_scales`` (length ``D``) then multiplies each feature, as raw tabular data
    mixes features of very different sizes; this stretches the loss surface (the
    Hessian's condition number grows like the squared ratio of the largest to the
    smallest scale) without changing which labels are predictable.  ``W_true`` is
    returned for the unscaled features.
    """
    N, D = _check_count("N", N), _check_count("D", D)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((D, N))
    W_true = rng.standard_normal((D, 1)) * (2.0 / math.sqrt(D))
    b_true = 0.5
    p = 1.0 / (1.0 + np.exp(-(W_true.T @ X + b_true)))
    y = (rng.random((1, N)) < p).astype(float)
    if feature_scales is not None:
        scales = np.asarray(feature_scales, dtype=float).reshape(-1, 1)
        if scales.shape != (D, 1) or not np.all(scales > 0):
            raise ValueError(f"feature_scales must be {D} positive numbers, got shape {scales.shape}")
        X *= scales
    return X, y, W_true, b_true


def logistic_loss_and_grads(params: dict, X: np.ndarray, y: np.ndarray):
    r"""Mean binary cross-entropy of :math:`\sigma(W^\top x + b)` on ``(X, y)`` and its
    gradients.

    With :math:`z = W^\top X + b`, the loss per example is
    :math:`\log(1 + e^{z}) - y z` (computed without overflow) and
    :math:`\partial J/\partial z = (\sigma(z) - y)/n` for a batch of :math:`n` columns, so
    :math:`\partial J/\partial W = X (\sigma(z) - y)^\top / n`.
    """
    W, b = params["W"], params["b"]
    if X.shape[0] != W.shape[0]:
        raise ValueError(f"X has {X.shape[0]} features per example but W has shape {W.shape}")
    if y.shape != (1, X.shape[1]):
        raise ValueError(f"y must have shape (1, {X.shape[1]}), got {y.shape}")
    n = X.shape[1]
    # The products Wᵀ X and X errᵀ are written with einsum, which runs on one core.
    # A multi-threaded BLAS call is faster on an idle machine but can be ten times
    # slower on a busy one (its threads wait for each other), and this module is for
    # timing experiments, which need the same cost every time.
    z = np.einsum("d,dn->n", W[:, 0], X)[None, :] + b  # (1, n)
    loss = float(np.mean(np.logaddexp(0.0, z) - y * z))
    err = (0.5 * (1.0 + np.tanh(0.5 * z)) - y) / n  # σ(z) − y, without overflow, over n
    dW = np.einsum("dn,n->d", X, err[0])[:, None]
    return loss, {"dW": dW, "db": err.sum(axis=1, keepdims=True)}


def logistic_minimum(X: np.ndarray, y: np.ndarray, iterations: int = 50, tol: float = 1e-12):
    """The minimum of :func:`logistic_loss_and_grads` by Newton's method: ``(loss, params)``.

    Used as the floor :math:`J^*` when plotting :math:`J - J^*`.  Raises
    ``RuntimeError`` if the gradient has not vanished, or if it vanished only because
    the weights ran off to infinity (separable classes: the loss has an infimum of 0
    but no minimum, and the curvature there is zero).
    """
    D, N = X.shape
    A = np.vstack([X, np.ones((1, N))])  # (D + 1, N): the bias as a constant feature
    w = np.zeros((D + 1, 1))
    for _ in range(iterations):
        z = np.einsum("d,dn->n", w[:, 0], A)[None, :]
        s = 0.5 * (1.0 + np.tanh(0.5 * z))
        grad = A @ (s - y).T / N
        H = (A * (s * (1 - s))) @ A.T / N
        if np.linalg.norm(grad) < tol:
            break
        w -= np.linalg.solve(H, grad)
    else:
        raise RuntimeError("Newton's method did not converge (are the classes separable?)")
    if np.linalg.eigvalsh(H).min() < 1e-9 * max(1.0, np.abs(A).max() ** 2):
        raise RuntimeError("the loss has no minimum: the classes are separable")
    params = {"W": w[:-1].copy(), "b": w[-1:].copy()}
    return logistic_loss_and_grads(params, X, y)[0], params


# ------------------------------------------------------------------ the training loop
@dataclass(frozen=True)
class MinibatchRun:
    """What :func:`run_minibatch` recorded.

    ``updates[k]``, ``seconds[k]`` and ``losses[k]`` belong together: after
    ``updates[k]`` updates, which took ``seconds[k]`` of wall-clock time (updates only:
    the loss evaluations for the record are not timed), the loss on *all* the data was
    ``losses[k]``.  ``epoch_losses[e]`` is the full loss after ``e`` complete epochs
    (``epoch_losses[0]`` at the start) and ``epoch_seconds[e]`` the time epoch ``e + 1``
    took.
    """

    batch_size: int
    updates: np.ndarray
    seconds: np.ndarray
    losses: np.ndarray
    epoch_losses: np.ndarray
    epoch_seconds: np.ndarray

    @property
    def seconds_per_epoch(self) -> float:
        """Median wall-clock time of the complete epochs (``nan`` if there were none)."""
        return float(np.median(self.epoch_seconds)) if len(self.epoch_seconds) else math.nan


def _record_points(total: int, n_records: int) -> set[int]:
    """About ``n_records`` update counts, log-spaced from 1 to ``total``, plus 0."""
    pts = np.unique(np.round(np.geomspace(1, max(total, 1), n_records)).astype(int))
    return {0, *pts.tolist()}


def run_minibatch(loss_and_grads: Callable, params: dict, X: np.ndarray, y: np.ndarray, *,
                  batch_size: int, optimizer, epochs: int = 1, seed: int = 0,
                  n_records: int = 60, time_budget: float | None = None) -> MinibatchRun:
    r"""Train ``params`` (updated in place) by mini-batch gradient descent.

    Each epoch shuffles the examples (generator seeded with ``seed``), cuts them into
    :func:`minibatches` and makes one ``optimizer.update`` per batch with the gradient
    of ``loss_and_grads`` on that batch.  The full-data loss is recorded at about
    ``n_records`` log-spaced update counts and after every epoch.  Training stops after
    ``epochs`` epochs or, with ``time_budget`` (seconds of update time), as soon as the
    budget is used up.  ``batch_size >= N`` is batch gradient descent (one update per
    epoch, on the data in place).
    """
    epochs = _check_count("epochs", epochs)
    B = _check_count("batch_size", batch_size)
    N = X.shape[1]
    if y.shape != (1, N):
        raise ValueError(f"y must have shape (1, {N}), got {y.shape}")
    B = min(B, N)
    rng = np.random.default_rng(seed)
    record_at = _record_points(epochs * updates_per_epoch(N, B), n_records)

    def full_loss() -> float:
        return loss_and_grads(params, X, y)[0]

    updates, seconds, losses = [0], [0.0], [full_loss()]
    epoch_losses, epoch_seconds = [losses[0]], []
    k, clock = 0, 0.0
    for _ in range(epochs):
        epoch_start = clock
        # A full batch needs no shuffling and no copy: its gradient is the same sum.
        for idx in ([slice(None)] if B == N else minibatches(N, B, rng)):
            start = time.perf_counter()
            _, grads = loss_and_grads(params, X[:, idx], y[:, idx])
            optimizer.update(params, grads)
            clock += time.perf_counter() - start
            k += 1
            out_of_time = time_budget is not None and clock >= time_budget
            if k in record_at or out_of_time:
                updates.append(k)
                seconds.append(clock)
                losses.append(full_loss())
            if out_of_time:
                break
        else:
            epoch_seconds.append(clock - epoch_start)
            epoch_losses.append(losses[-1] if updates[-1] == k else full_loss())
            if updates[-1] != k:
                updates.append(k)
                seconds.append(clock)
                losses.append(epoch_losses[-1])
            continue
        break
    return MinibatchRun(B, np.array(updates), np.array(seconds), np.array(losses),
                        np.array(epoch_losses), np.array(epoch_seconds))


# ------------------------------------------------------------------ timing
def timings(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> np.ndarray:
    """Wall-clock seconds of ``repeats`` calls of ``fn()``, after ``warmup`` untimed calls.

    Report the median (or the minimum): single timings on a shared machine are noisy.
    """
    repeats = _check_count("repeats", repeats)
    if isinstance(warmup, bool) or not isinstance(warmup, numbers.Integral) or warmup < 0:
        raise ValueError(f"Invalid warmup: {warmup!r} (must be a non-negative integer)")
    for _ in range(warmup):
        fn()
    out = np.empty(repeats)
    for r in range(repeats):
        start = time.perf_counter()
        fn()
        out[r] = time.perf_counter() - start
    return out


# ------------------------------------------------------------------ learning-rate scaling
def scaled_lr(base_lr: float, base_batch: int, batch_size: int, rule: str = "linear") -> float:
    r"""The learning rate for ``batch_size`` given one that works at ``base_batch``.

    ``rule="linear"``: :math:`\alpha_B = \alpha_{\text{base}} \cdot B / B_{\text{base}}`
    (Goyal et al., 2017); ``rule="sqrt"``:
    :math:`\alpha_B = \alpha_{\text{base}} \sqrt{B / B_{\text{base}}}`.

    >>> scaled_lr(0.1, 256, 1024), scaled_lr(0.1, 256, 1024, rule="sqrt")
    (0.4, 0.2)
    """
    if isinstance(base_lr, bool) or not isinstance(base_lr, numbers.Real) or not 0 < base_lr < math.inf:
        raise ValueError(f"Invalid base_lr: {base_lr!r} (must be a positive number)")
    ratio = _check_count("batch_size", batch_size) / _check_count("base_batch", base_batch)
    if rule == "linear":
        return float(base_lr * ratio)
    if rule == "sqrt":
        return float(base_lr * math.sqrt(ratio))
    raise ValueError(f"Invalid rule: {rule!r} (must be 'linear' or 'sqrt')")


# ------------------------------------------------------------------ a 2-parameter problem
def line_fit_problem(N: int = 1000, seed: int = 0, noise: float = 0.5):
    r"""Points :math:`(x_i, y_i)` near the line :math:`y = 2x + 1`: ``(x, y)``, each ``(N,)``.

    Fitting :math:`\hat y = w x + b` by least squares has two parameters, so its loss
    can be drawn as contours.  The :math:`x_i` are centred on 1 (not 0), which tilts and
    stretches the contours: a slightly ill-conditioned bowl, as real losses are.
    """
    N = _check_count("N", N)
    rng = np.random.default_rng(seed)
    x = 1.0 + 0.7 * rng.standard_normal(N)
    y = 2.0 * x + 1.0 + noise * rng.standard_normal(N)
    return x, y


def _line_fit_moments(x, y):
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(f"x and y must be 1-D arrays of the same length >= 2, got {x.shape}, {y.shape}")
    return x, y


def line_fit_surface(x, y) -> Surface:
    r"""The loss :math:`J(w, b) = \frac1N \sum_i (w x_i + b - y_i)^2` as a
    :class:`optbook.surfaces.Surface` over :math:`\theta = (w, b)`, with its exact
    minimum (the least-squares line) and a window around it.
    """
    x, y = _line_fit_moments(x, y)
    # J is quadratic, so five averages determine it everywhere (and on whole grids).
    Sxx, Sx, Sxy, Sy, Syy = (x * x).mean(), x.mean(), (x * y).mean(), y.mean(), (y * y).mean()

    def f(w, b):
        w, b = np.broadcast_arrays(np.asarray(w, dtype=float), np.asarray(b, dtype=float))
        return w * w * Sxx + 2 * w * b * Sx + b * b - 2 * w * Sxy - 2 * b * Sy + Syy

    def grad(w, b):
        w, b = np.broadcast_arrays(np.asarray(w, dtype=float), np.asarray(b, dtype=float))
        return 2 * (w * Sxx + b * Sx - Sxy), 2 * (w * Sx + b - Sy)

    w_star, b_star = np.linalg.solve([[Sxx, Sx], [Sx, 1.0]], [Sxy, Sy])
    f_min = float(f(w_star, b_star))
    return Surface(
        name="line fit",
        formula=r"\frac{1}{N}\sum_i (w x_i + b - y_i)^2",
        f=f,
        grad=grad,
        minima=[(float(w_star), float(b_star))],
        f_min=f_min,
        window=((w_star - 2.5, w_star + 2.5), (b_star - 2.5, b_star + 2.5)),
        default_start=(float(w_star) - 2.0, float(b_star) + 2.0),
        description="Least-squares fit of a line: a tilted, stretched quadratic bowl.",
    )


def line_fit_path(x, y, *, batch_size: int, lr: float, steps: int, start=None,
                  seed: int = 0) -> Trajectory:
    r"""``steps`` updates of mini-batch SGD on :func:`line_fit_surface`, as a
    :class:`~optbook.surfaces.Trajectory` of :math:`(w, b)` with full-data losses.

    Batches are drawn epoch by epoch from a shuffled order (as in :func:`run_minibatch`);
    ``batch_size >= N`` is batch gradient descent.
    """
    x, y = _line_fit_moments(x, y)
    B, steps = _check_count("batch_size", batch_size), _check_count("steps", steps)
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not 0 < lr < math.inf:
        raise ValueError(f"Invalid lr: {lr!r} (must be a positive number)")
    surface = line_fit_surface(x, y)
    theta = np.array(surface.default_start if start is None else start, dtype=float)
    rng = np.random.default_rng(seed)
    N = len(x)
    batches: list[np.ndarray] = []
    points, losses = [theta.copy()], [surface.value(theta)]
    for t in range(1, steps + 1):
        if not batches:
            batches = minibatches(N, min(B, N), rng)[::-1]  # pop() from the end = in order
        idx = batches.pop()
        residual = theta[0] * x[idx] + theta[1] - y[idx]
        g = 2 * np.array([np.mean(residual * x[idx]), np.mean(residual)])
        theta -= lr * g
        loss = surface.value(theta)
        if not (math.isfinite(loss) and np.all(np.abs(theta) < 1e6)):
            return Trajectory(np.array(points), np.array(losses), diverged_at=t)
        points.append(theta.copy())
        losses.append(loss)
    return Trajectory(np.array(points), np.array(losses))


# ------------------------------------------------------------------ PyTorch timing
def mlp_seconds_per_example(batch_sizes, *, N: int = 8192, D: int = 64, hidden: int = 128,
                            device=None, repeats: int = 7, warmup: int = 1, seed: int = 0,
                            cpu_threads: int | None = None) -> dict:
    r"""Wall-clock training time per example of a small MLP, for each batch size.

    The model is ``Linear(D, hidden) → ReLU → Linear(hidden, hidden) → ReLU →
    Linear(hidden, 1)`` trained with ``torch.optim.SGD`` on random regression data that
    lives on ``device`` (default: :func:`optbook.book.device.pick_device`).  One timing is one
    epoch over the ``N`` examples in full batches only (the last, partial batch is
    dropped, like ``DataLoader(drop_last=True)``), divided by the number of examples it
    processed, so batch sizes that do not divide ``N`` are compared fairly.  Multiply by
    ``N`` for the time per epoch.

    Repeats are interleaved across batch sizes (round-robin), so a slow spell of the
    machine hits every batch size alike; on a GPU each timing waits for the device to
    finish.  ``cpu_threads`` sets PyTorch's number of CPU threads for the measurement
    (restored afterwards); one thread makes CPU timings much less sensitive to other
    programs running on the machine.  Returns ``{B: array of seconds per example}``, one
    entry per repeat, in the order they were taken.
    """
    import torch

    from optbook.book.device import pick_device

    device = pick_device() if device is None else torch.device(device)
    N = _check_count("N", N)
    sizes = [_check_count("batch size", B) for B in batch_sizes]
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"repeated batch sizes: {sizes}")
    if max(sizes) > N:
        raise ValueError(f"batch size {max(sizes)} is larger than N = {N}")
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(N, D, generator=gen).to(device)
    y = torch.randn(N, 1, generator=gen).to(device)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(D, hidden), torch.nn.ReLU(),
                                torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                                torch.nn.Linear(hidden, 1)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def epoch(B: int) -> float:
        steps = N // B
        sync()
        start = time.perf_counter()
        for i in range(0, steps * B, B):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(X[i:i + B]), y[i:i + B])
            loss.backward()
            opt.step()
        sync()
        return (time.perf_counter() - start) / (steps * B)

    repeats = _check_count("repeats", repeats)
    threads_before = torch.get_num_threads()
    if cpu_threads is not None:
        torch.set_num_threads(_check_count("cpu_threads", cpu_threads))
    try:
        for _ in range(warmup):
            for B in sizes:
                epoch(B)
        out = {B: [] for B in sizes}
        for _ in range(repeats):
            for B in sizes:
                out[B].append(epoch(B))
    finally:
        torch.set_num_threads(threads_before)
    return {B: np.array(t) for B, t in out.items()}
