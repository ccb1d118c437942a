"""Tests for optbook.surfaces: gradients by finite differences, minima, windows, shapes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from optbook.surfaces import (
    SURFACES,
    Surface,
    ill_conditioned_quadratic,
    quadratic,
    ravine,
    saddle,
)

ALL = list(SURFACES.values()) + [ill_conditioned_quadratic(kappa=50.0, name="ravine50")]
IDS = [s.name for s in ALL]
WITH_MINIMA = [s for s in ALL if s.minima]
CONVEX = [quadratic, ravine, ill_conditioned_quadratic(kappa=50.0, name="ravine50")]


def random_points(surface: Surface, shape, seed=0):
    """Uniform random (x, y) arrays of the given shape inside the surface's window."""
    rng = np.random.default_rng(seed)
    (x0, x1), (y0, y1) = surface.window
    return rng.uniform(x0, x1, shape), rng.uniform(y0, y1, shape)


def central_differences(surface: Surface, x, y, h=1e-6):
    """(dJ/dx, dJ/dy) by central differences, with the step scaled to each coordinate."""
    hx = h * np.maximum(1.0, np.abs(x))
    hy = h * np.maximum(1.0, np.abs(y))
    dx = (surface.f(x + hx, y) - surface.f(x - hx, y)) / (2 * hx)
    dy = (surface.f(x, y + hy) - surface.f(x, y - hy)) / (2 * hy)
    return dx, dy


def assert_gradient_matches_differences(surface, x, y):
    dx, dy = surface.grad(x, y)
    fd_x, fd_y = central_differences(surface, x, y)
    # The difference quotient's rounding error is about eps * |J| / h, so the absolute
    # tolerance scales with |J|; the relative one covers the O(h^2) truncation error.
    atol = 1e-8 * (1.0 + np.abs(surface.f(x, y)))
    assert np.all(np.abs(dx - fd_x) <= 1e-6 * np.abs(fd_x) + atol), "d/dx"
    assert np.all(np.abs(dy - fd_y) <= 1e-6 * np.abs(fd_y) + atol), "d/dy"


# --------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", ALL, ids=IDS)
def test_gradient_matches_finite_differences_at_random_points(surface):
    x, y = random_points(surface, (2000,))
    assert_gradient_matches_differences(surface, x, y)


@pytest.mark.parametrize("surface", ALL, ids=IDS)
def test_gradient_matches_finite_differences_on_a_grid(surface):
    X, Y, _ = surface.grid(resolution=61)
    assert_gradient_matches_differences(surface, X, Y)


@pytest.mark.parametrize("surface", ALL, ids=IDS)
def test_gradient_method_matches_grad_at_points(surface):
    x, y = random_points(surface, (20,), seed=1)
    dx, dy = surface.grad(x, y)
    for i in range(len(x)):
        p = np.array([x[i], y[i]])
        g = surface.gradient(p)
        assert g.shape == (2,) and g.dtype == float
        assert g.tolist() == [dx[i], dy[i]]
        assert surface.value(p) == surface.f(x[i], y[i])
        assert isinstance(surface.value(p), float)


# --------------------------------------------------------------------------------------
# Minima, windows, starts
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", WITH_MINIMA, ids=[s.name for s in WITH_MINIMA])
def test_known_minima(surface):
    for m in surface.minima:
        assert surface.value(m) == pytest.approx(surface.f_min, abs=1e-20)
        np.testing.assert_allclose(surface.gradient(m), 0.0, atol=1e-10)


@pytest.mark.parametrize("surface", WITH_MINIMA, ids=[s.name for s in WITH_MINIMA])
def test_minima_are_global_on_the_window(surface):
    """No grid point in the window is below f_min (up to rounding)."""
    _, _, Z = surface.grid(resolution=301)
    assert Z.min() >= surface.f_min - 1e-12


@pytest.mark.parametrize("surface", WITH_MINIMA, ids=[s.name for s in WITH_MINIMA])
def test_minima_are_local_minima(surface):
    """J rises in every direction from each listed minimum."""
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    for mx, my in surface.minima:
        for r in (1e-3, 1e-2):
            ring = surface.f(mx + r * np.cos(angles), my + r * np.sin(angles))
            assert np.all(ring > surface.f_min)


@pytest.mark.parametrize("surface", ALL, ids=IDS)
def test_window_contains_minima_and_start(surface):
    (x0, x1), (y0, y1) = surface.window
    assert x0 < x1 and y0 < y1
    for x, y in [*surface.minima, surface.default_start]:
        assert x0 <= x <= x1 and y0 <= y <= y1


@pytest.mark.parametrize("surface", ALL, ids=IDS)
def test_start_is_not_stationary(surface):
    assert np.linalg.norm(surface.gradient(surface.default_start)) > 1e-3


def test_himmelblau_has_four_distinct_minima():
    minima = np.array(SURFACES["himmelblau"].minima)
    assert len(minima) == 4
    assert min(np.linalg.norm(a - b) for i, a in enumerate(minima) for b in minima[i + 1 :]) > 1


def test_saddle_has_no_minimum_but_a_stationary_point():
    assert saddle.minima == [] and saddle.f_min is None
    assert saddle.gradient([0.0, 0.0]).tolist() == [0.0, 0.0]
    assert saddle.value([0.0, 1.0]) < saddle.value([0.0, 0.0]) < saddle.value([1.0, 0.0])
    assert saddle.value([0.0, 1e3]) < -1e5  # unbounded below along y


def test_condition_number_is_kappa():
    for kappa in (1.0, 20.0, 50.0):
        s = ill_conditioned_quadratic(kappa)
        # the Hessian by differencing the gradient: columns d(grad)/dx and d(grad)/dy
        h = 1e-4
        H = np.column_stack([
            (s.gradient([h, 0.0]) - s.gradient([-h, 0.0])) / (2 * h),
            (s.gradient([0.0, h]) - s.gradient([0.0, -h])) / (2 * h),
        ])
        eig = np.linalg.eigvalsh(H)
        assert eig.max() / eig.min() == pytest.approx(kappa, rel=1e-9)


# --------------------------------------------------------------------------------------
# Vectorisation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", ALL, ids=IDS)
@pytest.mark.parametrize(
    "xshape, yshape, shape",
    [((), (), ()), ((7,), (7,), (7,)), ((4, 5), (4, 5), (4, 5)), ((3, 1), (1, 4), (3, 4)),
     ((), (6,), (6,)), ((2, 3, 4), (4,), (2, 3, 4))],
)
def test_vectorised_shapes(surface, xshape, yshape, shape):
    x, _ = random_points(surface, xshape, seed=2)
    _, y = random_points(surface, yshape, seed=3)
    z = surface.f(x, y)
    dx, dy = surface.grad(x, y)
    assert np.shape(z) == np.shape(dx) == np.shape(dy) == shape
    # each entry equals the scalar evaluation at that point
    X, Y = np.broadcast_arrays(x, y)
    for idx in list(np.ndindex(shape))[:10]:
        assert z[idx] == surface.f(float(X[idx]), float(Y[idx]))
        assert dx[idx] == surface.grad(float(X[idx]), float(Y[idx]))[0]
        assert dy[idx] == surface.grad(float(X[idx]), float(Y[idx]))[1]


@pytest.mark.parametrize("surface", ALL, ids=IDS)
def test_accepts_python_numbers_and_lists(surface):
    assert np.isfinite(surface.f(1, 0.5))
    assert np.shape(surface.f([0.1, 0.2], [0.3, 0.4])) == (2,)


@pytest.mark.parametrize("bad", [[1.0], [1.0, 2.0, 3.0], [[1.0, 2.0]]])
def test_point_api_rejects_other_shapes(bad):
    with pytest.raises(ValueError, match=r"Invalid point: shape"):
        quadratic.value(bad)
    with pytest.raises(ValueError, match=r"Invalid point: shape"):
        quadratic.gradient(bad)


# --------------------------------------------------------------------------------------
# Plotting helpers, registry, factory
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", ALL, ids=IDS)
def test_contour_levels(surface):
    _, _, Z = surface.grid()
    levels = surface.contour_levels(15)
    assert levels.shape == (15,)
    assert np.all(np.diff(levels) > 0)
    assert Z.min() <= levels[0] and levels[-1] == pytest.approx(Z.max(), rel=1e-12)
    if surface.f_min is not None:
        gaps = levels - surface.f_min
        ratios = gaps[1:] / gaps[:-1]  # log-spaced: a constant ratio
        np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)


def test_registry():
    assert {"quadratic", "ravine", "rosenbrock", "rastrigin", "beale", "himmelblau",
            "saddle"} <= set(SURFACES)
    for name, s in SURFACES.items():
        assert s.name == name and s.formula and s.description
    with pytest.raises(dataclasses.FrozenInstanceError):
        quadratic.f_min = 1.0


def test_named_minima():
    assert SURFACES["rosenbrock"].minima == [(1.0, 1.0)]
    assert SURFACES["rastrigin"].minima == [(0.0, 0.0)]
    assert SURFACES["beale"].minima == [(3.0, 0.5)]
    assert (3.0, 2.0) in SURFACES["himmelblau"].minima


@pytest.mark.parametrize("kappa", [0.5, -1.0, float("inf"), "20"])
def test_ill_conditioned_quadratic_rejects_bad_kappa(kappa):
    with pytest.raises(ValueError, match=r"Invalid kappa"):
        ill_conditioned_quadratic(kappa)


def test_rastrigin_has_many_local_minima():
    """Gradient descent from a start off the origin stops in a local, non-global minimum."""
    s = SURFACES["rastrigin"]
    p = np.array(s.default_start)
    for _ in range(500):
        p = p - 1e-3 * s.gradient(p)
    assert np.linalg.norm(s.gradient(p)) < 1e-6
    assert s.value(p) > s.f_min + 1.0


# --------------------------------------------------------------------------------------
# Gradient descent sanity
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", CONVEX, ids=[s.name for s in CONVEX])
def test_gradient_descent_decreases_convex_surfaces(surface):
    """Plain GD with alpha = 1.8 / L (L = largest curvature) decreases J at every step.

    For a quadratic each coordinate is multiplied by 1 - alpha * lambda, |.| < 1 when
    alpha < 2 / L, so every term of J shrinks; 1.8 / L makes the steep direction
    overshoot (the zig-zag) and still converges.
    """
    L = max(surface.gradient([1.0, 0.0])[0], surface.gradient([0.0, 1.0])[1])
    alpha = 1.8 / L
    p = np.array(surface.default_start)
    values = [surface.value(p)]
    for _ in range(2000):
        p = p - alpha * surface.gradient(p)
        values.append(surface.value(p))
    assert np.all(np.diff(values) <= 0)
    assert values[-1] < 1e-8 * values[0]
    np.testing.assert_allclose(p, surface.minima[0], atol=1e-4)


@pytest.mark.parametrize("surface", ALL, ids=IDS)
def test_a_small_step_downhill_decreases_every_surface(surface):
    p = np.array(surface.default_start)
    g = surface.gradient(p)
    step = 1e-4 / np.linalg.norm(g)
    assert surface.value(p - step * g) < surface.value(p)
