"""Checks of the T-demo fixture exercise (never released to students).

Each probe runs in the student's kernel and sends back what the answer gives for fixed
inputs; each judge compares that, here in the grader, with a reference computed here.
"""

import math

import numpy as np

from optbook.grade.checks import Checks

checks = Checks()

# The reference values: they never enter the student's kernel.  SECRET_MARK lets the
# tests look for this file's values in everything the kernel receives.
SECRET_MARK = 0.123456789012345
W = np.array([5.0, -2.0, 0.0])
AFTER_STEP = W - 0.1 * 2.0 * W  # one step on f(w) = w² with lr = 0.1
STEP_SIZE = 0.1 * abs(2.0 * 5.0) + SECRET_MARK - SECRET_MARK


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# The notebook's visible self-check is worth a point: its points are earned here.
@checks.add("t-gd-step-small", points=1, probe="gd_step(1.0, 0.25)")
def _(value):
    assert _number(value) and abs(value - 0.5) <= 1e-9, "gd_step(1.0, 0.25) should return 0.5"


@checks.add("h-step-size", points=2, probe="step_size")
def _(step_size):
    assert _number(step_size) and math.isclose(step_size, STEP_SIZE), (
        "step_size should be α·|f′(w₀)| = α·|2·w₀| for the given W0 and ALPHA")


@checks.add("h-gd-step-array", points=3, probe="""
import numpy as np
gd_step(np.array([5.0, -2.0, 0.0]), 0.1)
""")
def _(after):
    assert isinstance(after, list) and len(after) == 3 and all(map(_number, after)) and np.allclose(
        after, AFTER_STEP), "gd_step must work elementwise on NumPy arrays: w − lr·f′(w)"


@checks.add("h-converges", points=1, probe="""
w = 5.0
for _ in range(200):
    w = gd_step(w, 0.1)
w
""")
def _(w):
    assert _number(w) and abs(w) < 1e-6, "200 steps with lr = 0.1 from w = 5 should reach w ≈ 0"
