r"""8.12 Choosing settings in practice: the learning-rate range test and the noise scale.

Two measurements that practitioners make *before* a long run, each a few hundred
gradient evaluations:

**The learning-rate range test** (Smith, 2017, section 3.3). Train once, briefly, while
the learning rate grows exponentially from ``lr_min`` to ``lr_max``,

.. math::

    \alpha_k = \alpha_{\min}\,\Big(\frac{\alpha_{\max}}{\alpha_{\min}}\Big)^{k/(K-1)},
    \qquad k = 0, \dots, K-1,

and record the mini-batch loss at every step (:func:`range_test_lrs`,
:func:`lr_range_test`).  Plotted against :math:`\alpha` on a log axis the smoothed loss
is flat while :math:`\alpha` is too small to matter, falls once the steps make
progress, reaches a minimum and then shoots up when the steps become unstable.  The
suggested learning rate (:func:`suggest_lr`) is the one **ten times below the minimum of
the smoothed loss**: the minimum is where the run is already at the edge of stability
(the loss stops falling because the steps are too large, the 2/λ bound of 8.7), and the
loss at each :math:`\alpha` of the sweep is not the loss a run *at* that rate would reach
(every rate gets one step, after all the smaller ones), so the minimum is an upper bound
and not a choice.  A factor of ten stays clear of that edge.  The other common reading,
the rate where the smoothed loss falls fastest per decade of :math:`\alpha`
(``rule="steepest"``), is offered for comparison.

**The gradient noise scale** (McCandlish, Kaplan, Amodei et al., 2018). A mini-batch
gradient :math:`G_B` of batch size :math:`B` (examples drawn independently) satisfies

.. math::

    \mathbb E\,|G_B|^2 = |G|^2 + \frac{\operatorname{tr}\Sigma}{B},

with :math:`G` the full gradient and :math:`\Sigma` the per-example gradients'
covariance.  Measuring :math:`|G_B|^2` at two batch sizes :math:`B_s < B_b` gives
unbiased estimates of both terms (their appendix A.1)

.. math::

    |\mathcal G|^2 = \frac{B_b |G_{B_b}|^2 - B_s |G_{B_s}|^2}{B_b - B_s},\qquad
    \mathcal S = \frac{|G_{B_s}|^2 - |G_{B_b}|^2}{1/B_s - 1/B_b},

averaged over many batches *before* the ratio is taken (the ratio of averages, not the
average of ratios), and the simple noise scale
:math:`B_{\text{simple}} = \mathcal S / |\mathcal G|^2` (:func:`gradient_noise_scale`).
It predicts the *critical batch size*: below it a :math:`k` times larger batch with a
:math:`k` times larger step needs about :math:`k` times fewer steps (linear scaling
works); far above it the extra examples are wasted.  Their model of the trade-off,
:math:`S/S_{\min} = 1 + B_{\text{noise}}/B`, is :func:`predicted_steps`.
:func:`linear_regression_noise_scale` gives the exact value for linear regression with
Gaussian inputs, against which the estimator is tested.

All gradient code is PyTorch; ``loss_fn(model, batch)`` returns the mean loss of a
batch ``(X, y)`` (the convention of :func:`optbook.training.ranking.click_loss`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ._checks import check_int, is_real

__all__ = ["range_test_lrs", "RangeTest", "lr_range_test", "suggest_lr", "flat_gradient",
           "gradient_sq_norms", "NoiseScale", "noise_scale_from_norms",
           "gradient_noise_scale", "linear_regression_noise_scale", "predicted_steps"]


def _positive(name: str, value) -> float:
    if not is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"Invalid {name}: {value!r} (must be a positive finite number)")
    return float(value)


# ----------------------------------------------------------- the learning-rate range test
def range_test_lrs(lr_min: float, lr_max: float, steps: int) -> np.ndarray:
    r"""The range test's learning rates: ``steps`` values growing geometrically from
    ``lr_min`` to ``lr_max`` (both included), :math:`\alpha_k = \alpha_{\min}
    (\alpha_{\max}/\alpha_{\min})^{k/(K-1)}`.

    >>> range_test_lrs(1e-3, 1e-1, 3).tolist()
    [0.001, 0.01, 0.1]
    """
    lr_min, lr_max = _positive("lr_min", lr_min), _positive("lr_max", lr_max)
    check_int("steps", steps, 2)
    if lr_max <= lr_min:
        raise ValueError(f"Invalid lr_max: {lr_max!r} (must exceed lr_min = {lr_min!r})")
    k = np.arange(steps)
    return lr_min * (lr_max / lr_min) ** (k / (steps - 1))


@dataclass
class RangeTest:
    """What :func:`lr_range_test` returns.

    ``lrs[k]`` is the learning rate of step ``k``, ``losses[k]`` the mini-batch loss
    measured before that step and ``smoothed[k]`` its bias-corrected exponentially
    weighted average (8.3); ``stopped_at`` is the step at which the smoothed loss first
    exceeded ``stop_factor`` times its minimum so far (the run ends there), or ``None``.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    stopped_at: int | None

    def suggestion(self, rule: str = "min/10") -> float:
        """The suggested learning rate (:func:`suggest_lr`)."""
        return suggest_lr(self.lrs, self.smoothed, rule)


def lr_range_test(model, loss_fn: Callable, batches: Iterable, optimizer, *,
                  lr_min: float = 1e-5, lr_max: float = 10.0, steps: int = 100,
                  beta: float = 0.9, stop_factor: float = 4.0) -> RangeTest:
    r"""Run the range test: one short training run, the learning rate growing from
    ``lr_min`` to ``lr_max`` over ``steps`` steps (:func:`range_test_lrs`).

    ``optimizer`` is a ``torch.optim`` optimizer over ``model``'s parameters (its ``lr``
    is overwritten at every step), ``batches`` yields at least ``steps`` batches and
    ``loss_fn(model, batch)`` gives a batch's mean loss.  The loss is smoothed with a
    bias-corrected average of weight ``beta``; the run stops early once the smoothed loss
    exceeds ``stop_factor`` times its lowest value (or is not finite).  The model is
    trained in place: start every test (and the real run) from a fresh model.
    """
    if not is_real(beta) or not 0.0 <= beta < 1.0:
        raise ValueError(f"Invalid beta: {beta!r} (must satisfy 0 <= beta < 1)")
    stop_factor = _positive("stop_factor", stop_factor)
    lrs = range_test_lrs(lr_min, lr_max, steps)
    losses, smoothed, avg, best, stopped = [], [], 0.0, math.inf, None
    batches = iter(batches)
    for k, lr in enumerate(lrs):
        try:
            batch = next(batches)
        except StopIteration:
            raise ValueError(f"batches ran out after {k} of steps={steps} batches") from None
        for group in optimizer.param_groups:
            group["lr"] = float(lr)
        loss = loss_fn(model, batch)
        value = float(loss.item())
        avg = beta * avg + (1 - beta) * value
        smooth = avg / (1 - beta ** (k + 1))
        losses.append(value)
        smoothed.append(smooth)
        if not math.isfinite(smooth) or smooth > stop_factor * best:
            stopped = k
            break
        best = min(best, smooth)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    n = len(losses)
    return RangeTest(lrs[:n], np.array(losses), np.array(smoothed), stopped)


def suggest_lr(lrs, smoothed, rule: str = "min/10") -> float:
    r"""The learning rate a range test suggests.

    ``rule="min/10"``: a tenth of the rate at which the smoothed loss is lowest (the
    module docstring says why).  ``rule="steepest"``: the rate at which the smoothed loss
    falls fastest against :math:`\log\alpha`, searched only *below* the minimum.

    >>> lrs = np.array([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    >>> suggest_lr(lrs, [2.0, 1.9, 1.0, 0.5, 3.0])
    0.01
    >>> suggest_lr(lrs, [2.0, 1.9, 1.0, 0.5, 3.0], rule="steepest")
    0.001
    """
    lrs, smoothed = np.asarray(lrs, float), np.asarray(smoothed, float)
    if lrs.ndim != 1 or lrs.shape != smoothed.shape or len(lrs) < 2:
        raise ValueError(f"lrs and smoothed must be 1-D of the same length >= 2, got "
                         f"shapes {lrs.shape} and {smoothed.shape}")
    finite = np.isfinite(smoothed)
    if not finite.any():
        raise ValueError("the smoothed loss has no finite value")
    i_min = int(np.nanargmin(np.where(finite, smoothed, np.nan)))
    if rule == "min/10":
        return float(lrs[i_min] / 10)
    if rule == "steepest":
        if i_min == 0:
            raise ValueError("the smoothed loss is lowest at the first rate: no descent to "
                             "measure (start the test at a smaller lr_min)")
        slope = np.diff(smoothed[: i_min + 1]) / np.diff(np.log10(lrs[: i_min + 1]))
        return float(lrs[int(np.argmin(slope))])
    raise ValueError(f"Invalid rule: {rule!r} (choose 'min/10' or 'steepest')")


# ------------------------------------------------------------- the gradient noise scale
def flat_gradient(model, loss_fn: Callable, batch):
    """The gradient of ``loss_fn(model, batch)`` with respect to every trainable
    parameter, as one 1-D float64 tensor (the parameters' ``.grad`` are left untouched)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss_fn(model, batch), params)
    return torch.cat([g.reshape(-1) for g in grads]).double()


def gradient_sq_norms(model, loss_fn: Callable, data, batch_size: int, n_batches: int,
                      generator) -> np.ndarray:
    r""":math:`|G_B|^2` for ``n_batches`` mini-batches of ``batch_size`` examples drawn
    from ``data = (X, y, ...)`` independently and with replacement (``generator``: a
    ``torch.Generator``), so that :math:`\mathbb E|G_B|^2 = |G|^2 + \operatorname{tr}
    \Sigma/B` holds exactly for the data set's own :math:`G` and :math:`\Sigma`."""
    import torch

    check_int("batch_size", batch_size, 1)
    check_int("n_batches", n_batches, 1)
    n = len(data[0])
    out = np.empty(n_batches)
    for i in range(n_batches):
        idx = torch.randint(n, (batch_size,), generator=generator)
        g = flat_gradient(model, loss_fn, tuple(t[idx] for t in data))
        out[i] = float(g @ g)
    return out


@dataclass(frozen=True)
class NoiseScale:
    r"""The estimates :math:`|\mathcal G|^2` (``g2``), :math:`\mathcal S` (``trace``, the
    trace of the per-example gradient covariance) and :math:`B_{\text{simple}} =
    \mathcal S/|\mathcal G|^2` (``b_simple``)."""

    g2: float
    trace: float

    @property
    def b_simple(self) -> float:
        return self.trace / self.g2 if self.g2 > 0 else math.inf


def noise_scale_from_norms(sq_small, b_small: int, sq_big, b_big: int) -> NoiseScale:
    r"""McCandlish et al.'s two-batch-size estimator (module docstring) from measured
    :math:`|G_{B_s}|^2` values ``sq_small`` and :math:`|G_{B_b}|^2` values ``sq_big``;
    each set is averaged first.

    >>> ns = noise_scale_from_norms([1 + 100 / 10], 10, [1 + 100 / 1000], 1000)
    >>> round(ns.g2, 9), round(ns.trace, 9), round(ns.b_simple, 6)
    (1.0, 100.0, 100.0)
    """
    check_int("b_small", b_small, 1)
    check_int("b_big", b_big, 1)
    if b_big <= b_small:
        raise ValueError(f"Invalid b_big: {b_big!r} (must exceed b_small = {b_small!r})")
    small, big = float(np.mean(sq_small)), float(np.mean(sq_big))
    g2 = (b_big * big - b_small * small) / (b_big - b_small)
    trace = (small - big) / (1 / b_small - 1 / b_big)
    return NoiseScale(g2, trace)


def gradient_noise_scale(model, loss_fn: Callable, data, *, b_small: int, b_big: int,
                         n_batches: int = 20, seed: int = 0) -> NoiseScale:
    """:func:`noise_scale_from_norms` from ``n_batches`` gradients at each batch size,
    taken at the model's current parameters (:func:`gradient_sq_norms`)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    small = gradient_sq_norms(model, loss_fn, data, b_small, n_batches, g)
    big = gradient_sq_norms(model, loss_fn, data, b_big, n_batches, g)
    return noise_scale_from_norms(small, b_small, big, b_big)


def linear_regression_noise_scale(w, w_star, sigma: float) -> NoiseScale:
    r"""The exact :math:`|G|^2`, :math:`\operatorname{tr}\Sigma` and
    :math:`B_{\text{simple}}` of the squared error :math:`(x^\top w - y)^2` with
    :math:`x \sim \mathcal N(0, I_D)` and :math:`y = x^\top w_\star + \sigma\varepsilon`,
    :math:`\varepsilon \sim \mathcal N(0, 1)`, at the parameters ``w``.

    With :math:`d = w - w_\star` the per-example gradient is :math:`g = 2x(x^\top d -
    \sigma\varepsilon)`, so :math:`G = 2d` and (Isserlis: :math:`\mathbb E[xx^\top
    (x^\top d)^2] = |d|^2 I + 2dd^\top`) :math:`\operatorname{tr}\Sigma =
    4\big((D+1)|d|^2 + D\sigma^2\big)`.
    """
    w, w_star = np.ravel(np.asarray(w, float)), np.ravel(np.asarray(w_star, float))
    if w.shape != w_star.shape:
        raise ValueError(f"w and w_star differ in shape: {w.shape} and {w_star.shape}")
    if not is_real(sigma) or sigma < 0:
        raise ValueError(f"Invalid sigma: {sigma!r} (must be a number >= 0)")
    D, d2 = len(w), float(np.sum((w - w_star) ** 2))
    return NoiseScale(4 * d2, 4 * ((D + 1) * d2 + D * sigma ** 2))


def predicted_steps(batch_sizes, b_noise: float, s_min: float) -> np.ndarray:
    r"""McCandlish et al.'s steps-to-target model :math:`S(B) = S_{\min}(1 +
    B_{\text{noise}}/B)`: about :math:`S_{\min} B_{\text{noise}}/B` (perfect linear
    scaling) for :math:`B \ll B_{\text{noise}}`, and no fewer than :math:`S_{\min}`
    however large the batch.

    >>> predicted_steps([10, 100, 1000], b_noise=100, s_min=50).round(6).tolist()
    [550.0, 100.0, 55.0]
    """
    b = np.asarray(batch_sizes, float)
    if np.any(b <= 0):
        raise ValueError(f"Invalid batch_sizes: {batch_sizes!r} (must be positive)")
    return _positive("s_min", s_min) * (1 + _positive("b_noise", b_noise) / b)
