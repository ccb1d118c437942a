"""The optimizers' step functions rewritten with ``out=``: the same maths, fast.

Each kernel below is its step function in :mod:`optbook.optimizers`, operation for
operation and in the same order, rewritten with ``out=``: the first buffer argument is
updated in place, and the two scratch buffers ``s`` and ``r`` hold what the readable
function would have put in new arrays.  ``xp`` supplies the operations: NumPy's ufuncs
(:data:`NUMPY_OPS`), or torch's functions of the same names (:func:`torch_ops`).  Same
operations in the same order means the same rounding, so the result is bitwise that of
the readable function.  :mod:`optbook.fast.engine` runs them chunk by chunk, and
:mod:`optbook.fast.onepass` traces them into one C loop.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sgd_kernel", "momentum_kernel", "rmsprop_kernel", "adagrad_kernel", "adam_kernel",
           "adamw_kernel", "NUMPY_OPS", "torch_ops"]


def sgd_kernel(xp, c, theta, g, s, r):
    (lr,) = c
    xp.multiply(g, lr, out=s)                   # lr * g
    xp.subtract(theta, s, out=theta)            # theta -= lr * g


def momentum_kernel(xp, c, theta, g, m, s, r):
    lr, beta, nesterov = c
    xp.multiply(m, beta, out=m)                 # m *= beta
    xp.multiply(g, 1 - beta, out=s)             # (1 - beta) * g
    xp.add(m, s, out=m)                         # m += (1 - beta) * g
    if nesterov:
        xp.multiply(m, beta, out=r)             # beta * m
        xp.add(r, s, out=r)                     # beta * m + (1 - beta) * g
        xp.multiply(r, lr, out=r)               # lr * (...)
        xp.subtract(theta, r, out=theta)
    else:
        xp.multiply(m, lr, out=s)               # lr * m
        xp.subtract(theta, s, out=theta)


def _scaled_step(xp, theta, g, acc, s, r, lr, epsilon):
    """theta -= lr * g / (acc**0.5 + epsilon): the last line of RMSprop and AdaGrad."""
    xp.multiply(g, lr, out=s)                   # lr * g
    xp.root(acc, out=r)                         # acc**0.5
    xp.add(r, epsilon, out=r)                   # acc**0.5 + epsilon
    xp.divide(s, r, out=s)
    xp.subtract(theta, s, out=theta)


def rmsprop_kernel(xp, c, theta, g, v, s, r):
    lr, beta, epsilon = c
    xp.multiply(v, beta, out=v)                 # v *= beta
    xp.multiply(g, 1 - beta, out=s)             # (1 - beta) * g
    xp.multiply(s, g, out=s)                    # (1 - beta) * g * g
    xp.add(v, s, out=v)                         # v += (1 - beta) * g * g
    _scaled_step(xp, theta, g, v, s, r, lr, epsilon)


def adagrad_kernel(xp, c, theta, g, G, s, r):
    lr, epsilon = c
    xp.multiply(g, g, out=s)                    # g * g
    xp.add(G, s, out=G)                         # G += g * g
    _scaled_step(xp, theta, g, G, s, r, lr, epsilon)


def adam_kernel(xp, c, theta, g, m, v, s, r):
    lr, beta1, beta2, epsilon, bias1, bias2 = c  # bias_i = 1 - beta_i**t
    xp.multiply(m, beta1, out=m)                # m *= beta1
    xp.multiply(g, 1 - beta1, out=s)            # (1 - beta1) * g
    xp.add(m, s, out=m)                         # m += (1 - beta1) * g
    xp.multiply(v, beta2, out=v)                # v *= beta2
    xp.multiply(g, 1 - beta2, out=s)            # (1 - beta2) * g
    xp.multiply(s, g, out=s)                    # (1 - beta2) * g * g
    xp.add(v, s, out=v)                         # v += (1 - beta2) * g * g
    xp.divide(m, bias1, out=s)                  # m_hat
    xp.divide(v, bias2, out=r)                  # v_hat
    xp.root(r, out=r)                           # v_hat**0.5
    xp.add(r, epsilon, out=r)                   # v_hat**0.5 + epsilon
    xp.multiply(s, lr, out=s)                   # lr * m_hat
    xp.divide(s, r, out=s)                      # lr * m_hat / (v_hat**0.5 + epsilon)
    xp.subtract(theta, s, out=theta)


def adamw_kernel(xp, c, theta, g, m, v, s, r):
    xp.multiply(theta, c[0], out=theta)         # theta *= 1 - lr * weight_decay
    adam_kernel(xp, c[1:], theta, g, m, v, s, r)


class _Ops:
    """The five operations the kernels use, for one array library."""

    def __init__(self, multiply, add, subtract, divide, root):
        self.multiply, self.add, self.subtract, self.divide = multiply, add, subtract, divide
        self.root = root  # x**0.5, computed the way the ``**`` operator computes it


# NumPy's ``x**0.5`` is np.sqrt (the ``**`` operator special-cases the exponent 0.5).
NUMPY_OPS = _Ops(np.multiply, np.add, np.subtract, np.divide, np.sqrt)
_TORCH_OPS = None


def torch_ops():
    global _TORCH_OPS
    if _TORCH_OPS is None:
        import torch

        _TORCH_OPS = _Ops(torch.mul, torch.add, torch.sub, torch.div,
                          lambda x, out: torch.pow(x, 0.5, out=out))  # what x**0.5 calls
    return _TORCH_OPS
