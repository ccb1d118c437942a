r"""Small PyTorch training routines for the warm-up experiment of 8.7 (and its tests).

The 8.7 page measures what a linear warm-up does for large-batch training at a high
learning rate.  The pieces it needs are kept here so that the page shows the idea (its
own short training loop, asserted equal to :func:`train_with_schedule`) and the tests
can check the page's claims over several seeds:

* :func:`nonlinear_regression`: a synthetic regression problem (no downloads);
* :func:`relu_mlp`: a ReLU network with He initialisation, the usual choice for ReLU;
* :func:`train_with_schedule`: plain mini-batch SGD whose learning rate follows a
  schedule (any callable ``t -> alpha_t``, e.g. from :mod:`optbook.schedules`), stopped
  as soon as the loss blows up (:class:`TrainRun`);
* :func:`top_hessian_eigenvalue`: the sharpness :math:`\lambda_{\max}` of the loss,
  by power iteration on Hessian-vector products.

Plain gradient descent on a quadratic with curvature :math:`\lambda` is stable only for
:math:`\alpha < 2/\lambda`; :math:`\lambda_{\max}` is therefore the number that says how
large a step the network tolerates *where it currently is*.

Everything runs on the CPU in float32 and is seeded, so a run is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np


def _torch():
    import torch

    return torch


def nonlinear_regression(seed: int = 0, N: int = 8192, D: int = 10, noise: float = 0.1):
    r"""``(X, y)``: ``N`` examples with ``D`` standard-normal features and a smooth target.

    .. math::

        y = \sin(2\, x^\top w) + \tfrac12\, x_1 x_2 + \text{noise}, \qquad
        w \sim \mathcal N(0, I/D),

    so the best possible mean squared error is about ``noise**2`` (0.01 by default) and
    predicting the mean gives about 0.75.  ``X`` is ``(N, D)`` and ``y`` is ``(N, 1)``,
    both float32 tensors (PyTorch's layout: one row per example).
    """
    torch = _torch()
    if N < 1 or D < 2:
        raise ValueError(f"Invalid N, D: {N}, {D} (need N >= 1 and D >= 2)")
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, D, generator=g)
    w = torch.randn(D, 1, generator=g) / math.sqrt(D)
    y = torch.sin(2 * X @ w) + 0.5 * X[:, :1] * X[:, 1:2] + noise * torch.randn(N, 1, generator=g)
    return X, y


def relu_mlp(sizes=(10, 64, 64, 64, 64, 64, 64, 1), seed: int = 0):
    r"""``nn.Sequential`` of ``Linear`` layers with ReLU between them, He-initialised.

    ``sizes`` lists the widths from input to output, so the default is six hidden layers
    of 64.  Every weight matrix is drawn from :math:`\mathcal N(0, 2/\text{fan\_in})`
    (``torch.nn.init.kaiming_normal_``, the initialisation of He et al. for ReLU
    networks) and every bias is zero.  (PyTorch's *default* for ``nn.Linear`` is a
    smaller uniform initialisation, with variance :math:`1/(3\,\text{fan\_in})`.)
    """
    torch = _torch()
    nn = torch.nn
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"Invalid sizes: {sizes!r} (need at least two positive widths)")
    g = torch.Generator().manual_seed(seed)
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(fan_out, fan_in, generator=g) * math.sqrt(2.0 / fan_in))
            lin.bias.zero_()
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@dataclass
class TrainRun:
    """What :func:`train_with_schedule` returns.

    ``losses[k]`` is the mini-batch loss of update ``first_step + k`` (measured before
    that update), ``lrs[k]`` the learning rate that update used, and ``diverged_at`` the
    0-based index of the first update whose loss was non-finite or above the blow-up
    threshold (``None`` if the run finished); the run stops there.
    """

    losses: np.ndarray
    lrs: np.ndarray
    diverged_at: int | None = None
    first_step: int = 0


def train_with_schedule(model, X, y, schedule: Callable[[int], float], steps: int,
                        batch_size: int, generator, *, first_step: int = 0,
                        blowup: float = 1e4) -> TrainRun:
    r"""Plain mini-batch SGD on the mean squared error, :math:`\alpha` from ``schedule``.

    Update :math:`k` (0-based, from ``first_step``) draws ``batch_size`` examples at
    random with replacement using ``generator`` (a ``torch.Generator``), sets the learning
    rate to ``schedule(k)`` and takes one ``torch.optim.SGD`` step.  Passing the same
    generator and ``first_step = steps_done`` continues a run exactly where it stopped
    (plain SGD keeps no state).  The run stops at the first loss that is not finite or
    exceeds ``blowup``.
    """
    torch = _torch()
    if steps < 0 or batch_size < 1:
        raise ValueError(f"Invalid steps, batch_size: {steps}, {batch_size}")
    opt = torch.optim.SGD(model.parameters(), lr=float(schedule(first_step)))
    losses, lrs, diverged = [], [], None
    for k in range(first_step, first_step + steps):
        alpha = float(schedule(k))
        opt.param_groups[0]["lr"] = alpha
        idx = torch.randint(len(X), (batch_size,), generator=generator)
        loss = torch.nn.functional.mse_loss(model(X[idx]), y[idx])
        value = loss.item()
        losses.append(value)
        lrs.append(alpha)
        if not math.isfinite(value) or value > blowup:
            diverged = k
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return TrainRun(np.array(losses), np.array(lrs), diverged, first_step)


def top_hessian_eigenvalue(model, X, y, iters: int = 50, seed: int = 0) -> float:
    r"""The largest eigenvalue :math:`\lambda_{\max}` of the Hessian of the MSE on ``(X, y)``.

    Power iteration: start from a random direction :math:`u`, replace it by
    :math:`Hu/\lVert Hu\rVert` ``iters`` times, and return the Rayleigh quotient
    :math:`u^\top H u`.  :math:`Hu` is a Hessian-vector product (one extra backward pass
    through the gradient), so the Hessian itself is never formed.  Power iteration finds
    the eigenvalue of largest *magnitude*; near a minimum and early in training that is the
    largest positive one, the "sharpness" that limits a stable step to :math:`2/\lambda_{\max}`.
    The model's parameters are not changed.
    """
    torch = _torch()
    params = [p for p in model.parameters() if p.requires_grad]
    loss = torch.nn.functional.mse_loss(model(X), y)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    g = torch.Generator().manual_seed(seed)
    u = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]
    lam = 0.0
    for _ in range(iters):
        norm = torch.sqrt(sum((a * a).sum() for a in u))
        u = [a / norm for a in u]
        Hu = torch.autograd.grad(grads, params, grad_outputs=u, retain_graph=True)
        lam = float(sum((a * b).sum() for a, b in zip(u, Hu)))
        u = [h.detach() for h in Hu]
    return lam
