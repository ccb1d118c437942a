"""Tests for optbook.schedules: every schedule over whole runs against torch.optim.lr_scheduler.

The torch side is driven the way a training loop drives it: a dummy parameter, an SGD
optimizer with ``lr`` set to the schedule's starting rate, and ``optimizer.step()``
followed by ``scheduler.step()`` once per epoch; ``scheduler.get_last_lr()`` is the rate
the next epoch uses.  Nothing here hard-codes an expected learning rate except the
chapter's step-decay numbers.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tls

from optbook.schedules import (
    CosineAnnealingSchedule,
    CosineWarmRestartsSchedule,
    ExponentialDecaySchedule,
    OneCycleSchedule,
    StepDecaySchedule,
    WarmupCosineSchedule,
    lr_curve,
)

RTOL = 1e-12


def make_optimizer(lr: float, momentum: float = 0.0) -> torch.optim.SGD:
    param = torch.nn.Parameter(torch.zeros(1))
    return torch.optim.SGD([param], lr=lr, momentum=momentum)


def torch_run(make_scheduler, lr: float, n: int, closed_form: bool = False) -> np.ndarray:
    """The rates torch gives epochs 0..n-1: get_last_lr() (or the closed form) after each step.

    Any warning torch raises (e.g. a step called in the wrong order) fails the test.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optimizer = make_optimizer(lr)
        scheduler = make_scheduler(optimizer)
        rates = []
        for epoch in range(n):
            if epoch > 0:
                optimizer.step()
                scheduler.step()
            rates.append(
                scheduler._get_closed_form_lr()[0] if closed_form else scheduler.get_last_lr()[0]
            )
    return np.array(rates)


# --------------------------------------------------------------------------------------
# The chapter's numbers
# --------------------------------------------------------------------------------------


def test_chapter_step_decay_numbers():
    """0.01 for epochs 0-29, then 0.001 at epoch 30, 1e-4 at 60, 1e-5 at 90."""
    s = StepDecaySchedule(0.01)  # the defaults drop_rate=0.1, step_size=30
    assert all(s(t) == 0.01 for t in range(30))
    for epoch, expected in [(30, 1e-3), (59, 1e-3), (60, 1e-4), (89, 1e-4), (90, 1e-5)]:
        assert s(epoch) == pytest.approx(expected, rel=RTOL)


# --------------------------------------------------------------------------------------
# Step and exponential decay
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "initial_lr, drop_rate, step_size, n",
    [(0.01, 0.1, 30, 120), (0.5, 0.5, 7, 100), (0.2, 1.0, 1, 20), (1.0, 0.3, 1, 40)],
)
def test_step_decay_matches_StepLR(initial_lr, drop_rate, step_size, n):
    ours = lr_curve(StepDecaySchedule(initial_lr, drop_rate, step_size), n)
    theirs = torch_run(lambda o: tls.StepLR(o, step_size=step_size, gamma=drop_rate), initial_lr, n)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=0)


@pytest.mark.parametrize(
    "initial_lr, decay_rate, n",
    [(0.1, 0.96, 200), (1.0, 0.5, 60), (0.3, 0.999, 1000), (0.05, 1.0, 10)],
)
def test_exponential_decay_matches_ExponentialLR(initial_lr, decay_rate, n):
    ours = lr_curve(ExponentialDecaySchedule(initial_lr, decay_rate), n)
    theirs = torch_run(lambda o: tls.ExponentialLR(o, gamma=decay_rate), initial_lr, n)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=0)


# --------------------------------------------------------------------------------------
# Cosine annealing
# --------------------------------------------------------------------------------------

COSINE_CASES = [
    # lr_max, lr_min, total_epochs, n (n > T runs past the end, where the cosine rises again)
    (0.1, 1e-6, 100, 101),
    (0.1, 0.0, 100, 301),
    (0.1, 1e-6, 1000, 1001),
    (0.5, 0.05, 7, 50),
    (1.0, 0.0, 1, 5),
]


@pytest.mark.parametrize("lr_max, lr_min, T, n", COSINE_CASES)
def test_cosine_equals_torch_closed_form_bit_for_bit(lr_max, lr_min, T, n):
    ours = lr_curve(CosineAnnealingSchedule(lr_max, lr_min, T), n)
    theirs = torch_run(
        lambda o: tls.CosineAnnealingLR(o, T_max=T, eta_min=lr_min), lr_max, n, closed_form=True
    )
    assert ours.tolist() == theirs.tolist()


@pytest.mark.parametrize("lr_max, lr_min, T, n", COSINE_CASES)
def test_cosine_matches_torch_recursive_form(lr_max, lr_min, T, n):
    """Torch's step() computes alpha_t from alpha_{t-1} by the ratio of two cosines.

    That is the same formula in exact arithmetic, but each epoch multiplies in one more
    rounding error, so it drifts away from the closed form: it is *not* bit-for-bit equal
    (checked below), only equal to about 1e-15..1e-13 relative over these runs, well
    inside 1e-12.  Where the rate is exactly lr_min = 0 (t = T, 3T, ...), torch's ratio
    has a zero numerator and both give exactly 0, so no absolute tolerance is needed.
    """
    ours = lr_curve(CosineAnnealingSchedule(lr_max, lr_min, T), n)
    theirs = torch_run(lambda o: tls.CosineAnnealingLR(o, T_max=T, eta_min=lr_min), lr_max, n)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=0)


def test_torch_recursive_cosine_drifts_from_closed_form():
    """The drift is real (not bit-for-bit) and small: this is why we compare with rtol."""
    T, n = 100, 301
    recursive = torch_run(lambda o: tls.CosineAnnealingLR(o, T_max=T, eta_min=1e-6), 0.1, n)
    closed = torch_run(
        lambda o: tls.CosineAnnealingLR(o, T_max=T, eta_min=1e-6), 0.1, n, closed_form=True
    )
    assert recursive.tolist() != closed.tolist()
    np.testing.assert_allclose(recursive, closed, rtol=RTOL, atol=0)


def test_cosine_past_total_epochs_follows_the_formula():
    """Documented behaviour: past T the rate rises again, periodic with period 2T."""
    s = CosineAnnealingSchedule(lr_max=0.1, lr_min=1e-3, total_epochs=20)
    curve = lr_curve(s, 61)
    assert curve[20] == pytest.approx(1e-3, rel=RTOL)
    assert np.all(np.diff(curve[:21]) < 0)  # decays to lr_min ...
    assert np.all(np.diff(curve[20:41]) > 0)  # ... then climbs back
    np.testing.assert_allclose(curve[40:61], curve[0:21], rtol=1e-12)


# --------------------------------------------------------------------------------------
# Warm-up + cosine
# --------------------------------------------------------------------------------------

WARMUP_CASES = [
    # lr_max, W, T, lr_min
    (0.1, 5, 100, 1e-6),
    (0.1, 1, 30, 0.0),
    (0.3, 2, 10, 0.01),
    (1.0, 10, 50, 0.0),
    (0.05, 19, 20, 1e-4),
]


def warmup_cosine_closed_form(lr_max, W, T, lr_min, t):
    """The chapter's formula, written independently of the module (vectorised numpy)."""
    t = np.asarray(t, dtype=float)
    warm = lr_max * (t + 1) / W if W else np.zeros_like(t)
    p = (t - W) / (T - W)
    cos = lr_min + 0.5 * (lr_max - lr_min) * (1 + np.cos(np.pi * p))
    return np.where(t < W, warm, cos)


@pytest.mark.parametrize("lr_max, W, T, lr_min", WARMUP_CASES)
def test_warmup_cosine_matches_closed_form(lr_max, W, T, lr_min):
    n = 2 * T
    ours = lr_curve(WarmupCosineSchedule(lr_max, W, T, lr_min), n)
    np.testing.assert_allclose(
        ours, warmup_cosine_closed_form(lr_max, W, T, lr_min, np.arange(n)), rtol=RTOL, atol=0
    )


@pytest.mark.parametrize("lr_max, W, T, lr_min", WARMUP_CASES)
def test_warmup_cosine_matches_torch_SequentialLR(lr_max, W, T, lr_min):
    """LinearLR from 1/W to 1 over W-1 epochs, then CosineAnnealingLR over T-W epochs.

    An independent torch composition (no LambdaLR carrying our formula); its cosine part
    is torch's recursive form, restarted at the milestone from its closed form.
    """

    def make(o):
        return tls.SequentialLR(
            o,
            schedulers=[
                tls.LinearLR(o, start_factor=1 / W, end_factor=1.0, total_iters=W - 1),
                tls.CosineAnnealingLR(o, T_max=T - W, eta_min=lr_min),
            ],
            milestones=[W],
        )

    n = T + 1
    ours = lr_curve(WarmupCosineSchedule(lr_max, W, T, lr_min), n)
    np.testing.assert_allclose(ours, torch_run(make, lr_max, n), rtol=RTOL, atol=0)


@pytest.mark.parametrize("lr_max, W, T, lr_min", WARMUP_CASES)
def test_warmup_cosine_shape(lr_max, W, T, lr_min):
    s = WarmupCosineSchedule(lr_max, W, T, lr_min)
    curve = lr_curve(s, T + 1)
    assert curve[0] == pytest.approx(lr_max / W, rel=RTOL)  # starts at lr_max/W, not 0
    assert np.all(np.diff(curve[:W]) > 0)  # monotone rise during warm-up
    assert curve[W - 1] == pytest.approx(lr_max, rel=RTOL)  # reaches the peak at W-1 ...
    assert curve[W] == lr_max  # ... and the cosine starts there again at W
    assert np.all(np.diff(curve[W:]) < 0)  # monotone decay after
    assert curve[T] == pytest.approx(lr_min, rel=RTOL, abs=1e-18)


def test_warmup_is_the_usual_torch_recipe_shifted_by_one_epoch():
    """torch's common LinearLR(start_factor=eps, total_iters=W) reaches the peak one epoch later."""
    lr_max, W, T, eps = 0.1, 5, 50, 1e-9

    def usual(o):
        return tls.SequentialLR(
            o,
            schedulers=[
                tls.LinearLR(o, start_factor=eps, total_iters=W),
                tls.CosineAnnealingLR(o, T_max=T - W, eta_min=0.0),
            ],
            milestones=[W],
        )

    theirs = torch_run(usual, lr_max, W + 1)
    ours = lr_curve(WarmupCosineSchedule(lr_max, W, T, lr_min=0.0), W)
    assert theirs[0] == pytest.approx(eps * lr_max)
    np.testing.assert_allclose(theirs[1 : W + 1], ours, rtol=1e-8)


def test_warmup_zero_is_plain_cosine():
    ours = lr_curve(WarmupCosineSchedule(0.1, warmup_epochs=0, total_epochs=40, lr_min=1e-3), 81)
    plain = lr_curve(CosineAnnealingSchedule(0.1, lr_min=1e-3, total_epochs=40), 81)
    assert ours.tolist() == plain.tolist()


# --------------------------------------------------------------------------------------
# Warm restarts (SGDR)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lr_max, T_0, T_mult, lr_min, n",
    [
        (0.1, 10, 1, 0.0, 100),
        (0.1, 7, 1, 1e-4, 60),
        (0.1, 1, 1, 0.0, 10),
        (0.1, 2, 2, 0.0, 130),
        (0.05, 5, 2, 1e-3, 200),
        (0.1, 1, 3, 0.0, 400),  # passes epoch 121, a restart torch's step(epoch) misplaces
    ],
)
def test_warm_restarts_match_torch(lr_max, T_0, T_mult, lr_min, n):
    s = CosineWarmRestartsSchedule(lr_max, T_0, T_mult, lr_min)
    theirs = torch_run(
        lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=T_0, T_mult=T_mult, eta_min=lr_min),
        lr_max,
        n,
    )
    assert lr_curve(s, n).tolist() == theirs.tolist()  # same closed formula: bit for bit


@pytest.mark.parametrize("T_0, T_mult", [(10, 1), (3, 2), (2, 3), (1, 3)])
def test_warm_restarts_restart_where_the_paper_says(T_0, T_mult):
    """Cycle i starts at T_0 (1 + T_mult + ... + T_mult^(i-1)) and lasts T_0 T_mult^i."""
    s = CosineWarmRestartsSchedule(0.1, T_0, T_mult)
    start = 0
    for i in range(6):
        length = T_0 * T_mult**i
        assert s.cycle(start) == (0, length)
        assert s(start) == 0.1
        assert s.cycle(start + length - 1) == (length - 1, length)
        start += length


# --------------------------------------------------------------------------------------
# One-cycle
# --------------------------------------------------------------------------------------

ONE_CYCLE_CASES = list(
    itertools.product(
        [1, 2, 3, 10, 37, 100, 1000],  # total_steps
        [0.0, 0.1, 0.25, 0.3, 0.5, 0.75, 1.0],  # pct_start
        ["cos", "linear"],
        [False, True],  # three_phase
    )
)


def torch_one_cycle_run(lr_max, total_steps, pct_start, strategy, three_phase, **kw):
    """Torch's rates for steps 0..total_steps (torch allows stepping total_steps times)."""

    def make(o):
        return tls.OneCycleLR(
            o,
            max_lr=lr_max,
            total_steps=total_steps,
            pct_start=pct_start,
            anneal_strategy=strategy,
            three_phase=three_phase,
            **kw,
        )

    return torch_run(make, lr_max, total_steps + 1)


@pytest.mark.parametrize("total_steps, pct_start, strategy, three_phase", ONE_CYCLE_CASES)
def test_one_cycle_matches_OneCycleLR(total_steps, pct_start, strategy, three_phase):
    """Bit-for-bit over steps 0..N, or, where torch divides by zero, we refuse the arguments."""
    args = dict(total_steps=total_steps, pct_start=pct_start, three_phase=three_phase)
    try:
        s = OneCycleSchedule(0.1, anneal_strategy=strategy, **args)
    except ValueError as refused:
        assert "zero length" in str(refused)
        with pytest.raises(ZeroDivisionError):
            torch_one_cycle_run(0.1, total_steps, pct_start, strategy, three_phase)
        return
    theirs = torch_one_cycle_run(0.1, total_steps, pct_start, strategy, three_phase)
    assert lr_curve(s, total_steps + 1).tolist() == theirs.tolist()


def test_one_cycle_grid_has_both_outcomes():
    """The grid above really exercises the zero-length refusal and plenty of real runs."""
    refused = 0
    for total_steps, pct_start, strategy, three_phase in ONE_CYCLE_CASES:
        try:
            OneCycleSchedule(0.1, total_steps, pct_start, anneal_strategy=strategy,
                             three_phase=three_phase)
        except ValueError:
            refused += 1
    assert 0 < refused < len(ONE_CYCLE_CASES) // 4


@pytest.mark.parametrize("div_factor, final_div_factor", [(25.0, 1e4), (10.0, 100.0), (1.0, 1.0)])
@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_factors_match_OneCycleLR(div_factor, final_div_factor, three_phase):
    N = 250
    s = OneCycleSchedule(0.3, N, pct_start=0.3, div_factor=div_factor,
                         final_div_factor=final_div_factor, three_phase=three_phase)
    theirs = torch_one_cycle_run(0.3, N, 0.3, "cos", three_phase, div_factor=div_factor,
                                 final_div_factor=final_div_factor)
    assert lr_curve(s, N + 1).tolist() == theirs.tolist()


@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_shape(three_phase):
    N, p = 100, 0.3
    s = OneCycleSchedule(0.1, N, pct_start=p, three_phase=three_phase)
    curve = lr_curve(s, N)
    peak = round(p * N) - 1
    assert curve[0] == pytest.approx(0.1 / 25.0, rel=RTOL)
    assert curve[peak] == 0.1 and curve.argmax() == peak
    assert curve[N - 1] == pytest.approx(0.1 / 25.0 / 1e4, rel=RTOL)
    assert np.all(np.diff(curve[: peak + 1]) > 0)
    if three_phase:
        assert curve[2 * peak] == pytest.approx(0.1 / 25.0, rel=RTOL)  # back at the start
    assert np.all(np.diff(curve[peak:]) < 0)


def test_one_cycle_past_total_steps():
    """t = N is allowed (torch allows it); its linear value lies below lr_final; t > N raises."""
    N = 10
    linear = OneCycleSchedule(0.1, N, anneal_strategy="linear")
    assert linear(N) < linear(N - 1) == pytest.approx(0.1 / 25.0 / 1e4, rel=RTOL)
    with pytest.raises(ValueError, match=r"Invalid epoch: 11 \(must be <= total_steps = 10\)"):
        linear(N + 1)
    optimizer = make_optimizer(0.1)
    scheduler = tls.OneCycleLR(optimizer, max_lr=0.1, total_steps=N)
    for _ in range(N):
        optimizer.step()
        scheduler.step()
    with pytest.raises(ValueError):  # torch's own limit is the same
        optimizer.step()
        scheduler.step()


def test_torch_one_cycle_also_cycles_momentum():
    """The documented difference: OneCycleLR moves momentum too; our class is the rate only."""
    optimizer = make_optimizer(0.1, momentum=0.9)
    scheduler = tls.OneCycleLR(optimizer, max_lr=0.1, total_steps=20)
    momenta = []
    for _ in range(19):
        momenta.append(optimizer.param_groups[0]["momentum"])
        optimizer.step()
        scheduler.step()
    assert max(momenta) == pytest.approx(0.95) and min(momenta) == pytest.approx(0.85)


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


INVALID = [
    # (what is built, the message it must raise)
    (lambda: StepDecaySchedule(0.0),
     r"Invalid initial_lr: 0\.0 \(must be a positive number\)"),
    (lambda: StepDecaySchedule(-0.1), r"Invalid initial_lr: -0\.1"),
    (lambda: StepDecaySchedule(0.1, drop_rate=0.0),
     r"Invalid drop_rate: 0\.0 \(must satisfy 0 < drop_rate <= 1\)"),
    (lambda: StepDecaySchedule(0.1, drop_rate=1.5), r"Invalid drop_rate: 1\.5"),
    (lambda: StepDecaySchedule(0.1, step_size=0),
     r"Invalid step_size: 0 \(must be a positive integer\)"),
    (lambda: StepDecaySchedule(0.1, step_size=2.5), r"Invalid step_size: 2\.5"),
    (lambda: ExponentialDecaySchedule(0.1, decay_rate=1.01), r"Invalid decay_rate: 1\.01"),
    (lambda: ExponentialDecaySchedule(float("nan")), r"Invalid initial_lr: nan"),
    (lambda: CosineAnnealingSchedule(0.1, total_epochs=0),
     r"Invalid total_epochs: 0 \(must be a positive integer\)"),
    (lambda: CosineAnnealingSchedule(0.1, lr_min=0.2),
     r"Invalid lr_min: 0\.2 \(must satisfy 0 <= lr_min <= lr_max = 0\.1\)"),
    (lambda: CosineAnnealingSchedule(0.1, lr_min=-1e-6), r"Invalid lr_min: -1e-06"),
    (lambda: CosineAnnealingSchedule(-0.1), r"Invalid lr_max: -0\.1"),
    (lambda: WarmupCosineSchedule(0.1, warmup_epochs=100, total_epochs=100),
     r"Invalid warmup_epochs: 100 \(must satisfy 0 <= warmup_epochs < total_epochs = 100\)"),
    (lambda: WarmupCosineSchedule(0.1, warmup_epochs=-1), r"Invalid warmup_epochs: -1"),
    (lambda: WarmupCosineSchedule(0.1, lr_min=1.0), r"Invalid lr_min: 1\.0"),
    (lambda: CosineWarmRestartsSchedule(0.1, T_0=0),
     r"Invalid T_0: 0 \(must be a positive integer\)"),
    (lambda: CosineWarmRestartsSchedule(0.1, T_mult=0), r"Invalid T_mult: 0"),
    (lambda: CosineWarmRestartsSchedule(0.1, T_mult=1.5), r"Invalid T_mult: 1\.5"),
    (lambda: OneCycleSchedule(0.1, total_steps=0),
     r"Invalid total_steps: 0 \(must be a positive integer\)"),
    (lambda: OneCycleSchedule(0.1, 100, pct_start=1.5),
     r"Invalid pct_start: 1\.5 \(must satisfy 0 <= pct_start <= 1\)"),
    (lambda: OneCycleSchedule(0.1, 10, pct_start=0.1), r"Invalid pct_start: 0\.1 .*zero length"),
    (lambda: OneCycleSchedule(0.1, 100, anneal_strategy="exp"),
     r"Invalid anneal_strategy: 'exp'"),
    (lambda: OneCycleSchedule(0.1, 100, div_factor=0), r"Invalid div_factor: 0"),
    (lambda: lr_curve(StepDecaySchedule(0.1), -1), r"Invalid n: -1"),
]


@pytest.mark.parametrize("make, match", INVALID)
def test_invalid_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


ALL_SCHEDULES = [
    StepDecaySchedule(0.1),
    ExponentialDecaySchedule(0.1),
    CosineAnnealingSchedule(0.1),
    WarmupCosineSchedule(0.1),
    CosineWarmRestartsSchedule(0.1),
    OneCycleSchedule(0.1, total_steps=100),
]
IDS = [type(s).__name__ for s in ALL_SCHEDULES]


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=IDS)
@pytest.mark.parametrize("epoch", [-1, 1.5, "3", True])
def test_invalid_epoch(schedule, epoch):
    with pytest.raises(ValueError, match=r"Invalid epoch: .* \(must be a non-negative integer\)"):
        schedule(epoch)


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=IDS)
def test_schedules_are_frozen(schedule):
    with pytest.raises(dataclasses.FrozenInstanceError):
        schedule.lr_max = 1.0  # a typo'd or sneaky change cannot bypass validation


# --------------------------------------------------------------------------------------
# Using a schedule as an optimizer's lr
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=IDS)
def test_schedule_is_a_plain_callable_of_the_index(schedule):
    rates = [schedule(k) for k in range(100)]
    assert all(isinstance(r, float) and 0.0 < r <= 0.1 + 1e-15 for r in rates)
    assert [schedule.get_lr(k) for k in range(100)] == rates  # get_lr is __call__
    assert schedule(np.int64(7)) == schedule(7)  # numpy integers are indices too
    assert lr_curve(schedule, 100).tolist() == rates


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=IDS)
def test_schedule_drives_gradient_descent(schedule):
    """What an optimizer with lr=schedule does: call schedule(k) at step k and use it."""
    theta = 5.0  # minimise J(theta) = theta^2, gradient 2 theta
    for k in range(100):
        theta -= schedule(k) * 2 * theta
    assert abs(theta) < 5.0

    # the same by hand with a torch optimizer: set the group's lr from the schedule
    param = torch.nn.Parameter(torch.tensor([5.0], dtype=torch.float64))
    optimizer = torch.optim.SGD([param], lr=schedule(0))
    for k in range(100):
        optimizer.param_groups[0]["lr"] = schedule(k)
        optimizer.zero_grad()
        (param**2).sum().backward()
        optimizer.step()
    assert math.isclose(param.item(), theta, rel_tol=1e-12, abs_tol=1e-300)
