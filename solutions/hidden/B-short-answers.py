"""Checks of B-short-answers (the format: ``optbook.grade.checks``).

Built by ``python -m optbook.grade.assign`` from the hidden-test cells of its master,
``solutions/masters/B-short-answers.md``: edit the master, not this file.
"""

from optbook.grade.checks import Checks

checks = Checks()


# Checks of exercise B, short answers (see ``optbook.grade.checks`` for the format).
#
# Each probe calls the student's function on fixed inputs (written into the probe) and
# sends back what it returns; each judge compares that, in the grader, with a reference
# computed here.  Adam's reference comes from optbook's ``adam_step`` (checked against
# ``torch.optim.Adam`` in tests/test_optimizers.py), one step at a time.

import math
import numbers

import numpy as np

from optbook.optimizers import adam_step


def count(value):
    """The value if it is a whole or real number (not a bool), else None."""
    return value if isinstance(value, numbers.Real) and not isinstance(value, bool) else None


def floats(value, n):
    """``value`` as an array of ``n`` floats, or None if it is not a list of n numbers."""
    if not (isinstance(value, list) and len(value) == n and all(count(x) is not None for x in value)):
        return None
    return np.array(value, dtype=float)


def adam(w, g, m, v, t, lr, beta1, beta2, eps):
    """(w, m, v) after one Adam step, as floats."""
    state = [np.array(float(x)) for x in (w, m, v)]
    adam_step(state[0], np.array(float(g)), state[1], state[2], t, lr, beta1, beta2, eps)
    return tuple(float(x) for x in state)


# ---------------------------------------------------------------------------- B1

@checks.add("B1-batch", points=1,
            probe='B1_updates.get("batch") if isinstance(B1_updates, dict) else None')
def _(updates):
    assert count(updates) == 1, (
        "B1 (batch gradient descent): each update uses the gradient over the whole training "
        "set. How many updates does one pass over the data give?")


@checks.add("B1-minibatch", points=1,
            probe='B1_updates.get("minibatch") if isinstance(B1_updates, dict) else None')
def _(updates):
    assert count(updates) == 391, (
        "B1 (mini-batch): count the batches of B = 128 examples that one pass over "
        "N = 50,000 examples takes. 128 does not divide 50,000, and the last, smaller batch "
        "still gives an update.")


@checks.add("B1-stochastic", points=1,
            probe='B1_updates.get("stochastic") if isinstance(B1_updates, dict) else None')
def _(updates):
    assert count(updates) == 50_000, (
        "B1 (stochastic): each update of stochastic gradient descent uses a single example.")


# ---------------------------------------------------------------------------- B2
# A constant gradient; then alternating random gradients for three β.
B2_CONSTANT = 4.0 * (1.0 - 0.9 ** np.arange(1, 31))
B2_CASES, _rng = [], np.random.default_rng(8)
for _beta in (0.5, 0.9, 0.99):
    _g = [float(x) for x in _rng.normal(size=25) * 3.0]
    _g[::2] = [-x for x in _g[::2]]
    _m, _ms = 0.0, []
    for _gt in _g:
        _m = _beta * _m + (1.0 - _beta) * _gt
        _ms.append(_m)
    B2_CASES.append((_beta, _g, _ms))


@checks.add("B2-constant", points=1, probe="list(momentum_average([4.0] * 30, 0.9))")
def _(values):
    got = floats(values, 30)
    assert got is not None, (
        "momentum_average must return one value m_t for every gradient g_t "
        "(30 gradients in, 30 values out).")
    assert np.allclose(got, B2_CONSTANT, rtol=1e-9, atol=1e-12), (
        "B2: with a constant gradient the average should start small and rise toward the "
        "gradient. Check the start m_0 = 0 and the update m_t = β m_(t-1) + (1-β) g_t.")


@checks.add("B2-general", points=1, probe=f"""
[list(momentum_average(list(g), beta)) for beta, g in {[(beta, g) for beta, g, _ in B2_CASES]!r}]
""")
def _(runs):
    complete = isinstance(runs, list) and len(runs) == len(B2_CASES)
    got = [floats(run, 25) for run in runs] if complete else [None] * len(B2_CASES)
    assert all(g is not None and np.allclose(g, want, rtol=1e-9, atol=1e-12)
               for g, (_, _, want) in zip(got, B2_CASES, strict=True)), (
        "B2: momentum_average is wrong for a general sequence of gradients (tried "
        "β = 0.5, 0.9 and 0.99). Use the beta passed in, start from m_0 = 0, and return "
        "m_1, ..., m_T in order.")


# ---------------------------------------------------------------------------- B3
# adam_update's arguments (w, g, m, v, t, lr, beta1, beta2, eps).
B3_FIRST = [(0.7, -2.5, 0.0, 0.0, 1, 0.01, 0.9, 0.999, 1e-8),
            (-3.0, 40.0, 0.0, 0.0, 1, 0.1, 0.8, 0.99, 1e-8)]
B3_EPSILON = [(2.0, g, 0.01, 0.002, t, 0.1, 0.9, 0.999, eps)
              for g, eps, t in [(1e-9, 1e-8, 1), (0.3, 0.5, 4), (0.0, 1e-8, 2)]]
B3_LATER, _state = [], (1.3, 0.0, 0.0)  # 20 steps from w = 1.3 with g = 2w + 0.5 sin(3t): (w, m, v) after
for _t in range(1, 21):
    _state = adam(_state[0], 2.0 * _state[0] + 0.5 * math.sin(3.0 * _t), _state[1], _state[2], _t, 0.05,
                  0.8, 0.99, 1e-12)
    B3_LATER.append(_state)


def adam_uncorrected(w, g, m, v, t, lr, beta1, beta2, eps):
    """(w, m, v) after one Adam step without bias correction: the common mistake that
    feedback names."""
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    return w - lr * m / (math.sqrt(v) + eps), m, v


UNCORRECTED_HINT = (" The values are those of Adam without bias correction: are m and v divided "
                    "by 1 − β₁ᵗ and 1 − β₂ᵗ (m̂ and v̂)?")
NAN_HINT = (" It gives NaN or inf: use the t that is passed in (t counts from 1; with t = 0 "
            "the bias correction 1 − β⁰ = 0 divides by zero).")


def likely_cause(got, uncorrected) -> str:
    """A hint naming the likely mistake behind wrong values ('' if none fits)."""
    if got is None:
        return ""
    if not np.all(np.isfinite(got)):
        return NAN_HINT
    if np.shape(got) == np.shape(uncorrected) and np.allclose(got, uncorrected, rtol=1e-9, atol=1e-15):
        return UNCORRECTED_HINT
    return ""


def triples(value, n):
    """``value`` as n (w, m, v) rows, or None if it is not a list of n lists of 3 numbers."""
    rows = [floats(row, 3) for row in value] if isinstance(value, list) and len(value) == n else None
    return None if rows is None or any(r is None for r in rows) else np.array(rows)


# The notebook's visible self-check (section 8.8's worked example), judged here for its point.
@checks.add("B3-worked-example", points=1,
            probe="float(adam_update(5.0, 10.0, 0.0, 0.0, 1, 0.1, 0.9, 0.999, 1e-8)[0])")
def _(w):
    assert count(w) is not None and math.isfinite(w), (
        f"After one step w is {w!r}. Is t used as it is passed in (t = 1 here)? "
        "With t = 0 the bias correction 1 - beta**0 = 0 divides by zero.")
    uncorrected = 5.0 - 0.1 * 1.0 / (math.sqrt(0.1) + 1e-8)  # m = 1, v = 0.1, no correction
    assert abs(w - 4.9) < 1e-6, (
        f"After one step w should be about 4.9, not {w!r}."
        + (" That is the step without bias correction: are m and v divided by"
           " 1 - beta1**t and 1 - beta2**t?" if abs(w - uncorrected) < 1e-6 else ""))


@checks.add("B3-first-step", points=1,
            probe=f"[[float(x) for x in adam_update(*args)] for args in {B3_FIRST!r}]")
def _(results):
    assert isinstance(results, list) and all(isinstance(r, list) and len(r) == 3 for r in results), (
        "adam_update must return three numbers: (w, m, v) after the step.")
    got = triples(results, len(B3_FIRST))
    want = [adam(*args) for args in B3_FIRST]
    assert got is not None and np.allclose(got, want, rtol=1e-9, atol=1e-15), (
        "B3: the first step (t = 1, m = v = 0) is wrong."
        + (likely_cause(got, [adam_uncorrected(*args) for args in B3_FIRST])
           or " Check the two moment updates, the bias corrections and where ε goes: "
              "w − α m̂/(√v̂ + ε)."))


@checks.add("B3-later-steps", points=1, probe="""
import math
w, m, v, after = 1.3, 0.0, 0.0, []
for t in range(1, 21):
    g = 2.0 * w + 0.5 * math.sin(3.0 * t)
    w, m, v = [float(x) for x in adam_update(w, g, m, v, t, 0.05, 0.8, 0.99, 1e-12)]
    after.append([w, m, v])
after
""")
def _(after):
    got = triples(after, len(B3_LATER))
    assert got is not None and np.allclose(got, B3_LATER, rtol=1e-9, atol=1e-15), (
        "B3: adam_update agrees at the start but drifts over later steps (t > 1). Check "
        "that the bias corrections use the step t that is passed in, with beta1 for m "
        "and beta2 for v, and that m and v are returned uncorrected.")


@checks.add("B3-epsilon", points=1,
            probe=f"[[float(x) for x in adam_update(*args)] for args in {B3_EPSILON!r}]")
def _(results):
    got = triples(results, len(B3_EPSILON))
    want = [adam(*args) for args in B3_EPSILON]
    assert got is not None and np.allclose(got, want, rtol=1e-9, atol=1e-15), (
        "B3: adam_update is wrong when ε is not negligible. In the book's form ε is added "
        "to √v̂ (the square root of the bias-corrected second moment), outside the root.")


# ---------------------------------------------------------------------------- B4
# (t, α_max, W) and the warm-up rate, t counted from 0.
B4_ARGS = [(t, lr_max, W) for lr_max, W in [(0.1, 10), (0.003, 1), (2.0, 7)]
           for t in range(0, 3 * W + 5)]
B4_RATES = [lr_max * (t + 1) / W if t < W else lr_max for t, lr_max, W in B4_ARGS]


@checks.add("B4-warmup", points=1,
            probe=f"[float(warmup_lr(t, lr_max, W)) for t, lr_max, W in {B4_ARGS!r}]")
def _(rates):
    got = floats(rates, len(B4_ARGS))
    assert got is not None and np.allclose(got, B4_RATES, rtol=1e-12, atol=0.0), (
        "B4: warmup_lr is wrong for some t. Count t from 0 as in the book: the first "
        "epoch already uses α_max/W, α_max is reached at t = W − 1, and the rate "
        "stays at α_max from then on.")


# ---------------------------------------------------------------------------- B5
# One step from w = 1 with a zero loss gradient, α = 0.001, λ = 0.01: AdamW decays the
# weight, then takes an Adam step (of zero); Adam + L2 adds λw to the gradient instead.
B5_ADAMW = adam(1.0 - 0.001 * 0.01 * 1.0, 0.0, 0.0, 0.0, 1, 0.001, 0.9, 0.999, 1e-8)[0]
B5_ADAM_L2 = adam(1.0, 0.0 + 0.01 * 1.0, 0.0, 0.0, 1, 0.001, 0.9, 0.999, 1e-8)[0]


@checks.add("B5-adamw", points=1, probe="B5_w_adamw")
def _(w):
    assert count(w) is not None and abs(w - B5_ADAMW) <= 1e-7, (
        "B5 (AdamW): the decoupled decay multiplies the weight by 1 − αλ before the Adam "
        "step, and with a zero loss gradient the Adam step itself is zero.")


@checks.add("B5-adam-l2", points=1, probe="B5_w_adam_l2")
def _(w):
    assert count(w) is not None and abs(w - B5_ADAM_L2) <= 1e-7, (
        "B5 (Adam with L2): here λw is added to the gradient, and that gradient then goes "
        "through m, v and the bias corrections like any other. Work out m̂ and v̂ at t = 1 "
        "and see what m̂/√v̂ becomes, whatever the size of λ.")
