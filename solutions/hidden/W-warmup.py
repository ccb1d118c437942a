"""Checks of W-warmup (the format: ``optbook.grade.checks``).

Built by ``python -m optbook.grade.assign`` from the hidden-test cells of its master,
``solutions/masters/W-warmup.md``: edit the master, not this file.
"""

from optbook.grade.checks import Checks

checks = Checks()


# References, computed here in the grader (never in the student's kernel).
import math
import numbers

W_SETTINGS = [(4, 10), (1, 3), (10, 100), (7, 8)]


def reference(t, W, T):
    return (t + 1) / W if t < W else max(0.0, (T - t) / (T - W))


def matches(values, want):
    """Whether ``values`` is a list of len(want) numbers, each close to its reference."""
    return isinstance(values, list) and len(values) == len(want) and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool)
        and math.isclose(v, w, rel_tol=1e-9, abs_tol=1e-15) for v, w in zip(values, want))


WARMUP_ARGS = [(t, W, T) for W, T in W_SETTINGS for t in range(W)]
DECAY_ARGS = [(t, W, T) for W, T in W_SETTINGS for t in range(W, T + 3)]
LRS = [0.1 * reference(t, 4, 10) for t in range(12)]


@checks.add("W-peak", points=1, probe="[warmup_factor(3, 4, 10), warmup_factor(4, 4, 10)]")
def _(values):
    assert matches(values, [1.0, 1.0]), (
        "W1: the factor must be 1 at t = W − 1 and at t = W.")


@checks.add("W-warmup-part", points=2,
            probe=f"[warmup_factor(t, W, T) for t, W, T in {WARMUP_ARGS!r}]")
def _(values):
    assert matches(values, [reference(*args) for args in WARMUP_ARGS]), (
        "W1: the warm-up is wrong for some W. Count t from 0: the first update already "
        "uses 1/W of the peak, and the factor rises in equal steps to 1 at t = W − 1.")


@checks.add("W-decay-part", points=2,
            probe=f"[warmup_factor(t, W, T) for t, W, T in {DECAY_ARGS!r}]")
def _(values):
    assert matches(values, [reference(*args) for args in DECAY_ARGS]), (
        "W1: the decay is wrong for some W and T. It falls linearly from 1 at t = W to "
        "0 at t = T and stays at 0 after T (never negative).")


@checks.add("W-lrs", points=1, probe="[float(lr) for lr in lrs]")
def _(values):
    assert matches(values, LRS), (
        "W2: lrs should hold the rate each of the first 12 updates used: read it from "
        "the optimizer before optimizer.step() and scheduler.step(), with LambdaLR "
        "multiplying ALPHA_MAX by your warmup_factor(step, 4, 10).")
