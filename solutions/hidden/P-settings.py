"""Checks of P-settings (the format: ``optbook.grade.checks``).

Built by ``python -m optbook.grade.assign`` from the hidden-test cells of its master,
``solutions/masters/P-settings.md``: edit the master, not this file.
"""

from optbook.grade.checks import Checks

checks = Checks()


# References, computed here in the grader (never in the student's kernel).
import math
import numbers

import numpy as np

from optbook.precision import lost_updates, round_to_bf16
from optbook.tuning import noise_scale_from_norms

RNG = np.random.default_rng(12)
CASES = []
for b_small, b_big in [(4, 64), (16, 1024), (1, 3)]:
    # measurements consistent with some |G|² > 0 and tr Σ, with a little noise
    g2, trace, n = RNG.uniform(0.5, 2), RNG.uniform(20, 200), int(RNG.integers(3, 8))
    CASES.append(([float(x) for x in g2 + trace / b_small + RNG.uniform(-0.1, 0.1, n)],
                  b_small,
                  [float(x) for x in g2 + trace / b_big + RNG.uniform(-0.1, 0.1, n + 2)],
                  b_big))
assert all(noise_scale_from_norms(*case).g2 > 0 for case in CASES)
THETA = [float(x) for x in round_to_bf16(RNG.normal(size=300))]
DELTA = [float(x) for x in round_to_bf16(
    RNG.normal(size=300) * 10.0 ** RNG.uniform(-5, -1, 300))]
DELTA[:5] = [0.0] * 5
LOST = [bool(x) for x in lost_updates(THETA, DELTA)]


def close(value, want):
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-12))


def triples(values, wants):
    return isinstance(values, list) and len(values) == len(wants) and all(
        isinstance(v, list) and len(v) == 3 and all(close(x, w) for x, w in zip(v, want))
        for v, want in zip(values, wants))


EXACT = [(2.0, 30.0, 15.0)]
WANT = [(ns.g2, ns.trace, ns.b_simple)
        for ns in (noise_scale_from_norms(*case) for case in CASES)]


@checks.add("P-exact", points=1,
            probe="[[float(x) for x in noise_scale([2 + 30 / 4], 4, [2 + 30 / 64], 64)]]")
def _(values):
    assert triples(values, EXACT), (
        "P1: with |G_B|² = |G|² + tr Σ / B exactly, the two formulas must give |G|² = 2 "
        "and tr Σ = 30, and b_simple is their ratio.")


@checks.add("P-noise-scale", points=3,
            probe=f"[[float(x) for x in noise_scale(*case)] for case in {CASES!r}]")
def _(values):
    assert triples(values, WANT), (
        "P1: wrong for other measurements. Average each list first (the mean of "
        "sq_small and the mean of sq_big), then solve the two equations; the lists may "
        "have different lengths.")


@checks.add("P-lost", points=3,
            probe=f"[bool(x) for x in lost_in_bf16({THETA!r}, {DELTA!r})]")
def _(values):
    assert isinstance(values, list) and len(values) == len(LOST), (
        "P2: lost_in_bf16 must return one boolean per pair.")
    assert values == LOST, (
        "P2: some answers are wrong. An update is lost when the bfloat16 sum equals the "
        "bfloat16 theta; an update of zero is not a lost update.")
