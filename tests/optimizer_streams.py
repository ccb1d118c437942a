"""What the optimizer tests feed every optimizer: random parameters, a stream of noisy
gradients at very different scales per array, and the check that one optimizer gives the
same steps on NumPy arrays and on torch tensors (tests/test_optimizers.py and
tests/test_beyond_adam.py)."""

from __future__ import annotations

import numpy as np
import torch
from numpy.testing import assert_allclose

#: the gradient's scale for the 1st, 2nd, … array of ``shapes``
SCALES = [1.0, 0.01, 10.0, 0.1, 3.0, 0.3]


def random_params(seed, shapes):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s) for k, s in shapes.items()}


def gradient_stream(seed, shapes):
    """Gradients of 1/2 |theta - target|^2 plus noise, at different scales per array."""
    rng = np.random.default_rng(seed + 1000)
    targets = {k: rng.standard_normal(s) for k, s in shapes.items()}
    scales = dict(zip(shapes, SCALES))

    def grads(params):
        return {"d" + k: scales[k] * (params[k] - targets[k] + rng.standard_normal(s))
                for k, s in shapes.items()}
    return grads


def bound_to(default_shapes):
    """``random_params`` and ``gradient_stream`` whose ``shapes`` default to a test
    file's own: ``random_params, gradient_stream = bound_to(SHAPES)``."""
    def params(seed, shapes=default_shapes):
        return random_params(seed, shapes)

    def stream(seed, shapes=default_shapes):
        return gradient_stream(seed, shapes)
    return params, stream


def assert_same_on_numpy_and_torch(np_opt, t_opt, shapes, steps, rtol, atol, seed=7):
    """``np_opt`` on float64 arrays and ``t_opt`` (an identical optimizer) on float64
    tensors take the same steps, keep their state as tensors and return their params."""
    params = random_params(seed, shapes)
    tensors = {k: torch.tensor(p, dtype=torch.float64) for k, p in params.items()}
    grads = gradient_stream(seed, shapes)
    for _ in range(steps):
        g = grads(params)
        assert np_opt.update(params, g) is params
        assert t_opt.update(tensors, {d: torch.from_numpy(a) for d, a in g.items()}) is tensors
    for k in params:
        assert isinstance(tensors[k], torch.Tensor) and tensors[k].dtype == torch.float64
        assert_allclose(params[k], tensors[k].numpy(), rtol=rtol, atol=atol)
    for buf in (b for s in t_opt.state.values() for b in s.values() if hasattr(b, "shape")):
        assert isinstance(buf, torch.Tensor)
