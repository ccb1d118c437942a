# %% setup
# References for E, computed once with optbook's optimizers and surfaces (tested on
# their own in tests/test_optimizers.py and tests/test_surfaces.py).
import numpy as _np
import matplotlib.figure as _mfigure
import matplotlib.pyplot as _plt
from matplotlib.contour import ContourSet as _ContourSet
from optbook import optimizers as _opts, surfaces as _surf


def _ref_cases(*cases):
    """(run's arguments, the reference path) for each (arguments, reference optimizer)."""
    return [(args, _surf.trajectory(optimizer, _surf.SURFACES[args[1]], start=args[3], steps=args[4]).points)
            for args, optimizer in cases]


def _ref_first_wrong_run(run, cases):
    """How the first case whose run(...) path misses the reference was called; None if none."""
    for (oname, sname, hp, start, steps), want in cases:
        got = _np.asarray(run(oname, sname, dict(hp), start, steps), dtype=float)
        if not (got.shape == want.shape and _np.allclose(got, want, rtol=0, atol=1e-8)):
            return f"run({oname!r}, {sname!r}, {hp}, {start}, {steps})"
    return None


# Hyperparameters an optimizer does not use are in some cases on purpose: run must ignore them.
_ref_momentum_cases = _ref_cases(
    (("SGD", "quadratic", {"lr": 0.07, "beta": 0.5, "beta1": 0.3}, (1.5, -1.0), 40), _opts.SGD(lr=0.07)),
    (("SGD", "rosenbrock", {"lr": 0.0015}, (-1.2, 1.0), 60), _opts.SGD(lr=0.0015)),
    (("Momentum", "rastrigin", {"lr": 0.002, "beta": 0.85, "beta2": 0.5}, (-3.3, 2.6), 50),
     _opts.MomentumSGD(lr=0.002, beta=0.85)),
    (("Momentum", "beale", {"lr": 0.003, "beta": 0.7}, (1.0, 1.5), 50), _opts.MomentumSGD(lr=0.003, beta=0.7)),
)
_ref_adaptive_cases = _ref_cases(
    (("RMSprop", "quadratic", {"lr": 0.01, "beta": 0.9}, (1.5, -1.0), 40), _opts.RMSprop(lr=0.01, beta=0.9)),
    (("RMSprop", "beale", {"lr": 0.005, "beta": 0.95, "epsilon": 1e-6, "beta1": 0.1}, (1.0, 1.5), 60),
     _opts.RMSprop(lr=0.005, beta=0.95, epsilon=1e-6)),
    (("Adam", "rosenbrock", {"lr": 0.02, "beta1": 0.8, "beta2": 0.99, "beta": 0.3}, (-1.2, 1.0), 80),
     _opts.Adam(lr=0.02, beta1=0.8, beta2=0.99)),
    (("Adam", "rastrigin", {"lr": 0.05}, (-3.3, 2.6), 40), _opts.Adam(lr=0.05)),
    (("Adam", "quadratic", {}, (0.5, 0.5), 25), _opts.Adam()),
)

# E-losses: four points, and the loss of each surface at them.
_ref_loss_points = _np.array([[0.3, -0.2], [1.1, 0.9], [-2.0, 1.5], [0.0, 0.0]])
_ref_losses = {_name: _np.array([_surf.SURFACES[_name].f(_x, _y) for _x, _y in _ref_loss_points])
               for _name in ("quadratic", "rosenbrock", "rastrigin", "beale")}

# E-figure-lines: three paths of different lengths, and whether a line draws one of them.
_ref_figure_paths = {"SGD": _np.array([[-1.2, 1.0], [-1.0, 0.9], [-0.8, 0.7], [-0.5, 0.4]]),
                     "Adam": _np.array([[-1.2, 1.0], [-1.1, 1.1], [-0.9, 1.0], [-0.6, 0.5], [0.2, 0.1]]),
                     "RMSprop": _np.array([[0.5, 2.0], [0.6, 1.8], [0.7, 1.5]])}


def _ref_draws(line, points):
    xy = _np.column_stack([_np.asarray(line.get_xdata(), dtype=float),
                           _np.asarray(line.get_ydata(), dtype=float)])
    return xy.shape == points.shape and _np.allclose(xy, points)


# %% E-trajectories-momentum points=2
_wrong = _ref_first_wrong_run(run, _ref_momentum_cases)
assert _wrong is None, (
    f"E: {_wrong} gives a wrong path. "
    "Check the update rule, that every hyperparameter given is used (and the others "
    "ignored), and that each gradient is taken at the current point.")

# %% E-trajectories-adaptive points=3
_wrong = _ref_first_wrong_run(run, _ref_adaptive_cases)
assert _wrong is None, (
    f"E: {_wrong} gives a wrong path. "
    "Check the update rule (with bias correction for Adam), that every hyperparameter "
    "given is used, that missing ones take the book's defaults, and that keys the "
    "optimizer does not use are ignored.")

# %% E-bad-names points=1
for _args, _bad in ((("Nesterov", "quadratic"), "Nesterov"),
                    (("Adam", "himmelblau-ish"), "himmelblau-ish")):
    try:
        run(_args[0], _args[1], {"lr": 0.01}, (0.5, 0.5), 3)
    except ValueError as _exc:
        assert _bad in str(_exc), (
            f"E: the ValueError for the unknown name {_bad!r} must name it in its message.")
    else:
        raise AssertionError(f"E: run with the unknown name {_bad!r} must raise ValueError.")

# %% E-losses points=1
for _sname, _want in _ref_losses.items():
    _got = _np.asarray(losses(_sname, _ref_loss_points.copy()), dtype=float)
    assert _got.shape == (4,) and _np.allclose(_got, _want, rtol=1e-10, atol=1e-12), (
        f"E: losses({_sname!r}, path) must give the loss of that surface at every row "
        "of path (checked on four points).")

# %% E-table points=1
_path = _np.asarray(run("Momentum", "rosenbrock", {"lr": 0.001, "beta": 0.9}, (-1.2, 1.0), 30))
_rows = iteration_table(_path, "rosenbrock")
_j = _np.asarray(losses("rosenbrock", _path), dtype=float)
assert isinstance(_rows, list) and len(_rows) == 31, (
    "E: iteration_table must have steps + 1 rows, one per point of the path.")
for _t, _r in enumerate(_rows):
    assert _r["t"] == _t and _np.isclose(_r["x"], _path[_t, 0]) and _np.isclose(
        _r["y"], _path[_t, 1]) and _np.isclose(_r["loss"], _j[_t]), (
        f"E: row {_t} of iteration_table disagrees with the path or the losses.")

# %% E-figure-contour points=1
_f = contour_with_path("beale", {"Adam": _np.array([[1.0, 1.5], [1.1, 1.4], [1.3, 1.2]])})
assert isinstance(_f, _mfigure.Figure), "E: contour_with_path must return a matplotlib Figure."
assert any(isinstance(_c, _ContourSet) for _ax in _f.get_axes() for _c in _ax.collections), (
    "E: the figure has no contour plot (use ax.contour or ax.contourf).")
_plt.close(_f)

# %% E-figure-lines points=1
_f = contour_with_path("rosenbrock", {_k: _v.copy() for _k, _v in _ref_figure_paths.items()})
_lines = [_l for _ax in _f.get_axes() for _l in _ax.get_lines()]
for _label, _pts in _ref_figure_paths.items():
    _n = sum(_ref_draws(_l, _pts) for _l in _lines)
    assert _n == 1, (f"E: the figure must draw each path as exactly one line through all "
                     f"its points; the path labelled {_label!r} is drawn {_n} times.")
_plt.close(_f)
