r"""Two-dimensional loss surfaces, for figures and the optimizer playground.

A real network's loss :math:`J(\theta)` lives in millions of dimensions, but its
difficulties already show up in two.  Each surface here is a loss
:math:`J(\theta)` of :math:`\theta = (x, y)` with a known answer, chosen to show one
difficulty:

==================  ==================================================================
``quadratic``       the easy case: a round bowl; every method works
``ravine``          an ill-conditioned bowl: gradient descent zig-zags across the
                    narrow direction and crawls along the long one (momentum's case)
``rosenbrock``      a curved, flat-bottomed valley: easy to enter, slow to follow
``rastrigin``       a bowl covered in ripples: many local minima around the global one
``beale``           flat plateaus next to steep walls: gradients of very different sizes
``himmelblau``      four equally good minima: the start decides which one is found
``saddle``          a point with zero gradient that is not a minimum
==================  ==================================================================

How hard a quadratic bowl is depends on its *condition number*
:math:`\kappa = \lambda_{\max}/\lambda_{\min}`, the ratio of the largest to the smallest
curvature (eigenvalue of the Hessian).  For

.. math::

    J(x, y) = \tfrac12\,(x^2 + \kappa\, y^2)

gradient descent with :math:`\alpha` multiplies :math:`x` by :math:`1-\alpha` and
:math:`y` by :math:`1-\alpha\kappa` each step.  Stability needs
:math:`\alpha < 2/\kappa`, and with such an :math:`\alpha` the :math:`x` direction
shrinks by at most a factor :math:`1 - 2/\kappa` per step, so the number of steps grows
in proportion to :math:`\kappa`.  :func:`ill_conditioned_quadratic` makes this bowl for
any :math:`\kappa`; ``ravine`` is :math:`\kappa = 20`.

Every :class:`Surface` holds :math:`J` as ``f(x, y)`` and its gradient
:math:`g = \nabla J = (\partial J/\partial x, \partial J/\partial y)` as ``grad(x, y)``.
Both work on numbers and on numpy arrays of any shapes that broadcast together, so one
call evaluates a whole plotting grid:

>>> X, Y = np.meshgrid(np.linspace(-2, 2, 5), np.linspace(-1, 3, 4))
>>> rosenbrock.f(X, Y).shape, rosenbrock.grad(X, Y)[0].shape
((4, 5), (4, 5))
>>> float(rosenbrock.f(1.0, 1.0)), [float(g) for g in rosenbrock.grad(0.0, 0.0)]
(0.0, [-2.0, 0.0])

The optimizers keep :math:`\theta` in a dict of arrays; ``value(p)`` and ``gradient(p)``
take the length-2 array ``p = params['xy']`` directly:

>>> p = np.array([-1.5, 1.0])
>>> quadratic.value(p), quadratic.gradient(p).tolist()
(3.25, [-3.0, 2.0])

All surfaces are listed by name in :data:`SURFACES`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Array = np.ndarray
Window = tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True, eq=False)
class Surface:
    r"""A loss :math:`J(x, y)` with its gradient and what a figure needs to draw it.

    ``formula`` is LaTeX without the ``$`` delimiters (write ``f"${s.formula}$"``).
    ``minima`` lists the known *global* minima and ``f_min`` is :math:`J` there; a surface
    without a minimum has ``minima == []`` and ``f_min is None``.  ``window`` is
    ``((xmin, xmax), (ymin, ymax))`` for plots and contains the minima and
    ``default_start``, the :math:`\theta_0` the chapter's figures start from.
    """

    name: str
    formula: str
    f: Callable[[Array, Array], Array]
    grad: Callable[[Array, Array], tuple[Array, Array]]
    minima: list[tuple[float, float]]
    f_min: float | None
    window: Window
    default_start: tuple[float, float]
    description: str = field(default="")

    # -- the optimizers' dict API: p = params['xy'] -----------------------------------

    def value(self, p) -> float:
        r""":math:`J(\theta)` for a point ``p = [x, y]``."""
        x, y = _point(p)
        return float(self.f(x, y))

    def gradient(self, p) -> np.ndarray:
        r""":math:`\nabla J(\theta)` for a point ``p = [x, y]``, as an array ``[dx, dy]``."""
        x, y = _point(p)
        dx, dy = self.grad(x, y)
        return np.array([dx, dy], dtype=float)

    # -- plotting helpers ------------------------------------------------------------------

    def grid(self, resolution: int = 201) -> tuple[Array, Array, Array]:
        """``X, Y, Z``: the surface on a ``resolution`` × ``resolution`` grid over ``window``."""
        (x0, x1), (y0, y1) = self.window
        X, Y = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
        return X, Y, self.f(X, Y)

    def contour_levels(self, n: int = 20, resolution: int = 201) -> np.ndarray:
        r"""``n`` increasing contour levels suited to ``window``.

        Losses span many orders of magnitude (Rosenbrock goes from 0 to about 2500 in its
        window), so evenly spaced levels would all crowd the walls.  The levels are
        instead :math:`f_{\min} + \delta` with :math:`\delta` log-spaced from the smallest
        gap the grid resolves (but at most six decades below the largest) up to the
        largest value in the window.  A surface without a minimum gets evenly spaced levels.

        >>> levels = quadratic.contour_levels(5)
        >>> len(levels), bool(np.all(np.diff(levels) > 0)), float(levels[-1])
        (5, True, 8.0)
        """
        _, _, Z = self.grid(resolution)
        if self.f_min is None:
            return np.linspace(Z.min(), Z.max(), n)
        gap = Z - self.f_min
        hi = gap.max()
        lo = max(gap[gap > 0].min(), hi * 1e-6)
        return self.f_min + np.geomspace(lo, hi, n)


def _xy(x, y) -> tuple[Array, Array]:
    """``x`` and ``y`` as float arrays of their common broadcast shape."""
    return np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))


def _point(p) -> tuple[float, float]:
    p = np.asarray(p, dtype=float)
    if p.shape != (2,):
        raise ValueError(f"Invalid point: shape {p.shape} (must be a length-2 array [x, y])")
    return p[0], p[1]


# --------------------------------------------------------------------------------------
# Quadratic bowls
# --------------------------------------------------------------------------------------


def _quadratic_f(x, y):
    x, y = _xy(x, y)
    return x**2 + y**2


def _quadratic_grad(x, y):
    x, y = _xy(x, y)
    return 2 * x, 2 * y


#: :math:`J = x^2 + y^2`: round contours, the gradient points straight at the minimum.
quadratic = Surface(
    name="quadratic",
    formula=r"x^2 + y^2",
    f=_quadratic_f,
    grad=_quadratic_grad,
    minima=[(0.0, 0.0)],
    f_min=0.0,
    window=((-2.0, 2.0), (-2.0, 2.0)),
    default_start=(-1.5, 1.0),
    description="An isotropic bowl (condition number 1): the easy case.",
)


def ill_conditioned_quadratic(kappa: float = 20.0, name: str = "ravine") -> Surface:
    r"""The bowl :math:`J = \frac12(x^2 + \kappa y^2)`, whose condition number is ``kappa``.

    Its Hessian is :math:`\mathrm{diag}(1, \kappa)`, so :math:`\kappa` is the ratio of the
    curvatures across and along the ravine; gradient descent needs
    :math:`\alpha < 2/\kappa` and then of the order of :math:`\kappa` steps.

    >>> s = ill_conditioned_quadratic(kappa=50)
    >>> s.formula, s.gradient([1.0, 1.0]).tolist()
    ('\\tfrac12\\,(x^2 + 50\\,y^2)', [1.0, 50.0])
    """
    if not isinstance(kappa, numbers.Real) or not 1.0 <= kappa < math.inf:
        raise ValueError(f"Invalid kappa: {kappa!r} (must be a number >= 1)")

    def f(x, y):
        x, y = _xy(x, y)
        return 0.5 * (x**2 + kappa * y**2)

    def grad(x, y):
        x, y = _xy(x, y)
        return x, kappa * y

    return Surface(
        name=name,
        formula=rf"\frac{{1}}{{2}}\,(x^2 + {kappa:g}\,y^2)",
        f=f,
        grad=grad,
        minima=[(0.0, 0.0)],
        f_min=0.0,
        window=((-10.0, 10.0), (-3.0, 3.0)),
        default_start=(-8.0, 2.0),
        description=f"An ill-conditioned bowl (condition number {kappa:g}): "
        "gradient descent zig-zags across it and crawls along it.",
    )


#: :math:`J = \frac12(x^2 + 20 y^2)`: the ravine, condition number 20.
ravine = ill_conditioned_quadratic(kappa=20.0)


# --------------------------------------------------------------------------------------
# Classic test functions
# --------------------------------------------------------------------------------------


def _rosenbrock_f(x, y, a=1.0, b=100.0):
    x, y = _xy(x, y)
    return (a - x) ** 2 + b * (y - x**2) ** 2


def _rosenbrock_grad(x, y, a=1.0, b=100.0):
    x, y = _xy(x, y)
    return -2 * (a - x) - 4 * b * x * (y - x**2), 2 * b * (y - x**2)


#: Rosenbrock (1960): :math:`J = (1-x)^2 + 100\,(y-x^2)^2`, minimum :math:`J(1, 1) = 0`.
rosenbrock = Surface(
    name="rosenbrock",
    formula=r"(1-x)^2 + 100\,(y-x^2)^2",
    f=_rosenbrock_f,
    grad=_rosenbrock_grad,
    minima=[(1.0, 1.0)],
    f_min=0.0,
    window=((-2.0, 2.0), (-1.0, 3.0)),
    default_start=(-1.2, 1.0),  # Rosenbrock's own starting point
    description="A curved valley along y = x^2 with a nearly flat floor: "
    "reaching the valley is quick, following it to (1, 1) is slow.",
)


def _rastrigin_f(x, y, A=10.0):
    x, y = _xy(x, y)
    return 2 * A + (x**2 - A * np.cos(2 * np.pi * x)) + (y**2 - A * np.cos(2 * np.pi * y))


def _rastrigin_grad(x, y, A=10.0):
    x, y = _xy(x, y)
    return (
        2 * x + 2 * np.pi * A * np.sin(2 * np.pi * x),
        2 * y + 2 * np.pi * A * np.sin(2 * np.pi * y),
    )


#: Rastrigin (A = 10, n = 2): :math:`J = 2A + \sum_{u \in \{x, y\}} (u^2 - A\cos 2\pi u)`.
rastrigin = Surface(
    name="rastrigin",
    formula=r"20 + \left(x^2 - 10\cos 2\pi x\right) + \left(y^2 - 10\cos 2\pi y\right)",
    f=_rastrigin_f,
    grad=_rastrigin_grad,
    minima=[(0.0, 0.0)],
    f_min=0.0,
    window=((-5.12, 5.12), (-5.12, 5.12)),
    default_start=(-3.3, 2.6),
    description="A bowl covered in ripples: a local minimum near every integer point, "
    "the global one at the origin.",
)


def _beale_f(x, y):
    x, y = _xy(x, y)
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def _beale_grad(x, y):
    x, y = _xy(x, y)
    r1 = 1.5 - x + x * y
    r2 = 2.25 - x + x * y**2
    r3 = 2.625 - x + x * y**3
    dx = 2 * r1 * (y - 1) + 2 * r2 * (y**2 - 1) + 2 * r3 * (y**3 - 1)
    dy = 2 * r1 * x + 2 * r2 * (2 * x * y) + 2 * r3 * (3 * x * y**2)
    return dx, dy


#: Beale: :math:`J = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2`.
beale = Surface(
    name="beale",
    formula=r"(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2",
    f=_beale_f,
    grad=_beale_grad,
    minima=[(3.0, 0.5)],
    f_min=0.0,
    window=((-4.5, 4.5), (-4.5, 4.5)),
    default_start=(0.7, 1.4),
    description="Flat plateaus beside walls where J reaches 10^5: gradients differ in "
    "size by orders of magnitude, the case for per-parameter step sizes.",
)


def _himmelblau_f(x, y):
    x, y = _xy(x, y)
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def _himmelblau_grad(x, y):
    x, y = _xy(x, y)
    r1 = x**2 + y - 11
    r2 = x + y**2 - 7
    return 4 * x * r1 + 2 * r2, 2 * r1 + 4 * y * r2


#: Himmelblau: :math:`J = (x^2 + y - 11)^2 + (x + y^2 - 7)^2`, four minima with :math:`J = 0`.
himmelblau = Surface(
    name="himmelblau",
    formula=r"(x^2 + y - 11)^2 + (x + y^2 - 7)^2",
    f=_himmelblau_f,
    grad=_himmelblau_grad,
    # (3, 2) is exact; the others are roots of a quartic, given to double precision
    # (J there is below 1e-29).
    minima=[
        (3.0, 2.0),
        (-2.805118086952745, 3.131312518250573),
        (-3.779310253377747, -3.283185991286169),
        (3.5844283403304917, -1.8481265269644034),
    ],
    f_min=0.0,
    window=((-5.0, 5.0), (-5.0, 5.0)),
    default_start=(0.0, 0.0),
    description="Four global minima, one per quadrant: which one an optimizer finds "
    "depends on where it starts.",
)


def _saddle_f(x, y):
    x, y = _xy(x, y)
    return x**2 - y**2


def _saddle_grad(x, y):
    x, y = _xy(x, y)
    return 2 * x, -2 * y


#: :math:`J = x^2 - y^2`: a saddle point at the origin and no minimum at all.
saddle = Surface(
    name="saddle",
    formula=r"x^2 - y^2",
    f=_saddle_f,
    grad=_saddle_grad,
    minima=[],  # unbounded below (J -> -inf along the y axis), so there is none
    f_min=None,
    window=((-2.0, 2.0), (-2.0, 2.0)),
    # just off the ridge y = 0: descent first heads for the saddle point, then slides off
    default_start=(-1.5, 0.01),
    description="The gradient vanishes at the origin, yet it is no minimum: "
    "J falls without bound along y.  From a start just off y = 0, gradient descent "
    "first slows down near the saddle point before escaping.",
)

#: Every surface by name, for the playground's drop-down.
SURFACES: dict[str, Surface] = {
    s.name: s for s in (quadratic, ravine, rosenbrock, rastrigin, beale, himmelblau, saddle)
}


# -- running an optimizer on a surface ---------------------------------------------------


@dataclass(frozen=True)
class Trajectory:
    r"""The path :math:`\theta_0, \theta_1, \dots` an optimizer took on a surface.

    ``points`` has shape ``(n + 1, 2)`` and ``losses`` shape ``(n + 1,)``, starting at
    :math:`\theta_0`.  If the loss stopped being finite (the optimizer diverged), the
    run ended there: ``diverged_at`` is that step, else ``None``.
    """

    points: np.ndarray
    losses: np.ndarray
    diverged_at: int | None = None

    @property
    def final(self) -> np.ndarray:
        return self.points[-1]


def trajectory(optimizer, surface: Surface, start=None, steps: int = 100,
               blow_up: float = 1e6) -> Trajectory:
    r"""Run ``optimizer`` (any :mod:`optbook.optimizers` instance) for ``steps`` updates
    on ``surface`` from ``start`` (default: the surface's ``default_start``).

    Each step is exactly the chapter's loop: :math:`g_t = \nabla J(\theta_{t-1})`, then
    ``optimizer.update({'xy': θ}, {'dxy': g})``.  The run stops early if :math:`J`
    becomes non-finite or :math:`\|\theta\|` exceeds ``blow_up`` (divergence).

    >>> from optbook.optimizers import SGD
    >>> path = trajectory(SGD(lr=0.1), quadratic, start=(1.0, 0.0), steps=3)
    >>> path.points[:, 0].round(3).tolist()
    [1.0, 0.8, 0.64, 0.512]
    """
    if not (isinstance(steps, numbers.Integral) and steps >= 0):
        raise ValueError(f"Invalid steps: {steps} (must be a non-negative integer)")
    theta = np.array(surface.default_start if start is None else start, dtype=float)
    if theta.shape != (2,):
        raise ValueError(f"start must be a point (x, y), got shape {theta.shape}")
    params = {"xy": theta}
    points, losses = [theta.copy()], [surface.value(theta)]
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is a result, not a warning
        for t in range(1, steps + 1):
            optimizer.update(params, {"dxy": surface.gradient(theta)})
            loss = surface.value(theta)
            if not (math.isfinite(loss) and np.all(np.abs(theta) < blow_up)):
                return Trajectory(np.array(points), np.array(losses), diverged_at=t)
            points.append(theta.copy())
            losses.append(loss)
    return Trajectory(np.array(points), np.array(losses))
