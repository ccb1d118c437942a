"""Hidden tests for the T-demo fixture exercise (never released to students)."""

# %% h-step-size points=2
import math

assert isinstance(step_size, (int, float)) and math.isclose(step_size, 1.0), \
    "step_size should be α·|f′(w₀)| = α·|2·w₀| for the given W0 and ALPHA"

# %% setup
# The reference for the array check, computed once; a setup block scores nothing.
import numpy as _np

_ref_w = _np.array([5.0, -2.0, 0.0])
_ref_after_step = _ref_w - 0.1 * 2.0 * _ref_w  # one step on f(w) = w² with lr = 0.1

# %% h-gd-step-array points=3
assert _np.allclose(gd_step(_ref_w.copy(), 0.1), _ref_after_step), \
    "gd_step must work elementwise on NumPy arrays: w − lr·f′(w)"

# %% h-converges points=1
w = 5.0
for _ in range(200):
    w = gd_step(w, 0.1)
assert abs(w) < 1e-6, "200 steps with lr = 0.1 from w = 5 should reach w ≈ 0"
