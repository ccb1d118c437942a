"""Central finite differences of a loss over a dict of parameter arrays (test helper)."""

import numpy as np


def fd_gradients(loss_fn, params: dict, h: float = 1e-6) -> dict:
    """``{'d' + key: array}`` of central differences of ``loss_fn(params)``, entry by entry."""
    out = {}
    for key, value in params.items():
        grad = np.zeros_like(value, dtype=float)
        for idx in np.ndindex(value.shape):
            plus = {k: v.copy() for k, v in params.items()}
            minus = {k: v.copy() for k, v in params.items()}
            plus[key][idx] += h
            minus[key][idx] -= h
            grad[idx] = (loss_fn(plus) - loss_fn(minus)) / (2 * h)
        out["d" + key] = grad
    return out
