r"""8.11 Beyond Adam: NAdam, RAdam, Adafactor, Lion, Muon and Schedule-Free AdamW.

Each optimizer is written the way the chapter writes the others
(:mod:`optbook.optimizers`): a small readable step function for one array, in the book's
notation (:math:`\theta` the parameters, :math:`g_t` the gradient, :math:`\alpha` the
learning rate, :math:`m, v` the first and second moments, :math:`\beta_1, \beta_2,
\varepsilon, \lambda`), and a class with the chapter's API, ``opt.update(params,
grads)``, that checks its inputs and keeps the state.  The step functions use only
operators that mean the same for NumPy arrays and torch tensors; the few operations
that are spelled differently (a mean over one axis, a sign, a clamp) go through the tiny
helpers at the top of this module.

Every class follows one reference implementation *as its code runs* (where a reference's
documentation says something else, the docstring says so), takes the reference's
defaults and names its hyperparameters as the reference does, in the chapter's spelling:
``betas=(β₁, β₂)`` becomes ``beta1, beta2`` and ``eps`` becomes ``epsilon``, as in
:class:`optbook.optimizers.Adam`.  ``tests/test_beyond_adam.py`` checks each one step for
step against its reference over random hyperparameters.

==========================  ======================================================
class                       reference
==========================  ======================================================
:class:`NAdam`              ``torch.optim.NAdam``
:class:`RAdam`              ``torch.optim.RAdam``
:class:`Adafactor`          ``torch.optim.Adafactor``
:class:`Lion`               ``lion_pytorch.Lion`` (package ``lion-pytorch``)
:class:`Muon`               ``torch.optim.Muon`` on 2-D arrays, ``torch.optim.AdamW``
                            on the others (defined in :mod:`optbook.muon`)
:class:`ScheduleFreeAdamW`  ``schedulefree.AdamWScheduleFree`` (package
                            ``schedulefree``)
==========================  ======================================================
"""

from __future__ import annotations

import math

import numpy as np

from optbook._checks import is_int, is_real
from optbook.muon import NS_COEFFICIENTS, Muon, muon_lr, muon_step, newton_schulz
from optbook.optimizers import Optimizer, _check_beta, _check_nonnegative, zeros_like

__all__ = ["NAdam", "RAdam", "Adafactor", "Lion", "Muon", "ScheduleFreeAdamW",
           "BEYOND_ADAM", "nadam_step", "radam_step", "radam_rectification",
           "adafactor_step", "lion_step", "newton_schulz", "muon_step",
           "schedule_free_adamw_step", "state_floats_per_parameter", "NS_COEFFICIENTS",
           "muon_lr"]


# ------------------------------------------- operations that NumPy and torch spell apart
def _torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _mean(x, axis):
    """The mean over one axis, keeping it (as length 1)."""
    return x.mean(dim=axis, keepdim=True) if _torch(x) else x.mean(axis=axis, keepdims=True)


def _sign(x):
    """-1, 0 or +1 per entry."""
    return x.sign() if _torch(x) else np.sign(x)


def _at_least(x, floor):
    """Every entry raised to at least ``floor``."""
    return x.clamp(min=floor) if _torch(x) else np.maximum(x, floor)


def _rms(x) -> float:
    """Root mean square of all entries, as a Python float."""
    return float((x * x).sum()) ** 0.5 / _size(x) ** 0.5


def _size(x) -> int:
    return x.numel() if _torch(x) else x.size


def _machine_epsilon(x) -> float:
    if _torch(x):
        import torch

        return torch.finfo(x.dtype).eps
    return float(np.finfo(x.dtype).eps)


# ------------------------------------------------------------------- argument checks
def _check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"Invalid {name}: {value!r} (must be True or False)")
    return value


def _check_int(name, value, low, high):
    if not (is_int(value) and low <= value <= high):
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer with "
                         f"{low} <= {name} <= {high})")
    return int(value)


def _weight_decay_hyperparameters(weight_decay, decoupled_weight_decay):
    return {"weight_decay": _check_nonnegative("weight_decay", weight_decay),
            "decoupled_weight_decay": _check_bool("decoupled_weight_decay",
                                                  decoupled_weight_decay)}


def _apply_weight_decay(theta, g, lr, weight_decay, decoupled):
    """torch's NAdam/RAdam: decoupled decay shrinks θ now; L2 decay returns g + λθ."""
    if weight_decay == 0:
        return g
    if decoupled:
        theta *= 1 - lr * weight_decay
        return g
    return g + weight_decay * theta


# ------------------------------------------------------------------------------- NAdam
def nadam_momentum(t, beta1, momentum_decay):
    r""":math:`\mu_t = \beta_1 (1 - \tfrac12\, 0.96^{t\psi})`, NAdam's momentum at step
    ``t`` (:math:`\psi` = ``momentum_decay``): it starts near :math:`\beta_1/2` and rises
    slowly toward :math:`\beta_1`."""
    return beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))


def nadam_step(theta, g, m, v, t, mu_product, lr, beta1, beta2, epsilon, momentum_decay,
               weight_decay=0.0, decoupled_weight_decay=False):
    r"""One NAdam step at step ``t`` (from 1), in place.  ``mu_product`` is
    :math:`\prod_{i<t}\mu_i` (1 at the first step); returns :math:`\prod_{i\le t}\mu_i`.

    Adam's step moves along :math:`\hat m_t`.  NAdam looks one step ahead, as Nesterov
    momentum does: its step mixes the *current* gradient and the average that the next
    step will use, each with its own bias correction."""
    g = _apply_weight_decay(theta, g, lr, weight_decay, decoupled_weight_decay)
    mu = nadam_momentum(t, beta1, momentum_decay)
    mu_next = nadam_momentum(t + 1, beta1, momentum_decay)
    mu_product = mu_product * mu
    m += (1 - beta1) * (g - m)            # m = β₁ m + (1 - β₁) g
    v *= beta2
    v += (1 - beta2) * g * g
    denominator = (v / (1 - beta2**t)) ** 0.5 + epsilon
    theta -= lr * (1 - mu) / (1 - mu_product) * g / denominator
    theta -= lr * mu_next / (1 - mu_product * mu_next) * m / denominator
    return mu_product


class NAdam(Optimizer):
    r"""NAdam (Dozat 2016): Adam with Nesterov's look-ahead.  Let :math:`\alpha` be
    ``lr``, :math:`\beta_1, \beta_2, \varepsilon, \lambda` the arguments ``beta1``,
    ``beta2``, ``epsilon``, ``weight_decay`` and :math:`\psi` ``momentum_decay``.

    .. math::

        \mu_t = \beta_1\bigl(1 - \tfrac12\,0.96^{t\psi}\bigr), \qquad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,

        \theta_t = \theta_{t-1} - \alpha\Bigl(
            \frac{1-\mu_t}{1-\prod_{i\le t}\mu_i}\, g_t
            + \frac{\mu_{t+1}}{1-\prod_{i\le t+1}\mu_i}\, m_t\Bigr)
            \Big/ \Bigl(\sqrt{v_t/(1-\beta_2^t)} + \varepsilon\Bigr)

    Reference: ``torch.optim.NAdam(params, lr=α, betas=(β₁, β₂), eps=ε,
    weight_decay=λ, momentum_decay=ψ, decoupled_weight_decay=...)``, same defaults
    (``lr=2e-3``, ``momentum_decay=4e-3``).  Torch updates :math:`m` with
    ``lerp_``, which is the chapter's average :math:`m + (1-\beta_1)(g - m)`.
    ``weight_decay`` is L2 (added to the gradient) unless ``decoupled_weight_decay``,
    which shrinks :math:`\theta` by :math:`1-\alpha\lambda` first, as AdamW does.
    Each key keeps its own ``t`` and :math:`\prod\mu_i` (torch's ``mu_product``, which
    torch stores in a tensor of the default dtype, float32 unless changed: that rounding
    alone moves torch's float64 steps by about :math:`10^{-8}` relative; here it is a
    Python float).
    """

    buffers = ("m", "v")

    def __init__(self, lr=2e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.0,
                 momentum_decay=4e-3, decoupled_weight_decay=False):
        super().__init__(lr, beta1=_check_beta("beta1", beta1),
                         beta2=_check_beta("beta2", beta2),
                         epsilon=_check_nonnegative("epsilon", epsilon),
                         **_weight_decay_hyperparameters(weight_decay, decoupled_weight_decay),
                         momentum_decay=_check_nonnegative("momentum_decay", momentum_decay))

    def init_state(self, theta):
        return {"t": 0, "mu_product": 1.0, **super().init_state(theta)}

    def apply(self, theta, g, state, lr):
        state["t"] += 1
        state["mu_product"] = nadam_step(
            theta, g, state["m"], state["v"], state["t"], state["mu_product"], lr,
            self.beta1, self.beta2, self.epsilon, self.momentum_decay,
            self.weight_decay, self.decoupled_weight_decay)


# ------------------------------------------------------------------------------- RAdam
def radam_rectification(t, beta2):
    r"""RAdam's :math:`(\rho_t, r_t)` at step ``t``: :math:`\rho_t` is how many recent
    squared gradients :math:`v_t` effectively averages (it tends to
    :math:`\rho_\infty = 2/(1-\beta_2) - 1`); :math:`r_t` scales the adaptive step down
    while that number is small, and is ``None`` while :math:`\rho_t \le 5`, when RAdam
    takes a plain momentum step instead."""
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * beta2**t / (1 - beta2**t)
    if rho_t <= 5.0:
        return rho_t, None
    r_t = ((rho_t - 4) * (rho_t - 2) * rho_inf
           / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
    return rho_t, r_t


def radam_step(theta, g, m, v, t, lr, beta1, beta2, epsilon, weight_decay=0.0,
               decoupled_weight_decay=False):
    r"""One RAdam step at step ``t`` (from 1), in place; returns :math:`r_t` (``None``
    on the steps that skip the adaptive denominator)."""
    g = _apply_weight_decay(theta, g, lr, weight_decay, decoupled_weight_decay)
    m += (1 - beta1) * (g - m)            # m = β₁ m + (1 - β₁) g
    v *= beta2
    v += (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t)
    rho_t, r_t = radam_rectification(t, beta2)
    if r_t is None:  # too few squared gradients in v to trust it: a momentum step
        theta -= lr * m_hat
    else:
        theta -= lr * m_hat * ((1 - beta2**t) ** 0.5 / (v**0.5 + epsilon)) * r_t
    return r_t


class RAdam(Optimizer):
    r"""RAdam (Liu et al. 2020): Adam whose adaptive step is *rectified* while
    :math:`v_t` still averages few squared gradients.  Let :math:`\alpha` be ``lr`` and
    :math:`\beta_1, \beta_2, \varepsilon, \lambda` the arguments ``beta1``, ``beta2``,
    ``epsilon``, ``weight_decay``.  With :math:`m_t, v_t, \hat m_t` as in Adam,

    .. math::

        \rho_\infty = \frac{2}{1-\beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t}, \qquad
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}
                         {(\rho_\infty-4)(\rho_\infty-2)\rho_t}},

        \theta_t = \begin{cases}
          \theta_{t-1} - \alpha\, r_t\, \hat m_t\,
             \dfrac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \varepsilon} & \rho_t > 5\\[1ex]
          \theta_{t-1} - \alpha\, \hat m_t & \text{otherwise.}\end{cases}

    With :math:`\beta_2 = 0.999` the first 5 steps are momentum steps and :math:`r_t`
    then climbs from about 0.02 to 1.

    Reference: ``torch.optim.RAdam(params, lr=α, betas=(β₁, β₂), eps=ε,
    weight_decay=λ, decoupled_weight_decay=...)``, same defaults.  As in torch's code,
    :math:`\varepsilon` is added to the *uncorrected* :math:`\sqrt{v_t}` (Adam adds it
    to :math:`\sqrt{\hat v_t}`); the two differ only while :math:`\sqrt{v_t}` is
    comparable to :math:`\varepsilon`.  Weight decay as in :class:`NAdam`.
    """

    buffers = ("m", "v")

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False):
        super().__init__(lr, beta1=_check_beta("beta1", beta1),
                         beta2=_check_beta("beta2", beta2),
                         epsilon=_check_nonnegative("epsilon", epsilon),
                         **_weight_decay_hyperparameters(weight_decay, decoupled_weight_decay))

    def init_state(self, theta):
        return {"t": 0, **super().init_state(theta)}

    def apply(self, theta, g, state, lr):
        state["t"] += 1
        radam_step(theta, g, state["m"], state["v"], state["t"], lr, self.beta1,
                   self.beta2, self.epsilon, self.weight_decay, self.decoupled_weight_decay)


# --------------------------------------------------------------------------- Adafactor
def adafactor_step(theta, g, state, t, lr, beta2_decay, epsilon1, epsilon2, d,
                   weight_decay):
    r"""One Adafactor step at step ``t`` (from 1), in place.  ``state`` holds
    ``v_row`` and ``v_col`` (for arrays of 2 or more dimensions: one number per row and
    one per column of the last two axes) or ``v`` (for vectors)."""
    beta2_complement = t**beta2_decay          # 1 - β₂,t: 1 at t = 1, then t^(-0.8)
    rho = min(lr, 1 / t**0.5)                  # relative step size
    step_size = max(epsilon2, _rms(theta)) * rho   # ... times the weights' own scale
    if epsilon1 is None:
        epsilon1 = _machine_epsilon(theta)
    if weight_decay != 0:
        theta *= 1 - lr * weight_decay
    if "v" in state:  # a vector: the full second moment, as in Adam
        v = state["v"]
        v += beta2_complement * (g * g - v)
        v_estimate = v * 1                     # a copy
    else:  # a matrix: v ≈ (row means) (column means) / (mean of all)
        v_row, v_col = state["v_row"], state["v_col"]
        v_row += beta2_complement * (_mean(g * g, -1) - v_row)
        v_col += beta2_complement * (_mean(g * g, -2) - v_col)
        v_estimate = v_row @ v_col / _at_least(_mean(v_row, -2), epsilon1)
    update = g / _at_least(v_estimate, epsilon1 * epsilon1) ** 0.5
    clip = max(1.0, _rms(update) / d)          # cap the update's RMS at d
    theta -= step_size / clip * update


class Adafactor(Optimizer):
    r"""Adafactor (Shazeer & Stern 2018): a second moment stored as a row and a column
    average, and steps relative to the weights' own size.  Let :math:`\alpha` be ``lr``,
    :math:`c` ``beta2_decay``, :math:`\varepsilon_1, \varepsilon_2` ``epsilon1``,
    ``epsilon2``, :math:`d` the clipping threshold ``d`` and :math:`\lambda`
    ``weight_decay``.  For a matrix gradient :math:`g_t \in \mathbb R^{n\times k}`:

    .. math::

        \hat\beta_{2,t} = 1 - t^{c}, \qquad
        R_t = \hat\beta_{2,t} R_{t-1} + (1-\hat\beta_{2,t})\,\mathrm{mean}_j\, g_t^2,
        \qquad
        C_t = \hat\beta_{2,t} C_{t-1} + (1-\hat\beta_{2,t})\,\mathrm{mean}_i\, g_t^2,

        \hat v_t = \frac{R_t C_t}{\max(\mathrm{mean}(R_t), \varepsilon_1)}, \qquad
        u_t = \frac{g_t}{\sqrt{\max(\hat v_t, \varepsilon_1^2)}}, \qquad
        \theta_t = \theta'_{t-1} - \frac{\max(\varepsilon_2, \mathrm{RMS}(\theta_{t-1}))
           \min(\alpha, 1/\sqrt t)}{\max(1, \mathrm{RMS}(u_t)/d)}\, u_t

    where :math:`\theta' = (1-\alpha\lambda)\theta` and :math:`R_t` (``v_row``) holds
    :math:`n` numbers, :math:`C_t` (``v_col``) :math:`k`: the state is
    :math:`n + k` numbers instead of Adam's :math:`2nk`.  Vectors keep a full
    :math:`v_t` (``v``).  Arrays with more than two axes are factored over the last two.
    There is no first moment: this is the configuration of torch's implementation,
    the paper's :math:`\beta_1 = 0`.

    Reference: ``torch.optim.Adafactor(params, lr=α, beta2_decay=c, eps=(ε₁, ε₂), d=d,
    weight_decay=λ)``, same defaults (``lr=1e-2``, ``beta2_decay=-0.8``,
    ``eps=(None, 1e-3)`` where ``None`` means the dtype's machine epsilon, ``d=1``).
    Torch updates :math:`R, C, v` with ``lerp_`` (the chapter's average), computes
    :math:`\mathrm{mean}\,g^2` as a squared norm divided by the length, and takes the
    step size from :math:`\theta` *before* weight decay, as here.
    """

    def __init__(self, lr=1e-2, beta2_decay=-0.8, epsilon1=None, epsilon2=1e-3, d=1.0,
                 weight_decay=0.0):
        if not (is_real(beta2_decay) and -math.inf < beta2_decay <= 0):
            raise ValueError(f"Invalid beta2_decay: {beta2_decay} (must satisfy "
                             "beta2_decay <= 0)")
        if epsilon1 is not None:
            epsilon1 = _check_nonnegative("epsilon1", epsilon1)
        if not (is_real(d) and 1 <= d < math.inf):
            raise ValueError(f"Invalid d: {d} (must satisfy 1 <= d < inf)")
        super().__init__(lr, beta2_decay=float(beta2_decay), epsilon1=epsilon1,
                         epsilon2=_check_nonnegative("epsilon2", epsilon2), d=float(d),
                         weight_decay=_check_nonnegative("weight_decay", weight_decay))

    def update(self, params, grads):
        # The factored state does not have θ's shape, so Optimizer's check of the
        # buffers cannot see it: check it here, before anything changes.
        for key, theta in params.items():
            state = self.state.get(key)
            if state is None or not hasattr(theta, "shape"):
                continue
            fresh = self.init_state(theta)
            if set(fresh) != set(state) or any(
                    tuple(fresh[name].shape) != tuple(state[name].shape)
                    for name in fresh if name != "t"):
                shapes = {n: tuple(b.shape) for n, b in state.items() if n != "t"}
                raise ValueError(f"state of parameter {key!r} does not fit it: "
                                 f"{shapes} vs parameter shape {tuple(theta.shape)}")
        return super().update(params, grads)

    def init_state(self, theta):
        if theta.ndim < 2:
            return {"t": 0, "v": zeros_like(theta)}
        n, k = theta.shape[-2:]
        row = zeros_like(theta[..., :1])               # shape (..., n, 1)
        col = zeros_like(theta[..., :1, :])            # shape (..., 1, k)
        assert row.shape[-2] == n and col.shape[-1] == k
        return {"t": 0, "v_row": row, "v_col": col}

    def apply(self, theta, g, state, lr):
        state["t"] += 1
        adafactor_step(theta, g, state, state["t"], lr, self.beta2_decay, self.epsilon1,
                       self.epsilon2, self.d, self.weight_decay)


# -------------------------------------------------------------------------------- Lion
def lion_step(theta, g, m, lr, beta1, beta2, weight_decay):
    r"""One Lion step, in place: the *sign* of an average of :math:`m` and :math:`g`,
    then :math:`m` is updated with its own, slower, :math:`\beta_2`."""
    theta *= 1 - lr * weight_decay
    theta -= lr * _sign(beta1 * m + (1 - beta1) * g)
    m *= beta2
    m += (1 - beta2) * g


class Lion(Optimizer):
    r"""Lion (Chen et al. 2023, found by a program search): every coordinate moves by
    exactly :math:`\pm\alpha`.  Let :math:`\alpha` be ``lr`` and :math:`\beta_1,
    \beta_2, \lambda` the arguments ``beta1``, ``beta2``, ``weight_decay``.

    .. math::

        \theta_t = (1-\alpha\lambda)\,\theta_{t-1}
            - \alpha\,\mathrm{sign}\bigl(\beta_1 m_{t-1} + (1-\beta_1) g_t\bigr), \qquad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t

    One buffer (:math:`m`) instead of Adam's two, and no :math:`\varepsilon`.  Because
    every step has the same size per coordinate, Lion wants an :math:`\alpha` 3–10
    times smaller than AdamW's (and a larger :math:`\lambda`), as its authors note.

    Reference: ``lion_pytorch.Lion(params, lr=α, betas=(β₁, β₂), weight_decay=λ)``
    (``lion-pytorch`` 0.2.5), same defaults (``lr=1e-4``, ``betas=(0.9, 0.99)``);
    its option ``decoupled_weight_decay`` (which divides λ by the initial lr) is not
    reproduced.  The sign of 0 is 0 in both.
    """

    buffers = ("m",)

    def __init__(self, lr=1e-4, beta1=0.9, beta2=0.99, weight_decay=0.0):
        super().__init__(lr, beta1=_check_beta("beta1", beta1),
                         beta2=_check_beta("beta2", beta2),
                         weight_decay=_check_nonnegative("weight_decay", weight_decay))

    def apply(self, theta, g, state, lr):
        lion_step(theta, g, state["m"], lr, self.beta1, self.beta2, self.weight_decay)


# ---------------------------------------------------------------- Schedule-Free AdamW
def schedule_free_adamw_step(y, g, z, v, t, lr, c, beta1, beta2, epsilon, weight_decay):
    r"""One Schedule-Free AdamW step at step ``t`` (from 1), in place.  ``y`` is where
    the gradient was taken, ``z`` the plain (AdamW-scaled) gradient-descent sequence,
    and ``c`` the weight of this step in the running average :math:`x` of the
    :math:`z`'s (:math:`1/t` without warm-up).  The parameters hold ``y`` while
    training; :math:`x = (y - (1-\beta_1) z)/\beta_1` is what to evaluate."""
    v *= beta2
    v += (1 - beta2) * g * g
    d = g / ((v / (1 - beta2**t)) ** 0.5 + epsilon)    # the AdamW direction
    if weight_decay != 0:
        d = d + weight_decay * y
    y += c * (z - y)
    y += lr * (beta1 * (1 - c) - 1) * d
    z -= lr * d


class ScheduleFreeAdamW(Optimizer):
    r"""Schedule-Free AdamW (Defazio et al. 2024): no learning-rate schedule; instead
    the weights to *use* are an average of the iterates.  Let :math:`\alpha` be ``lr``
    and :math:`\beta_1, \beta_2, \varepsilon, \lambda` the arguments ``beta1``,
    ``beta2``, ``epsilon``, ``weight_decay``.  Three sequences:

    .. math::

        z_t = z_{t-1} - \alpha_t\, d_t, \qquad
        x_t = (1 - c_t)\, x_{t-1} + c_t\, z_t, \qquad
        y_t = (1-\beta_1)\, z_t + \beta_1\, x_t,

    where :math:`d_t = g_t/(\sqrt{v_t/(1-\beta_2^t)} + \varepsilon) + \lambda y_{t-1}`
    with :math:`v_t` as in Adam and :math:`g_t` the gradient at :math:`y_{t-1}`;
    :math:`c_t = w_t/\sum_{i\le t} w_i` with :math:`w_t = t^r \max_{i\le t}
    \alpha_i^{p}` (``r``, ``weight_lr_power`` = :math:`p`), which is :math:`1/t`
    without warm-up: :math:`x_t` is the plain average of :math:`z_1, \dots, z_t`.
    :math:`\alpha_t` rises linearly over ``warmup_steps`` steps, then stays.

    While training, ``params`` holds :math:`y` (the gradients must be taken there);
    call ``opt.eval(params)`` to switch them to :math:`x` before evaluating or saving,
    and ``opt.train(params)`` to switch back.  The state is :math:`z` and :math:`v`.

    Reference: ``schedulefree.AdamWScheduleFree(params, lr=α, betas=(β₁, β₂), eps=ε,
    weight_decay=λ, warmup_steps=..., r=..., weight_lr_power=...)`` (``schedulefree``
    1.4.1), same defaults (``lr=0.0025``, ``betas=(0.9, 0.999)``).  Differences: the
    reference starts in eval mode and needs ``.train()`` before the first step; this
    class starts in train mode.  Its ``weight_decay`` is evaluated at :math:`y`, as here.
    """

    buffers = ("z", "v")

    def __init__(self, lr=0.0025, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.0,
                 warmup_steps=0, r=0.0, weight_lr_power=2.0):
        super().__init__(lr, beta1=_check_beta("beta1", beta1),
                         beta2=_check_beta("beta2", beta2),
                         epsilon=_check_nonnegative("epsilon", epsilon),
                         weight_decay=_check_nonnegative("weight_decay", weight_decay),
                         warmup_steps=_check_int("warmup_steps", warmup_steps, 0, 2**62),
                         r=_check_nonnegative("r", r),
                         weight_lr_power=_check_nonnegative("weight_lr_power",
                                                            weight_lr_power))
        if self.beta1 == 0:
            raise ValueError("Invalid beta1: 0.0 (Schedule-Free needs beta1 > 0 to "
                             "recover x from y)")
        self.train_mode, self.weight_sum, self.lr_max = True, 0.0, -1.0
        self._c = None

    def init_state(self, theta):
        return {"t": 0, "z": theta * 1, "v": zeros_like(theta)}   # z starts at θ

    def update(self, params, grads):
        if not self.train_mode:
            raise ValueError("ScheduleFreeAdamW is in eval mode (params hold x): call "
                             "opt.train(params) before update")
        self._check(params, grads)   # all checks before any state changes
        k, base = self.t, self.current_lr()
        lr = base * min(1.0, (k + 1) / self.warmup_steps) if k < self.warmup_steps else base
        lr_max = max(lr, self.lr_max)
        weight = (k + 1) ** self.r * lr_max ** self.weight_lr_power
        weight_sum = self.weight_sum + weight
        self._c = (weight / weight_sum if weight_sum != 0 else 0.0, lr)
        super().update(params, grads)
        self.lr_max, self.weight_sum = lr_max, weight_sum
        return params

    def apply(self, theta, g, state, lr):
        c, lr = self._c
        state["t"] += 1
        schedule_free_adamw_step(theta, g, state["z"], state["v"], state["t"], lr, c,
                                 self.beta1, self.beta2, self.epsilon, self.weight_decay)

    def eval(self, params):
        r"""Switch ``params`` from :math:`y` to :math:`x = y + (1 - 1/\beta_1)(z - y)`."""
        if self.train_mode:
            self._move(params, 1 - 1 / self.beta1)
            self.train_mode = False
        return params

    def train(self, params):
        r"""Switch ``params`` from :math:`x` back to :math:`y = x + (1-\beta_1)(z - x)`."""
        if not self.train_mode:
            self._move(params, 1 - self.beta1)
            self.train_mode = True
        return params

    def _move(self, params, weight):
        for key, theta in params.items():
            if key in self.state:
                theta += weight * (self.state[key]["z"] - theta)

    def state_dict(self):
        saved = super().state_dict()
        saved["schedule_free"] = {"train_mode": self.train_mode,
                                  "weight_sum": self.weight_sum, "lr_max": self.lr_max}
        return saved

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        extra = state_dict["schedule_free"]
        self.train_mode = bool(extra["train_mode"])
        self.weight_sum, self.lr_max = float(extra["weight_sum"]), float(extra["lr_max"])


BEYOND_ADAM = {"NAdam": NAdam, "RAdam": RAdam, "Adafactor": Adafactor, "Lion": Lion,
               "Muon": Muon, "ScheduleFreeAdamW": ScheduleFreeAdamW}


def state_floats_per_parameter(opt, params) -> float:
    """Numbers the optimizer keeps per trained number (after at least one update):
    every array in its state, counted and divided by the parameters' count."""
    missing = [key for key in params if key not in opt.state]
    if missing:
        raise ValueError(f"no state yet for {missing}: call opt.update(params, grads) first")
    kept = sum(_size(value) for key in params for value in opt.state[key].values()
               if hasattr(value, "shape"))
    return kept / sum(_size(theta) for theta in params.values())
