# %% setup
# D1-class-steps' reference: Adam(lr=0.05, beta1=0.8, beta2=0.99, epsilon=1e-6) for 12
# steps on a three-parameter problem; per step the gradient given and the point, m̂ and
# v̂ after it.
import numpy as _np

_w, _m, _v, _ref_class_steps = _np.array([1.0, -2.0, 0.5]), _np.zeros(3), _np.zeros(3), []
for _t in range(1, 13):
    _g = _np.array([2.0, 20.0, -1.0]) * _w + _np.array([0.0, 0.3, 0.1]) * _np.cos(_t)
    _m = 0.8 * _m + 0.2 * _g
    _v = 0.99 * _v + 0.01 * _g * _g
    _mh, _vh = _m / (1 - 0.8 ** _t), _v / (1 - 0.99 ** _t)
    _w = _w - 0.05 * _mh / (_np.sqrt(_vh) + 1e-6)
    _ref_class_steps.append((_g, _w, _mh, _vh))

# The run the notebook asks for: Adam with α = 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e-8 on the
# Rosenbrock function from (-1, 1), 10,000 updates. Row t-1 of _ref_log holds the point
# after update t, f there, and the m̂, v̂ used for that update (the layout of log).
_p, _m, _v = _np.array([-1.0, 1.0]), _np.zeros(2), _np.zeros(2)
_ref_log = _np.empty((10_000, 7))
for _t in range(1, 10_001):
    _x, _y = _p
    _g = _np.array([-2.0 * (1.0 - _x) - 400.0 * _x * (_y - _x * _x), 200.0 * (_y - _x * _x)])
    _m = 0.9 * _m + 0.1 * _g
    _v = 0.999 * _v + 0.001 * _g * _g
    _mh, _vh = _m / (1 - 0.9 ** _t), _v / (1 - 0.999 ** _t)
    _p = _p - 0.001 * _mh / (_np.sqrt(_vh) + 1e-8)
    _x, _y = _p
    _ref_log[_t - 1] = [_x, _y, (1 - _x) ** 2 + 100 * (_y - _x * _x) ** 2, *_mh, *_vh]
_ref_log.setflags(write=False)


def _ref_log_rows(log, rows):
    """``log`` as a float array, which must have at least ``rows`` rows of 7 columns."""
    array = _np.asarray(log, dtype=float)
    assert array.ndim == 2 and array.shape[0] >= rows and array.shape[1] == 7, (
        "D1: log must be an array with one row per iteration and 7 columns.")
    return array


# %% D1-class-steps points=2
_opt = Adam(lr=0.05, beta1=0.8, beta2=0.99, epsilon=1e-6)
_theta = _np.array([1.0, -2.0, 0.5])
for _g, _w, _mh, _vh in _ref_class_steps:
    _theta = _np.asarray(_opt.step(_theta, _g.copy()), dtype=float)
    assert _theta.shape == (3,) and _np.allclose(_theta, _w, rtol=1e-9, atol=1e-12), (
        "D1: Adam(lr=0.05, beta1=0.8, beta2=0.99, epsilon=1e-6).step(theta, g) gives a "
        "wrong point on a three-parameter problem (checked over 12 steps). Does your "
        "class use the hyperparameters it is given, work for any number of parameters, "
        "and count t from 1 in the bias corrections?")
    _got = [_np.asarray(_opt.m_hat, dtype=float), _np.asarray(_opt.v_hat, dtype=float)]
    assert _np.allclose(_got[0], _mh, rtol=1e-9, atol=1e-12) and _np.allclose(
        _got[1], _vh, rtol=1e-9, atol=1e-15), (
        "D1: after step(theta, g), opt.m_hat and opt.v_hat must hold the bias-corrected "
        "moments of that step (checked on a three-parameter problem).")

# %% D1-iteration-10 points=1
assert _np.allclose(_ref_log_rows(log, 10)[:10], _ref_log[:10], rtol=1e-8, atol=1e-12), (
    "D1: the first 10 rows of log do not match Adam on the Rosenbrock function from "
    "(-1, 1) with α = 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e-8. Row t-1 holds the point "
    "after update t, f there, and the m̂, v̂ used for that update.")

# %% D1-iteration-100 points=1
_rows = [0, 9, 49, 99]
assert _np.allclose(_ref_log_rows(log, 100)[_rows], _ref_log[_rows], rtol=1e-8, atol=1e-12), (
    "D1: row 100 of log (iteration 100) does not match Adam with full bias correction. "
    "If the first rows are right, check that t keeps counting up and that m and v "
    "carry over from one iteration to the next.")

# %% D1-iteration-1000 points=2
_rows = [0, 9, 99, 499, 999]
assert _np.allclose(_ref_log_rows(log, 1000)[_rows], _ref_log[_rows], rtol=1e-8, atol=1e-12), (
    "D1: row 1000 of log (iteration 1000) does not match Adam with full bias "
    "correction. Compute in float64 throughout, and keep v̂'s bias correction with β₂ "
    "(it still matters after hundreds of steps).")

# %% D1-final points=2
_log = _np.asarray(log, dtype=float)
assert _log.shape == (10_000, 7) and _np.all(_np.isfinite(_log)), (
    "D1: log must have shape (10000, 7), one row per iteration, with finite values.")
_f = (1 - _log[:, 0]) ** 2 + 100 * (_log[:, 1] - _log[:, 0] ** 2) ** 2
assert _np.allclose(_log[:, 2], _f, rtol=1e-9, atol=1e-14), (
    "D1: column 2 of log must be f(x, y) at the point in columns 0 and 1 of the same row.")
# Near the minimum the iteration amplifies rounding differences (different but equally
# correct ways of writing the update drift apart after about 8,700 steps), so the
# final row is compared with a tolerance that allows for that, not to 1e-8.
assert _np.allclose(_log[-1, :2], _ref_log[-1, :2], rtol=0.0, atol=1e-5) and _log[-1, 2] <= 1e-8, (
    "D1: the final point (iteration 10,000) is not where Adam with α = 0.001 ends up "
    "from (-1, 1). Does your run make exactly 10,000 updates?")
assert (_np.all(_np.abs(_log[-1, 3:5]) <= 1e-3)
        and _np.allclose(_log[-1, 5:7], _ref_log[-1, 5:7], rtol=0.25, atol=0.0)), (
    "D1: the bias-corrected moments in the last row are not those of the final "
    "iteration (m̂ should be close to 0 near the minimum, and v̂ must match the run).")

# %% setup
# What a plot of the run must contain: the figure types, and a test of whether a line
# draws a path (at least 100 points, within the path's box, its ends at the path's
# start and end, in either direction).
import matplotlib.figure as _mfigure
from matplotlib.contour import ContourSet as _ContourSet
from matplotlib.lines import Line2D as _Line2D


def _ref_draws_path(line, points):
    xy = _np.column_stack([_np.asarray(line.get_xdata(), dtype=float),
                           _np.asarray(line.get_ydata(), dtype=float)])
    if len(xy) < 100 or not _np.all(_np.isfinite(xy)):
        return False
    lo, hi = points.min(axis=0) - 1e-6, points.max(axis=0) + 1e-6
    start, end = points[0], points[-1]
    ends = sorted([_np.linalg.norm(xy[0] - start) + _np.linalg.norm(xy[-1] - end),
                   _np.linalg.norm(xy[-1] - start) + _np.linalg.norm(xy[0] - end)])
    return bool(_np.all((xy >= lo) & (xy <= hi)) and ends[0] <= 0.1)


# %% D1-figure-contour points=1
assert isinstance(fig, _mfigure.Figure), (
    "D1: fig must be a matplotlib Figure, for example from fig, ax = plt.subplots().")
assert any(isinstance(_c, _ContourSet) for _ax in fig.get_axes() for _c in _ax.collections), (
    "D1: fig has no contour plot. Draw the contours of the Rosenbrock function with "
    "ax.contour (or ax.contourf) on one of fig's axes.")

# %% D1-figure-path points=1
assert isinstance(fig, _mfigure.Figure), (
    "D1: fig must be a matplotlib Figure, for example from fig, ax = plt.subplots().")
_pts = _np.vstack([[-1.0, 1.0], _np.asarray(log, dtype=float)[:, :2]])  # the student's own path
assert any(_ref_draws_path(_l, _pts) for _ax in fig.get_axes() for _l in _ax.get_lines()
           if isinstance(_l, _Line2D)), (
    "D1: fig has no line that draws the path of your run: plot x against y from log "
    "(at least 100 points, running from the start (-1, 1) to the final point).")
