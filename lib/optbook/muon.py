r"""8.11 Beyond Adam, continued: Muon, momentum orthogonalised by Newton–Schulz.

Split from :mod:`optbook.beyond_adam` (which re-exports everything here) to keep each
module short; the conventions are that module's: a readable step function in the
book's notation, written with operators that mean the same for NumPy and torch, and a
class with the chapter's ``update(params, grads)`` API.
"""

from __future__ import annotations

import math

from optbook._checks import is_int, is_real
from optbook.optimizers import (Optimizer, _check_beta, _check_lr, _check_nonnegative,
                                adamw_step, zeros_like)

__all__ = ["Muon", "NS_COEFFICIENTS", "newton_schulz", "muon_lr", "muon_step"]


def _check_flag(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"Invalid {name}: {value!r} (must be True or False)")
    return value


def _lr_at(lr, k) -> float:
    """``adamw_lr`` (a number or a schedule) at update ``k``."""
    if not callable(lr):
        return lr
    value = lr(k)
    if not (is_real(value) and 0 <= value < math.inf):
        raise ValueError(f"adamw_lr schedule returned {value} at k={k} "
                         "(must be a finite number >= 0)")
    return float(value)


# -------------------------------------------------------------------------------- Muon
#: The quintic Newton–Schulz coefficients of Jordan et al. (torch's defaults).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(G, steps=5, coefficients=NS_COEFFICIENTS, epsilon=1e-7):
    r"""An approximately orthogonal matrix with :math:`G`'s singular vectors: for
    :math:`G = U\Sigma V^T` about :math:`U V^T` (singular values pushed into roughly
    0.5–1.2 rather than to exactly 1, for singular values within a factor of about 30
    of the largest; much smaller ones grow, but do not get there in 5 iterations).  Each iteration applies the odd polynomial
    :math:`aX + b(XX^T)X + c(XX^T)^2X` to the singular values of :math:`X`, after
    :math:`X = G/\|G\|_F` put them all in :math:`[0, 1]`."""
    a, b, c = coefficients
    tall = G.shape[0] > G.shape[1]
    X = G.T if tall else G                  # work with the wide orientation: X Xᵀ is small
    norm = float((X * X).sum()) ** 0.5
    X = X / max(norm, epsilon)
    for _ in range(steps):
        A = X @ X.T
        B = b * A + c * (A @ A)
        X = a * X + B @ X
    return X.T if tall else X


def muon_lr(lr, shape, adjust_lr_fn=None):
    """The learning rate Muon uses for a matrix of this shape (torch's ``_adjust_lr``)."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * max(1, rows / cols) ** 0.5
    return lr * 0.2 * max(rows, cols) ** 0.5          # "match_rms_adamw"


def muon_step(theta, g, m, lr, momentum, nesterov, coefficients, ns_steps, epsilon,
              weight_decay, adjust_lr_fn=None):
    r"""One Muon step on a matrix, in place: average the gradients, orthogonalise the
    average with :func:`newton_schulz`, step along the result."""
    m += (1 - momentum) * (g - m)              # m = β m + (1 - β) g
    direction = g + momentum * (m - g) if nesterov else m   # β m + (1 - β) g
    O = newton_schulz(direction, ns_steps, coefficients, epsilon)
    theta *= 1 - lr * weight_decay
    theta -= muon_lr(lr, theta.shape, adjust_lr_fn) * O


class Muon(Optimizer):
    r"""Muon (Jordan et al. 2024): momentum whose update is *orthogonalised*, for the
    2-D weight matrices of a network; every other array (biases, and any array that is
    not 2-D) is updated by AdamW.  Let :math:`\alpha` be ``lr``, :math:`\beta` the
    argument ``momentum``, :math:`\lambda` ``weight_decay``, :math:`(a, b, c)`
    ``ns_coefficients``, :math:`k` ``ns_steps``.  For a matrix :math:`\theta \in \mathbb
    R^{A\times B}`:

    .. math::

        m_t = \beta m_{t-1} + (1-\beta) g_t, \qquad
        u_t = \begin{cases}\beta m_t + (1-\beta) g_t & \text{nesterov} \\
                           m_t & \text{otherwise}\end{cases}, \qquad
        O_t = \mathrm{NS}_k^{(a,b,c)}(u_t),

        \theta_t = (1-\alpha\lambda)\,\theta_{t-1}
                   - \alpha \sqrt{\max(1, A/B)}\; O_t

    (with ``adjust_lr_fn="match_rms_adamw"`` the factor is :math:`0.2\sqrt{\max(A,B)}`).
    :math:`\mathrm{NS}` is :func:`newton_schulz`: :math:`k` iterations of a quintic
    polynomial that maps :math:`u = U\Sigma V^T` to about :math:`UV^T`, so the update
    moves every direction of the matrix by a similar amount, however unequal the
    gradient's singular values are.

    Reference: ``torch.optim.Muon(params, lr=α, weight_decay=λ, momentum=β,
    nesterov=..., ns_coefficients=(a, b, c), eps=ε, ns_steps=k, adjust_lr_fn=...)``
    for the matrices, same defaults (``lr=1e-3``, ``weight_decay=0.1``,
    ``momentum=0.95``, ``nesterov=True``, ``ns_steps=5``, ``eps=1e-7``); and
    ``torch.optim.AdamW(params, lr=adamw_lr, betas=(adamw_beta1, adamw_beta2),
    eps=adamw_epsilon, weight_decay=adamw_weight_decay)`` for the rest, with the
    learning rate and weight decay of torch's Muon documentation example (3e-4, 0.01).
    Torch's *documentation* writes the buffer as :math:`B_t = \mu B_{t-1} + g_t` and
    the Nesterov update as :math:`g_t + \mu B_t`; its *code* averages with
    ``buf.lerp_(grad, 1 - momentum)`` and ``grad.lerp(buf, momentum)``, which are the
    formulas above.  We follow the code.  (By induction :math:`B_t = m_t/(1-\beta)`, and
    :math:`g_t + \beta B_t = (\beta m_t + (1-\beta) g_t)/(1-\beta)`: the documented and
    the coded direction differ by the factor :math:`1/(1-\beta)`, which Newton–Schulz's
    first line, the division by the norm, removes.  The steps are the same.)
    Torch runs Newton–Schulz in bfloat16; this class in the arrays' own dtype.
    """

    buffers = ("m", "v")

    def __init__(self, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=NS_COEFFICIENTS, epsilon=1e-7, ns_steps=5,
                 adjust_lr_fn=None, adamw_lr=3e-4, adamw_beta1=0.9, adamw_beta2=0.999,
                 adamw_epsilon=1e-8, adamw_weight_decay=0.01):
        if not (isinstance(ns_coefficients, (tuple, list)) and len(ns_coefficients) == 3
                and all(is_real(x) and math.isfinite(x) for x in ns_coefficients)):
            raise ValueError(f"Invalid ns_coefficients: {ns_coefficients!r} (must be "
                             "three finite numbers (a, b, c))")
        if not (is_int(ns_steps) and 1 <= ns_steps <= 99):
            raise ValueError(f"Invalid ns_steps: {ns_steps!r} (must be an integer with "
                             "1 <= ns_steps <= 99)")
        if adjust_lr_fn not in (None, "original", "match_rms_adamw"):
            raise ValueError(f"Invalid adjust_lr_fn: {adjust_lr_fn!r} (must be None, "
                             "'original' or 'match_rms_adamw')")
        super().__init__(
            lr, weight_decay=_check_nonnegative("weight_decay", weight_decay),
            momentum=_check_beta("momentum", momentum),
            nesterov=_check_flag("nesterov", nesterov),
            ns_coefficients=tuple(float(x) for x in ns_coefficients),
            epsilon=_check_nonnegative("epsilon", epsilon),
            ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn,
            adamw_lr=_check_lr(adamw_lr), adamw_beta1=_check_beta("adamw_beta1", adamw_beta1),
            adamw_beta2=_check_beta("adamw_beta2", adamw_beta2),
            adamw_epsilon=_check_nonnegative("adamw_epsilon", adamw_epsilon),
            adamw_weight_decay=_check_nonnegative("adamw_weight_decay", adamw_weight_decay))

    def init_state(self, theta):
        if theta.ndim == 2:
            return {"m": zeros_like(theta)}
        return {"t": 0, "m": zeros_like(theta), "v": zeros_like(theta)}

    def apply(self, theta, g, state, lr):
        if "v" not in state:
            muon_step(theta, g, state["m"], lr, self.momentum, self.nesterov,
                      self.ns_coefficients, self.ns_steps, self.epsilon,
                      self.weight_decay, self.adjust_lr_fn)
            return
        state["t"] += 1
        adamw_step(theta, g, state["m"], state["v"], state["t"],
                   _lr_at(self.adamw_lr, self.t), self.adamw_beta1, self.adamw_beta2,
                   self.adamw_epsilon, self.adamw_weight_decay)
