r"""8.3 Exponentially weighted averages — the primitive under momentum, RMSprop and Adam.

Let :math:`\theta_1, \theta_2, \dots` be a sequence (daily temperatures, or a gradient's
history) and :math:`\beta \in [0, 1)` the argument ``beta``.  The average starts at zero
and each new value takes a share :math:`1-\beta`:

.. math::

    V_0 = 0, \qquad V_t = \beta V_{t-1} + (1-\beta)\,\theta_t .

Unrolled, :math:`V_t = (1-\beta)\sum_{k=1}^{t} \beta^{t-k}\theta_k`: the weights fall
off geometrically and sum to :math:`1-\beta^t`, not 1.  That shortfall is the bias
toward the zero start; dividing it out gives the bias-corrected average

.. math::

    \hat V_t = \frac{V_t}{1-\beta^t}.

In a long-running average the newest :math:`n` values carry the share
:math:`1-\beta^n` of the weight.  For the window :math:`n = 1/(1-\beta)` that share is
about 63--65 % when :math:`\beta \ge 0.9` and tends to :math:`1 - 1/e \approx 63\%` as
:math:`\beta \to 1`, which is why :math:`1/(1-\beta)` is read as "the number of values
averaged over"; for small :math:`\beta` it is larger (75 % at :math:`\beta = 0.5`).
"""

from __future__ import annotations

import math

import numpy as np


def _check_beta(beta: float) -> float:
    beta = float(beta)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"Invalid beta: {beta} (must satisfy 0 <= beta < 1)")
    return beta


def ewa(values, beta: float, bias_correction: bool = False) -> np.ndarray:
    r"""Return :math:`V_1, \dots, V_T` (or :math:`\hat V_t` with ``bias_correction``).

    ``values`` is a 1-D sequence :math:`\theta_1, \dots, \theta_T`; the result has the
    same length.

    >>> ewa([35, 33, 36], beta=0.9).round(3).tolist()
    [3.5, 6.45, 9.405]
    >>> ewa([35, 33, 36], beta=0.9, bias_correction=True).round(2).tolist()
    [35.0, 33.95, 34.7]
    """
    beta = _check_beta(beta)
    theta = np.asarray(values, dtype=float)
    if theta.ndim != 1:
        raise ValueError(f"values must be a 1-D sequence, got shape {theta.shape}")
    V = np.empty_like(theta)
    v = 0.0
    for t, x in enumerate(theta):
        v = beta * v + (1.0 - beta) * x
        V[t] = v
    if bias_correction:
        t = np.arange(1, len(theta) + 1)
        V /= 1.0 - beta**t
    return V


def effective_window(beta: float) -> float:
    r"""The rule of thumb :math:`1/(1-\beta)`: how many recent values :math:`V_t` averages."""
    return 1.0 / (1.0 - _check_beta(beta))


def weights(beta: float, t: int) -> np.ndarray:
    r"""The weight :math:`(1-\beta)\beta^{t-k}` that :math:`V_t` gives to
    :math:`\theta_k`, for :math:`k = 1, \dots, t` (oldest first)."""
    beta = _check_beta(beta)
    k = np.arange(1, t + 1)
    return (1.0 - beta) * beta ** (t - k)


def window_length(beta: float) -> int:
    r"""The window as a whole number of values, :math:`\lceil 1/(1-\beta) \rceil`.

    ``1/(1 - 0.9)`` is 10.000000000000002 in floating point; a window within rounding
    of a whole number counts as that number.

    >>> [window_length(b) for b in (0.0, 0.5, 0.9, 0.98, 0.999, 0.7)]
    [1, 2, 10, 50, 1000, 4]
    """
    n = effective_window(beta)
    return math.ceil(n - 1e-9 * n)


def newest_share(beta: float, n: int | None = None) -> float:
    r"""The share of the weight that the newest ``n`` values carry in a long-running
    average: :math:`\sum_{j=0}^{n-1} (1-\beta)\beta^{j} = 1 - \beta^{n}`.

    ``n`` defaults to the window, :func:`window_length`.  (Early on, when the weights
    sum to :math:`1-\beta^t` rather than 1, divide by that sum.)

    >>> round(newest_share(0.5), 4), round(newest_share(0.9), 4)
    (0.75, 0.6513)
    """
    beta = _check_beta(beta)
    n = window_length(beta) if n is None else int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return 1.0 - beta**n
