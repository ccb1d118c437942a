r"""8.7 Learning-rate schedules — the learning rate :math:`\alpha` as a function of time.

A fixed :math:`\alpha` is a compromise: large enough to make progress early, small
enough not to bounce around the minimum late.  A *schedule* removes the compromise by
letting :math:`\alpha` change during training.  In this module a schedule is simply a
callable: give it the epoch (or step) index :math:`t = 0, 1, 2, \dots` and it returns
:math:`\alpha_t`.  Every class also has the method ``get_lr(epoch)`` (the chapter's
name for the same thing), and :func:`lr_curve` evaluates a schedule over a whole run:

>>> s = StepDecaySchedule(initial_lr=0.01)
>>> s(0), s.get_lr(30)
(0.01, 0.001)
>>> lr_curve(s, 3).tolist()
[0.01, 0.01, 0.01]

**Counting from 0.**  Here :math:`t` is the index the schedule is called with, and the
first epoch is :math:`t = 0`, as in PyTorch's ``scheduler.last_epoch``.  The notation
table's step counter counts updates from 1 (it is the :math:`t` in Adam's
:math:`1-\beta_1^t`), so when a schedule is called once per update, update number
:math:`t` uses ``schedule(t - 1)``.

The schedules, in the order the chapter teaches them (each class documents its symbols):

.. math::

    \text{step decay:}\quad & \alpha_t = \alpha_0\, d^{\lfloor t/s \rfloor} \\
    \text{exponential decay:}\quad & \alpha_t = \alpha_0\, k^t \\
    \text{cosine annealing:}\quad & \alpha_t = \alpha_{\min}
        + \tfrac12(\alpha_{\max}-\alpha_{\min})\bigl(1+\cos(\pi t/T)\bigr) \\
    \text{warm-up + cosine:}\quad & \alpha_t = \alpha_{\max}\,(t+1)/W \ \text{ for } t < W,
        \text{ then cosine over the remaining } T-W \\
    \text{warm restarts (SGDR):}\quad & \text{cosine over cycles of length }
        T_0,\ T_0 T_{\rm mult},\ \dots \\
    \text{one-cycle:}\quad & \text{up from } \alpha_{\max}/\text{div\_factor}
        \text{ to } \alpha_{\max}, \text{ then down to far below the start}

Each class names its counterpart in :mod:`torch.optim.lr_scheduler` and says exactly
where the two differ; ``tests/test_schedules.py`` drives the torch schedulers over whole
runs and checks the two agree to a relative :math:`10^{-12}`.

**Torch's schedulers are stateful, ours are not.**  A torch scheduler is told "one more
epoch" by ``scheduler.step()`` and most of them compute the new rate from the old one
(torch calls this the *chainable* form), so a torch run can only go forwards.  A schedule
here is a pure function of :math:`t`: ``schedule(57)`` needs no history, which is what a
plot or a slider wants.  Where torch's chainable form carries rounding errors along
(``CosineAnnealingLR``), the two drift apart slowly with the number of epochs; over the
tests' runs (up to 1000 epochs) the drift stays below :math:`10^{-14}` relative.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._checks import check_int as _check_int, is_int as _is_int

#: Anything that maps an epoch (or step) index to a learning rate is a schedule.
Schedule = Callable[[int], float]


# --------------------------------------------------------------------------------------
# Validation helpers: every error names the argument and the value it got.
# --------------------------------------------------------------------------------------


def _check_epoch(epoch) -> int:
    if not _is_int(epoch) or epoch < 0:
        raise ValueError(f"Invalid epoch: {epoch!r} (must be a non-negative integer)")
    return int(epoch)


def _check_positive(name: str, value) -> None:
    if not isinstance(value, numbers.Real) or not (0.0 < value < math.inf):
        raise ValueError(f"Invalid {name}: {value!r} (must be a positive number)")


def _check_lr_min(lr_min, lr_max) -> None:
    if not isinstance(lr_min, numbers.Real) or not (0.0 <= lr_min <= lr_max):
        raise ValueError(
            f"Invalid lr_min: {lr_min!r} (must satisfy 0 <= lr_min <= lr_max = {lr_max!r})"
        )


def _check_fraction(name: str, value) -> None:
    if not isinstance(value, numbers.Real) or not (0.0 < value <= 1.0):
        raise ValueError(f"Invalid {name}: {value!r} (must satisfy 0 < {name} <= 1)")


def lr_curve(schedule: Schedule, n: int) -> np.ndarray:
    r"""The learning rates :math:`\alpha_0, \dots, \alpha_{n-1}` as an array, for plots.

    >>> lr_curve(ExponentialDecaySchedule(1.0, decay_rate=0.5), 4).tolist()
    [1.0, 0.5, 0.25, 0.125]
    """
    _check_int("n", n, minimum=0)
    return np.array([schedule(t) for t in range(n)], dtype=float)


# --------------------------------------------------------------------------------------
# Decay by a factor: step and exponential
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepDecaySchedule:
    r"""Step decay: multiply the learning rate by ``drop_rate`` every ``step_size`` epochs.

    .. math::

        \alpha_t = \alpha_0 \, d^{\lfloor t/s \rfloor}

    where :math:`\alpha_0` is ``initial_lr``, :math:`d` is ``drop_rate`` and :math:`s`
    is ``step_size``.  With the defaults the rate falls tenfold at epochs 30, 60, 90:

    >>> s = StepDecaySchedule(initial_lr=0.01)
    >>> [s(t) for t in (0, 29, 30, 59)]
    [0.01, 0.01, 0.001, 0.001]

    **Torch:** ``StepLR(optimizer, step_size=s, gamma=d)`` with ``lr=initial_lr``.  Torch
    multiplies the current rate by :math:`d` at each drop instead of raising :math:`d`
    to a power, so after :math:`j` drops the two differ by rounding only (:math:`j`
    roundings against one).
    """

    initial_lr: float
    drop_rate: float = 0.1
    step_size: int = 30

    def __post_init__(self):
        _check_positive("initial_lr", self.initial_lr)
        _check_fraction("drop_rate", self.drop_rate)
        _check_int("step_size", self.step_size, minimum=1)

    def get_lr(self, epoch: int) -> float:
        """The learning rate for epoch ``epoch`` (0-based)."""
        t = _check_epoch(epoch)
        return self.initial_lr * self.drop_rate ** (t // self.step_size)

    __call__ = get_lr


@dataclass(frozen=True)
class ExponentialDecaySchedule:
    r"""Exponential decay: multiply the learning rate by ``decay_rate`` every epoch.

    .. math::

        \alpha_t = \alpha_0 \, k^t

    where :math:`\alpha_0` is ``initial_lr`` and :math:`k` is ``decay_rate``.  The rate
    halves every :math:`\ln 2 / \ln(1/k)` epochs, about 17 for the default 0.96:

    >>> s = ExponentialDecaySchedule(initial_lr=0.1)
    >>> round(s(17) / s(0), 3)
    0.5

    **Torch:** ``ExponentialLR(optimizer, gamma=k)`` with ``lr=initial_lr``.  Torch
    multiplies by :math:`k` once per epoch; :math:`\alpha_0 k^t` here is one power, so
    the two differ by accumulated rounding only (about :math:`t` units in the last place).
    """

    initial_lr: float
    decay_rate: float = 0.96

    def __post_init__(self):
        _check_positive("initial_lr", self.initial_lr)
        _check_fraction("decay_rate", self.decay_rate)

    def get_lr(self, epoch: int) -> float:
        """The learning rate for epoch ``epoch`` (0-based)."""
        t = _check_epoch(epoch)
        return self.initial_lr * self.decay_rate**t

    __call__ = get_lr


# --------------------------------------------------------------------------------------
# Cosine family
# --------------------------------------------------------------------------------------


def _cosine(lr_min: float, lr_max: float, angle: float) -> float:
    r"""The cosine curve, :math:`\alpha_{\min} + \frac12(\alpha_{\max}-\alpha_{\min})(1+\cos\phi)`.

    Callers pass the angle :math:`\phi` as ``math.pi * t / T``, the order in which torch
    computes it, so that the closed forms agree with torch's to the last bit, not just to
    rounding.
    """
    return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + math.cos(angle))


@dataclass(frozen=True)
class CosineAnnealingSchedule:
    r"""Cosine annealing: half a cosine wave from ``lr_max`` down to ``lr_min``.

    .. math::

        \alpha_t = \alpha_{\min} + \tfrac12(\alpha_{\max}-\alpha_{\min})
                   \Bigl(1 + \cos\frac{\pi t}{T}\Bigr)

    where :math:`\alpha_{\max}` is ``lr_max``, :math:`\alpha_{\min}` is ``lr_min`` and
    :math:`T` is ``total_epochs``.  The rate starts at :math:`\alpha_{\max}`, decays slowly
    at first, fastest at :math:`t = T/2` (where it is the mean of the two) and slowly
    again as it reaches :math:`\alpha_{\min}` at :math:`t = T`:

    >>> s = CosineAnnealingSchedule(lr_max=0.1, lr_min=0.0, total_epochs=100)
    >>> s(0), round(s(50), 12), s(100)
    (0.1, 0.05, 0.0)

    **Past** :math:`T` the formula is followed as written, so the rate *rises again*:
    :math:`\cos` is periodic and :math:`\alpha_{2T} = \alpha_{\max}`.  Torch's
    ``CosineAnnealingLR`` does the same (in its step-by-step form and in its closed form),
    so this is kept, but it is rarely what one wants: set ``total_epochs`` to the length
    of the run, or use :class:`CosineWarmRestartsSchedule` for deliberate restarts.

    >>> round(s(150), 12), s(200)
    (0.05, 0.1)

    **Torch:** ``CosineAnnealingLR(optimizer, T_max=T, eta_min=lr_min)`` with
    ``lr=lr_max``.  The defaults differ: torch's ``eta_min`` is 0, the chapter's
    ``lr_min`` is :math:`10^{-6}`.  Torch's closed form (``_get_closed_form_lr``) is the
    formula above and agrees with it bit for bit; its ``step()`` uses a recursive form,
    :math:`\alpha_t = \alpha_{\min} + (\alpha_{t-1}-\alpha_{\min})
    \frac{1+\cos(\pi t/T)}{1+\cos(\pi (t-1)/T)}`, which equals the formula in exact
    arithmetic but accumulates one rounding per epoch (and has a special case at
    :math:`t = T+1`, where the ratio would divide by zero).
    """

    lr_max: float
    lr_min: float = 1e-6
    total_epochs: int = 100

    def __post_init__(self):
        _check_positive("lr_max", self.lr_max)
        _check_lr_min(self.lr_min, self.lr_max)
        _check_int("total_epochs", self.total_epochs, minimum=1)

    def get_lr(self, epoch: int) -> float:
        """The learning rate for epoch ``epoch`` (0-based)."""
        t = _check_epoch(epoch)
        return _cosine(self.lr_min, self.lr_max, math.pi * t / self.total_epochs)

    __call__ = get_lr


@dataclass(frozen=True)
class WarmupCosineSchedule:
    r"""Linear warm-up for ``warmup_epochs`` epochs, then cosine annealing.

    .. math::

        \alpha_t = \begin{cases}
            \alpha_{\max}\,\dfrac{t+1}{W} & t < W \\[1ex]
            \alpha_{\min} + \tfrac12(\alpha_{\max}-\alpha_{\min})(1 + \cos \pi p),
            \quad p = \dfrac{t-W}{T-W} & t \ge W
        \end{cases}

    where :math:`W` is ``warmup_epochs``, :math:`T` is ``total_epochs``,
    :math:`\alpha_{\max}` is ``lr_max`` and :math:`\alpha_{\min}` is ``lr_min``.  The
    warm-up climbs in :math:`W` equal steps of :math:`\alpha_{\max}/W`, *starting* at
    :math:`\alpha_{\max}/W` (not 0) and reaching :math:`\alpha_{\max}` at :math:`t = W-1`;
    the cosine then starts at :math:`\alpha_{\max}` again at :math:`t = W`, so the peak
    is used for two epochs.  :math:`W = 0` is plain :class:`CosineAnnealingSchedule`.

    >>> s = WarmupCosineSchedule(lr_max=0.1, warmup_epochs=5, total_epochs=100, lr_min=0.0)
    >>> [round(s(t), 12) for t in range(6)]
    [0.02, 0.04, 0.06, 0.08, 0.1, 0.1]
    >>> s(100)
    0.0

    Past :math:`T` the cosine is followed as written and rises again
    (:math:`p > 1`), as in :class:`CosineAnnealingSchedule`.

    **Torch:** the same schedule, to rounding, is

    .. code-block:: python

        SequentialLR(optimizer, milestones=[W], schedulers=[
            LinearLR(optimizer, start_factor=1 / W, end_factor=1.0, total_iters=W - 1),
            CosineAnnealingLR(optimizer, T_max=T - W, eta_min=lr_min)])

    with ``lr=lr_max``.  The usual torch recipe is different:
    ``LinearLR(start_factor=ε, total_iters=W)`` starts at :math:`\varepsilon\alpha_{\max}`
    (torch forbids :math:`\varepsilon = 0`) and reaches :math:`\alpha_{\max}` at
    :math:`t = W`, i.e. its warm-up is the chapter's delayed by one epoch
    (:math:`\alpha^{\rm torch}_{t+1} \approx \alpha_t` for :math:`\varepsilon \to 0`), with
    the peak used once.
    """

    lr_max: float
    warmup_epochs: int = 5
    total_epochs: int = 100
    lr_min: float = 1e-6

    def __post_init__(self):
        _check_positive("lr_max", self.lr_max)
        _check_lr_min(self.lr_min, self.lr_max)
        _check_int("total_epochs", self.total_epochs, minimum=1)
        W, T = self.warmup_epochs, self.total_epochs
        if not _is_int(W) or not 0 <= W < T:
            raise ValueError(
                f"Invalid warmup_epochs: {W!r} "
                f"(must satisfy 0 <= warmup_epochs < total_epochs = {T})"
            )

    def get_lr(self, epoch: int) -> float:
        """The learning rate for epoch ``epoch`` (0-based)."""
        t = _check_epoch(epoch)
        W, T = self.warmup_epochs, self.total_epochs
        if t < W:
            return self.lr_max * (t + 1) / W
        return _cosine(self.lr_min, self.lr_max, math.pi * (t - W) / (T - W))

    __call__ = get_lr


@dataclass(frozen=True)
class CosineWarmRestartsSchedule:
    r"""SGDR: cosine annealing that restarts at ``lr_max``, with cycles growing by ``T_mult``.

    Loshchilov & Hutter, *SGDR: Stochastic Gradient Descent with Warm Restarts*, ICLR
    2017.  Cycle :math:`i = 0, 1, \dots` lasts :math:`T_i = T_0\,T_{\rm mult}^{\,i}` epochs;
    with :math:`T_{\rm cur}` the number of epochs since the last restart,

    .. math::

        \alpha_t = \alpha_{\min} + \tfrac12(\alpha_{\max}-\alpha_{\min})
                   \Bigl(1 + \cos\frac{\pi T_{\rm cur}}{T_i}\Bigr)

    where :math:`\alpha_{\max}` is ``lr_max``, :math:`\alpha_{\min}` is ``lr_min`` and
    :math:`T_0`, :math:`T_{\rm mult}` are ``T_0`` and ``T_mult``.  Restarts happen at
    :math:`t = T_0, 2T_0, 3T_0, \dots` for :math:`T_{\rm mult} = 1` and at
    :math:`t = T_0(T_{\rm mult}^i - 1)/(T_{\rm mult} - 1)` in general.  Unlike plain cosine
    annealing, each cycle ends one epoch *before* it would reach :math:`\alpha_{\min}`:

    >>> s = CosineWarmRestartsSchedule(lr_max=0.1, T_0=2, T_mult=2)
    >>> [round(s(t), 4) for t in range(8)]
    [0.1, 0.05, 0.1, 0.0854, 0.05, 0.0146, 0.1, 0.0962]

    **Torch:** ``CosineAnnealingWarmRestarts(optimizer, T_0, T_mult, eta_min=lr_min)``
    with ``lr=lr_max``, stepped with ``scheduler.step()`` once per epoch; both compute the
    same closed formula and agree bit for bit.  Torch also accepts fractional epochs
    (``scheduler.step(epoch + i / iters)``, for restarts within an epoch); here the index
    is an integer, so for per-batch schedules count batches instead.  Torch's explicit
    ``step(epoch)`` finds the cycle with a floating-point logarithm, which can land one
    cycle early exactly at a restart (e.g. ``T_0=1, T_mult=3`` at epoch 121, where
    ``math.log(243, 3)`` is ``4.999…``); this class counts cycles with integers, which is
    what torch's plain ``step()`` does.
    """

    lr_max: float
    T_0: int = 10
    T_mult: int = 1
    lr_min: float = 0.0

    def __post_init__(self):
        _check_positive("lr_max", self.lr_max)
        _check_lr_min(self.lr_min, self.lr_max)
        _check_int("T_0", self.T_0, minimum=1)
        _check_int("T_mult", self.T_mult, minimum=1)

    def cycle(self, epoch: int) -> tuple[int, int]:
        r"""``(T_cur, T_i)``: epochs since the last restart, and the current cycle's length."""
        t = _check_epoch(epoch)
        if self.T_mult == 1:
            return t % self.T_0, self.T_0
        T_cur, T_i = t, self.T_0
        while T_cur >= T_i:  # walk through the finished cycles
            T_cur -= T_i
            T_i *= self.T_mult
        return T_cur, T_i

    def get_lr(self, epoch: int) -> float:
        """The learning rate for epoch ``epoch`` (0-based)."""
        T_cur, T_i = self.cycle(epoch)
        return _cosine(self.lr_min, self.lr_max, math.pi * T_cur / T_i)

    __call__ = get_lr


# --------------------------------------------------------------------------------------
# One-cycle
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OneCycleSchedule:
    r"""One-cycle policy (Smith & Topin 2017, "super-convergence"), as torch's ``OneCycleLR``.

    The rate climbs from :math:`\alpha_{\rm init} = \alpha_{\max}/\text{div\_factor}` to
    :math:`\alpha_{\max}` over the first ``pct_start`` of the ``total_steps`` steps, then
    anneals to :math:`\alpha_{\rm final} = \alpha_{\rm init}/\text{final\_div\_factor}`,
    far below where it started.  It is meant to be stepped once per *batch*.

    Precisely, with :math:`N` = ``total_steps`` and :math:`p` = ``pct_start``, the run is
    cut into phases that end at (fractional) steps

    .. math::

        e_1 = pN - 1, \qquad e_{\rm last} = N - 1
        \qquad(\text{three-phase: } e_1 = pN - 1,\ e_2 = 2pN - 2,\ e_3 = N - 1).

    Step :math:`t` belongs to the first phase with :math:`t \le e_j` (or to the last).  A
    phase running from :math:`e_{j-1}` (:math:`e_0 = 0`) to :math:`e_j` goes from rate
    :math:`a` to rate :math:`b` as :math:`q = (t - e_{j-1})/(e_j - e_{j-1})` goes from
    0 to 1, by

    .. math::

        \text{cos:}\quad \alpha_t = b + \tfrac12(a - b)(1 + \cos \pi q), \qquad
        \text{linear:}\quad \alpha_t = a + (b - a)\,q .

    Two phases (the default, after fastai): :math:`\alpha_{\rm init} \to \alpha_{\max}
    \to \alpha_{\rm final}`.  Three phases: :math:`\alpha_{\rm init} \to \alpha_{\max}
    \to \alpha_{\rm init} \to \alpha_{\rm final}`, the second phase mirroring the first.
    Here :math:`\alpha_{\max}` is ``lr_max``, and the strategy is ``anneal_strategy``.

    **Which is which.**  The defaults (two half-cosines, ``div_factor=25``,
    ``final_div_factor=1e4``, so from :math:`\alpha_{\max}/25` up and down to
    :math:`\alpha_{\max}/(25\cdot 10^4)`) are torch's, which follow fastai.  Smith and
    Topin's policy is a *linear* cycle between a lower and an upper bound found by a
    learning-rate range test, up and down over equal lengths, followed by annealing to
    orders of magnitude below the lower bound: ``three_phase=True,
    anneal_strategy='linear'`` with ``div_factor`` and ``final_div_factor`` chosen from the
    range test.

    >>> s = OneCycleSchedule(lr_max=0.1, total_steps=10)
    >>> round(s(0), 12), s(2), s(9)
    (0.004, 0.1, 4e-07)

    **Torch:** ``OneCycleLR(optimizer, max_lr=lr_max, total_steps=N, pct_start=p,
    div_factor=…, final_div_factor=…, anneal_strategy=…, three_phase=…)``; the phases
    above are torch's, and the two agree bit for bit for :math:`t = 0, \dots, N`.  Exact
    differences and quirks:

    * Torch also cycles the optimizer's **momentum** (or Adam's :math:`\beta_1`) in the
      opposite direction, between ``max_momentum=0.95`` and ``base_momentum=0.85``,
      unless ``cycle_momentum=False``.  This class gives the learning rate only.
    * Like torch, :math:`t = N` is accepted (it is the rate left in the optimizer after
      the last ``scheduler.step()``) and :math:`t > N` raises ``ValueError``.  At
      :math:`t = N` the last phase is evaluated at :math:`q > 1`, so with ``'linear'`` the
      rate there is below :math:`\alpha_{\rm final}` and can be negative; no update uses it.
    * When :math:`pN < 1` the warm-up phase is empty and the run starts part-way down the
      next phase, as in torch.  Where torch would divide by zero (a phase of length 0,
      e.g. :math:`pN = 1`, or ``pct_start=1.0`` with two phases) this class refuses the
      arguments with ``ValueError``.
    * Torch also accepts ``epochs`` and ``steps_per_epoch`` instead of ``total_steps``
      (:math:`N` = their product) and per-parameter-group lists of ``max_lr``.
    """

    lr_max: float
    total_steps: int
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal_strategy: str = "cos"
    three_phase: bool = False

    def __post_init__(self):
        _check_positive("lr_max", self.lr_max)
        _check_int("total_steps", self.total_steps, minimum=1)
        p = self.pct_start
        if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Invalid pct_start: {p!r} (must satisfy 0 <= pct_start <= 1)")
        _check_positive("div_factor", self.div_factor)
        _check_positive("final_div_factor", self.final_div_factor)
        if self.anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"Invalid anneal_strategy: {self.anneal_strategy!r} (must be 'cos' or 'linear')"
            )
        start = 0.0
        for end, _, _ in self.phases():
            if end == start:
                raise ValueError(
                    f"Invalid pct_start: {p!r} with total_steps={self.total_steps} and "
                    f"three_phase={self.three_phase} (gives a phase of zero length)"
                )
            start = end

    def phases(self) -> list[tuple[float, float, float]]:
        r"""``[(end_step, start_lr, end_lr), ...]``, exactly as torch builds them."""
        lr_init = self.lr_max / self.div_factor
        lr_final = lr_init / self.final_div_factor
        warm_end = float(self.pct_start * self.total_steps) - 1
        last = self.total_steps - 1
        if self.three_phase:
            return [
                (warm_end, lr_init, self.lr_max),
                (float(2 * self.pct_start * self.total_steps) - 2, self.lr_max, lr_init),
                (last, lr_init, lr_final),
            ]
        return [(warm_end, lr_init, self.lr_max), (last, self.lr_max, lr_final)]

    def get_lr(self, epoch: int) -> float:
        """The learning rate for step ``epoch`` (a batch index, 0 to ``total_steps``)."""
        t = _check_epoch(epoch)
        if t > self.total_steps:
            raise ValueError(
                f"Invalid epoch: {t} (must be <= total_steps = {self.total_steps})"
            )
        phases = self.phases()
        start = 0.0
        for i, (end, a, b) in enumerate(phases):
            if t <= end or i == len(phases) - 1:
                q = (t - start) / (end - start)
                if self.anneal_strategy == "cos":
                    return b + (a - b) / 2.0 * (math.cos(math.pi * q) + 1)
                return (b - a) * q + a
            start = end
        raise AssertionError("unreachable: the last phase always matches")

    __call__ = get_lr
