# %% E-trajectories-momentum points=2
import numpy as _np
from optbook import optimizers as _opts, surfaces as _surf
_cases = [
    ("SGD", "quadratic", {"lr": 0.07, "beta": 0.5, "beta1": 0.3}, (1.5, -1.0), 40,
     _opts.SGD(lr=0.07)),
    ("SGD", "rosenbrock", {"lr": 0.0015}, (-1.2, 1.0), 60, _opts.SGD(lr=0.0015)),
    ("Momentum", "rastrigin", {"lr": 0.002, "beta": 0.85, "beta2": 0.5}, (-3.3, 2.6), 50,
     _opts.MomentumSGD(lr=0.002, beta=0.85)),
    ("Momentum", "beale", {"lr": 0.003, "beta": 0.7}, (1.0, 1.5), 50,
     _opts.MomentumSGD(lr=0.003, beta=0.7)),
]
for _oname, _sname, _hp, _start, _steps, _ref_opt in _cases:
    _ref = _surf.trajectory(_ref_opt, _surf.SURFACES[_sname], start=_start, steps=_steps).points
    _got = _np.asarray(run(_oname, _sname, dict(_hp), _start, _steps), dtype=float)
    assert _got.shape == _ref.shape and _np.allclose(_got, _ref, rtol=0, atol=1e-8), (
        f"E: run({_oname!r}, {_sname!r}, {_hp}, {_start}, {_steps}) gives a wrong path. "
        "Check the update rule, that every hyperparameter given is used (and the others "
        "ignored), and that each gradient is taken at the current point.")

# %% E-trajectories-adaptive points=3
import numpy as _np
from optbook import optimizers as _opts, surfaces as _surf
_cases = [
    ("RMSprop", "quadratic", {"lr": 0.01, "beta": 0.9}, (1.5, -1.0), 40,
     _opts.RMSprop(lr=0.01, beta=0.9)),
    ("RMSprop", "beale", {"lr": 0.005, "beta": 0.95, "epsilon": 1e-6, "beta1": 0.1},
     (1.0, 1.5), 60, _opts.RMSprop(lr=0.005, beta=0.95, epsilon=1e-6)),
    ("Adam", "rosenbrock", {"lr": 0.02, "beta1": 0.8, "beta2": 0.99, "beta": 0.3},
     (-1.2, 1.0), 80, _opts.Adam(lr=0.02, beta1=0.8, beta2=0.99)),
    ("Adam", "rastrigin", {"lr": 0.05}, (-3.3, 2.6), 40, _opts.Adam(lr=0.05)),
    ("Adam", "quadratic", {}, (0.5, 0.5), 25, _opts.Adam()),
]
for _oname, _sname, _hp, _start, _steps, _ref_opt in _cases:
    _ref = _surf.trajectory(_ref_opt, _surf.SURFACES[_sname], start=_start, steps=_steps).points
    _got = _np.asarray(run(_oname, _sname, dict(_hp), _start, _steps), dtype=float)
    assert _got.shape == _ref.shape and _np.allclose(_got, _ref, rtol=0, atol=1e-8), (
        f"E: run({_oname!r}, {_sname!r}, {_hp}, {_start}, {_steps}) gives a wrong path. "
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
import numpy as _np
from optbook import surfaces as _surf
for _sname in ("quadratic", "rosenbrock", "rastrigin", "beale"):
    _s = _surf.SURFACES[_sname]
    _path = _np.array([[0.3, -0.2], [1.1, 0.9], [-2.0, 1.5], [0.0, 0.0]])
    _want = _np.array([_s.f(_x, _y) for _x, _y in _path])
    _got = _np.asarray(losses(_sname, _path), dtype=float)
    assert _got.shape == (4,) and _np.allclose(_got, _want, rtol=1e-10, atol=1e-12), (
        f"E: losses({_sname!r}, path) must give the loss of that surface at every row "
        "of path (checked on four points).")

# %% E-table points=1
import numpy as _np
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
import numpy as _np
import matplotlib.figure as _mfigure
from matplotlib.contour import ContourSet as _ContourSet
import matplotlib.pyplot as _plt
_f = contour_with_path("beale", {"Adam": _np.array([[1.0, 1.5], [1.1, 1.4], [1.3, 1.2]])})
assert isinstance(_f, _mfigure.Figure), "E: contour_with_path must return a matplotlib Figure."
assert any(isinstance(_c, _ContourSet) for _ax in _f.get_axes() for _c in _ax.collections), (
    "E: the figure has no contour plot (use ax.contour or ax.contourf).")
_plt.close(_f)

# %% E-figure-lines points=1
import numpy as _np
import matplotlib.pyplot as _plt
_paths = {"SGD": _np.array([[-1.2, 1.0], [-1.0, 0.9], [-0.8, 0.7], [-0.5, 0.4]]),
          "Adam": _np.array([[-1.2, 1.0], [-1.1, 1.1], [-0.9, 1.0], [-0.6, 0.5], [0.2, 0.1]]),
          "RMSprop": _np.array([[0.5, 2.0], [0.6, 1.8], [0.7, 1.5]])}
_f = contour_with_path("rosenbrock", _paths)


def _draws(_line, _pts):
    _xy = _np.column_stack([_np.asarray(_line.get_xdata(), dtype=float),
                            _np.asarray(_line.get_ydata(), dtype=float)])
    return _xy.shape == _pts.shape and _np.allclose(_xy, _pts)


_lines = [_l for _ax in _f.get_axes() for _l in _ax.get_lines()]
for _label, _pts in _paths.items():
    _n = sum(_draws(_l, _pts) for _l in _lines)
    assert _n == 1, (f"E: the figure must draw each path as exactly one line through all "
                     f"its points; the path labelled {_label!r} is drawn {_n} times.")
_plt.close(_f)
