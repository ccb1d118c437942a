r"""8.4–8.6 The optimizers: SGD, momentum, RMSprop, AdaGrad, Adam and AdamW.

The chapter builds each optimizer from the one before, in the book's notation
(:mod:`optbook.notation`): :math:`\theta` the parameters, :math:`g_t` the gradient at
step :math:`t = 1, 2, \dots`, :math:`\alpha` the learning rate.

1. **SGD** steps against the gradient: :math:`\theta \leftarrow \theta - \alpha g`.
2. **Momentum** steps along :math:`m`, an exponentially weighted average (8.3) of the
   gradients, so oscillating components cancel and steady ones build up.
3. **RMSprop** divides by :math:`\sqrt{v}`, where :math:`v` averages the *squared*
   gradients: every coordinate gets its own step size.  **AdaGrad** does the same with
   the plain sum :math:`G`, so its steps only ever shrink.
4. **Adam** combines both moments, :math:`m` and :math:`v`, and divides out their bias
   toward the zero start (:math:`\hat m_t`, :math:`\hat v_t`).
5. **AdamW** adds weight decay *decoupled* from the gradient.

Every class has the chapter's API: ``opt.update(params, grads)`` updates the dict
``params`` (``{'W': ..., 'b': ...}``) in place, using ``grads['dW']``, ``grads['db']``,
and returns it.  The arrays may be NumPy arrays or PyTorch tensors (CPU or GPU; pass
``p.detach()``, or call under ``torch.no_grad()``, for tensors that require grad).
``lr`` is a number or a *schedule*: any callable ``lr(k)`` of the number ``k`` of
updates already applied (``k = 0`` on the first call), for instance one from
:mod:`optbook.schedules`.

As in ``torch.optim`` and ``optax``, a class only checks its inputs and keeps state;
the maths for one array is a small in-place function (:func:`adam_step`, ...) that you
can call on its own, written with operators that mean the same for NumPy and torch.

The classes are fast too: :meth:`Optimizer.update` hands each step to
:mod:`optbook.fast`, which performs exactly these functions' operations, in the same
order, in place and without temporaries (in cache-sized chunks, or as one generated C
loop over every array of the step), so the results are bitwise those of the readable
functions.  Appendix A, "How fast can an optimizer step be?", explains how.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from optbook._checks import is_real as _is_real
from optbook.fast import engine, kernels

__all__ = ["GradientError", "Optimizer", "SGD", "MomentumSGD", "RMSprop", "AdaGrad",
           "Adam", "AdamW", "OPTIMIZERS", "sgd_step", "momentum_step", "rmsprop_step",
           "adagrad_step", "adam_step", "adamw_step", "zeros_like"]


class GradientError(ValueError):
    """A gradient is missing, has no parameter, or does not fit its parameter."""


# ----------------------------------------------------------- the maths, one array at a time
def sgd_step(theta, g, lr):
    r""":math:`\theta \leftarrow \theta - \alpha g`, in place."""
    theta -= lr * g


def momentum_step(theta, g, m, lr, beta, nesterov=False):
    r""":math:`m \leftarrow \beta m + (1-\beta) g`, then step along :math:`m` (or, with
    ``nesterov``, along :math:`\beta m + (1-\beta) g`), in place."""
    m *= beta
    m += (1 - beta) * g
    if nesterov:
        theta -= lr * (beta * m + (1 - beta) * g)
    else:
        theta -= lr * m


def rmsprop_step(theta, g, v, lr, beta, epsilon):
    r""":math:`v \leftarrow \beta v + (1-\beta) g^2`;
    :math:`\theta \leftarrow \theta - \alpha g / (\sqrt v + \varepsilon)`, in place."""
    v *= beta
    v += (1 - beta) * g * g
    theta -= lr * g / (v**0.5 + epsilon)


def adagrad_step(theta, g, G, lr, epsilon):
    r""":math:`G \leftarrow G + g^2`;
    :math:`\theta \leftarrow \theta - \alpha g / (\sqrt G + \varepsilon)`, in place."""
    G += g * g
    theta -= lr * g / (G**0.5 + epsilon)


def adam_step(theta, g, m, v, t, lr, beta1, beta2, epsilon):
    r"""One Adam step at step ``t`` (starting at 1), in place.  Returns
    :math:`(\hat m_t, \hat v_t)`, which the chapter's worked example prints."""
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    theta -= lr * m_hat / (v_hat**0.5 + epsilon)
    return m_hat, v_hat


def adamw_step(theta, g, m, v, t, lr, beta1, beta2, epsilon, weight_decay):
    r""":math:`\theta \leftarrow \theta - \alpha\lambda\theta`, then :func:`adam_step`."""
    theta *= 1 - lr * weight_decay
    return adam_step(theta, g, m, v, t, lr, beta1, beta2, epsilon)


def zeros_like(x):
    """A zero buffer with ``x``'s shape and dtype (and device, for a torch tensor)."""
    return x.new_zeros(x.shape) if _is_torch(x) else np.zeros_like(x)


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _check_lr(lr):
    if callable(lr):
        return lr
    if not (_is_real(lr) and 0 < lr < math.inf):
        raise ValueError(f"Invalid lr: {lr} (must satisfy 0 < lr < inf, or be a schedule)")
    return float(lr)


def _check_beta(name, beta):
    if not (_is_real(beta) and 0 <= beta < 1):
        raise ValueError(f"Invalid {name}: {beta} (must satisfy 0 <= {name} < 1)")
    return float(beta)


def _check_nonnegative(name, value):
    if not (_is_real(value) and 0 <= value < math.inf):
        raise ValueError(f"Invalid {name}: {value} (must satisfy 0 <= {name} < inf)")
    return float(value)


def _adam_hyperparameters(beta1, beta2, epsilon):
    return {"beta1": _check_beta("beta1", beta1), "beta2": _check_beta("beta2", beta2),
            "epsilon": _check_nonnegative("epsilon", epsilon)}


class Optimizer:
    """What every optimizer shares: the learning rate or schedule, checking ``grads``
    against ``params``, lazily created per-key state and ``state_dict`` plumbing.

    A subclass passes its checked hyperparameters to ``__init__``, names its per-key
    buffers in ``buffers`` and calls its step function in ``apply``.  That is all a new
    optimizer needs.  For speed it may also give a ``kernel`` (its step function
    rewritten with ``out=``, see :mod:`optbook.fast.kernels`) and
    ``constants(state, lr)``, the scalars the kernel takes for one key; :meth:`update`
    then has :mod:`optbook.fast` run the kernel chunk by chunk through the optimizer's
    scratch buffers (or as one C loop), and ``apply`` only where the kernel cannot go.
    (A subclass that overrides ``apply`` but not ``kernel`` gets ``apply``.)
    """

    buffers: tuple[str, ...] = ()  #: per-parameter state arrays, e.g. ("m", "v")
    kernel = None  #: the fast version of ``apply``'s step function, or None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kernel" in cls.__dict__:  # the kernel mirrors this class's apply
            cls._kernel_mirrors = cls.apply

    def __init__(self, lr, **hyperparameters):
        self.lr = _check_lr(lr)
        self._names = ("lr", *hyperparameters)
        self.__dict__.update(hyperparameters)
        self.t = 0  #: updates applied so far; the schedule is called as lr(t)
        self.state = {}  #: key -> that parameter's buffers, created on its first update
        self._scratch = {}  # optbook.fast's scratch buffers, kept from step to step

    def current_lr(self) -> float:
        """The :math:`\\alpha` of the next update: ``lr``, or ``lr(k)`` with ``k = self.t``."""
        if not callable(self.lr):
            return self.lr
        alpha = self.lr(self.t)
        if not (_is_real(alpha) and 0 <= alpha < math.inf):
            raise ValueError(f"lr schedule returned {alpha} at k={self.t} "
                             "(must be a finite number >= 0)")
        return float(alpha)

    def init_state(self, theta) -> dict:
        return {name: zeros_like(theta) for name in self.buffers}

    def apply(self, theta, g, state, lr) -> None:
        raise NotImplementedError

    def constants(self, state, lr) -> tuple:
        """The scalars ``kernel`` takes for one parameter (advancing its state, as
        ``apply`` would)."""
        raise NotImplementedError

    def update(self, params: dict, grads: dict) -> dict:
        """Update every array in ``params`` in place and return ``params``.  All checks
        come first, so a call that raises leaves ``params`` and the state unchanged."""
        self._check(params, grads)
        alpha = self.current_lr()
        for key, theta in params.items():
            if key not in self.state:
                self.state[key] = self.init_state(theta)
        # For every key: self.apply(params[key], grads["d" + key], self.state[key], alpha),
        # run by optbook.fast with the same operations, in place and without temporaries.
        engine.update(self, params, grads, alpha)
        self.t += 1
        return params


    def _check(self, params, grads):
        state, buffers = self.state, self.buffers
        for key, theta in params.items():
            # the common case first, quickly: float NumPy arrays whose shapes all match
            g = grads.get("d" + key) if hasattr(grads, "get") else None
            if (type(theta) is np.ndarray and type(g) is np.ndarray
                    and theta.dtype.kind == "f" and g.shape == theta.shape
                    and (key not in state or all(
                        type(b := state[key].get(name)) is np.ndarray and b.shape == theta.shape
                        for name in buffers))):
                continue
            self._check_one(key, theta, grads)
        for gkey in grads:
            if not (isinstance(gkey, str) and gkey[:1] == "d" and gkey[1:] in params):
                raise GradientError(f"gradient {gkey!r} has no parameter (gradients are "
                                    f"named 'd' + key: {sorted('d' + k for k in params)})")

    def _check_one(self, key, theta, grads):
        """Every check of one parameter, with the error that names what is wrong."""
        kind = type(theta).__name__
        if not (isinstance(theta, np.ndarray) or _is_torch(theta)):
            raise ValueError(f"parameter {key!r} is a {kind}; it must be a NumPy "
                             "array or torch tensor, which can be updated in place")
        if not (theta.is_floating_point() if _is_torch(theta)
                else np.issubdtype(theta.dtype, np.floating)):
            raise ValueError(f"parameter {key!r} has dtype {theta.dtype}; the in-place "
                             "update needs a floating-point dtype")
        if getattr(theta, "requires_grad", False):
            import torch  # only reached for a torch tensor, so torch is loaded

            if torch.is_grad_enabled():
                raise ValueError(f"parameter {key!r} requires grad: update it under "
                                 f"torch.no_grad(), or pass {key}.detach()")
        if "d" + key not in grads:
            raise GradientError(f"no gradient {'d' + key!r} for parameter {key!r}")
        g = grads["d" + key]
        if _is_torch(g) != _is_torch(theta) or not hasattr(g, "shape"):
            raise GradientError(f"gradient {'d' + key!r} is a {type(g).__name__} but "
                                f"parameter {key!r} is a {kind}")
        if tuple(g.shape) != tuple(theta.shape):
            raise GradientError(f"gradient {'d' + key!r} has shape {tuple(g.shape)} but "
                                f"parameter {key!r} has shape {tuple(theta.shape)}")
        for name in self.buffers:  # e.g. after loading another model's state dict
            buf = self.state.get(key, {}).get(name, theta)
            if tuple(buf.shape) != tuple(theta.shape) or _is_torch(buf) != _is_torch(theta):
                raise ValueError(f"state {name!r} of parameter {key!r} does not fit it: "
                                 f"{type(buf).__name__} {tuple(buf.shape)} vs "
                                 f"{kind} {tuple(theta.shape)}")

    def state_dict(self) -> dict:
        """A deep copy of everything needed to resume: hyperparameters, ``t``, buffers."""
        return copy.deepcopy({"optimizer": type(self).__name__,
                              "hyperparameters": {n: getattr(self, n) for n in self._names},
                              "t": self.t, "state": self.state})

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` saved, so the next update continues exactly."""
        name = state_dict.get("optimizer") if isinstance(state_dict, dict) else None
        if name != type(self).__name__:
            raise ValueError(f"cannot load a state dict of optimizer {name!r} "
                             f"into {type(self).__name__}")
        fresh = type(self)(**state_dict["hyperparameters"])  # validates them again
        self.__dict__.update(fresh.__dict__)
        self.t = int(state_dict["t"])
        self.state = copy.deepcopy(state_dict["state"])

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._names)
        return f"{type(self).__name__}({args})"


# ------------------------------------------------------------------------------ optimizers
class SGD(Optimizer):
    r"""Plain (mini-batch) gradient descent.  Let :math:`\alpha` be ``lr``.

    .. math::

        \theta_t = \theta_{t-1} - \alpha\, g_t

    >>> params = {'w': np.array([1.0, -2.0])}
    >>> SGD(lr=0.1).update(params, {'dw': 2 * params['w']})['w']   # f(w) = |w|^2
    array([ 0.8, -1.6])

    PyTorch: ``torch.optim.SGD(params, lr=α)``.
    """

    def __init__(self, lr=0.01):
        super().__init__(lr)

    def apply(self, theta, g, state, lr):
        sgd_step(theta, g, lr)

    kernel = staticmethod(kernels.sgd_kernel)

    def constants(self, state, lr):
        return (lr,)


class MomentumSGD(Optimizer):
    r"""Gradient descent with momentum, in the chapter's averaged form.  Let
    :math:`\alpha` be ``lr`` and :math:`\beta` the argument ``beta``.

    .. math::

        m_0 = 0, \qquad m_t = \beta m_{t-1} + (1-\beta)\, g_t, \qquad
        \theta_t = \theta_{t-1} - \alpha\, m_t

    With ``nesterov=True`` the step looks ahead along the updated average:
    :math:`\theta_t = \theta_{t-1} - \alpha(\beta m_t + (1-\beta) g_t)`.

    >>> opt, params = MomentumSGD(lr=0.1, beta=0.9), {'w': np.array([1.0])}
    >>> for _ in range(2):
    ...     params = opt.update(params, {'dw': np.array([1.0])})
    >>> opt.state['w']['m'], params['w']    # m = 0.1, then 0.19
    (array([0.19]), array([0.971]))

    PyTorch: ``torch.optim.SGD(params, lr=α*(1-β), momentum=β)`` (``dampening=0``), and
    ``nesterov=True`` likewise.  Torch's buffer :math:`b` starts as :math:`b_1 = g_1`
    and accumulates undamped, :math:`b_t = \beta b_{t-1} + g_t`, so by induction
    :math:`b_t = m_t/(1-\beta)`; its step :math:`\alpha(1-\beta) b_t` is
    :math:`\alpha m_t`.  Its Nesterov step :math:`\alpha(1-\beta)(g_t + \beta b_t)` is
    :math:`\alpha((1-\beta) g_t + \beta m_t)`.  With a schedule, give torch
    :math:`\alpha_k(1-\beta)` at every step.

    Note: ``torch.optim.SGD(lr=α, momentum=β)`` takes steps :math:`1/(1-\beta)` times
    larger (10 times for β = 0.9) than the chapter's; and ``dampening=β`` does not fix
    it, because torch never dampens the first gradient (:math:`b_1 = g_1`).
    """

    buffers = ("m",)

    def __init__(self, lr=0.01, beta=0.9, nesterov=False):
        if not isinstance(nesterov, bool):
            raise ValueError(f"Invalid nesterov: {nesterov!r} (must be True or False)")
        super().__init__(lr, beta=_check_beta("beta", beta), nesterov=nesterov)

    def apply(self, theta, g, state, lr):
        momentum_step(theta, g, state["m"], lr, self.beta, self.nesterov)

    kernel = staticmethod(kernels.momentum_kernel)

    def constants(self, state, lr):
        return lr, self.beta, self.nesterov


class RMSprop(Optimizer):
    r"""RMSprop: divide each coordinate's step by the root mean square of its recent
    gradients.  Let :math:`\alpha` be ``lr`` and :math:`\beta, \varepsilon` the
    arguments ``beta``, ``epsilon``.

    .. math::

        v_0 = 0, \qquad v_t = \beta v_{t-1} + (1-\beta)\, g_t^2, \qquad
        \theta_t = \theta_{t-1} - \alpha \frac{g_t}{\sqrt{v_t} + \varepsilon}

    Once :math:`v \approx g^2` the step is about :math:`\alpha\,\mathrm{sign}(g)`: a
    coordinate whose gradients stay near 10 has effective rate :math:`\alpha/10`, one
    near 0.01 has :math:`100\alpha`.

    >>> opt, params = RMSprop(lr=0.01), {'w': np.array([1.0])}
    >>> opt.update(params, {'dw': np.array([10.0])})['w'].round(6)  # v = 0.1
    array([0.683772])

    PyTorch: ``torch.optim.RMSprop(params, lr=α, alpha=β, eps=ε)`` (``momentum=0``,
    ``centered=False``); torch's ``alpha`` is our :math:`\beta`, and it too adds
    :math:`\varepsilon` outside the square root.

    Note: torch's defaults are ``lr=0.01, alpha=0.99``; the chapter's are
    :math:`\alpha = 0.001, \beta = 0.999`.
    """

    buffers = ("v",)

    def __init__(self, lr=0.001, beta=0.999, epsilon=1e-8):
        super().__init__(lr, beta=_check_beta("beta", beta),
                         epsilon=_check_nonnegative("epsilon", epsilon))

    def apply(self, theta, g, state, lr):
        rmsprop_step(theta, g, state["v"], lr, self.beta, self.epsilon)

    kernel = staticmethod(kernels.rmsprop_kernel)

    def constants(self, state, lr):
        return lr, self.beta, self.epsilon


class AdaGrad(Optimizer):
    r"""AdaGrad: divide by the root of the *sum* of all squared gradients so far.  Let
    :math:`\alpha` be ``lr`` and :math:`\varepsilon` the argument ``epsilon``.

    .. math::

        G_0 = 0, \qquad G_t = G_{t-1} + g_t^2, \qquad
        \theta_t = \theta_{t-1} - \alpha \frac{g_t}{\sqrt{G_t} + \varepsilon}

    :math:`G` never shrinks, so the steps decay like :math:`1/\sqrt t`: good for sparse
    features, often too cautious late in training (RMSprop's fix is to average).

    >>> opt, params = AdaGrad(lr=0.5), {'w': np.array([1.0])}
    >>> for _ in range(2):
    ...     params = opt.update(params, {'dw': np.array([3.0])})
    >>> opt.state['w']['G'], params['w'].round(6)   # steps 0.5, then 0.5/sqrt(2)
    (array([18.]), array([0.146447]))

    PyTorch: ``torch.optim.Adagrad(params, lr=α, eps=ε)`` with its defaults
    ``lr_decay=0`` and ``initial_accumulator_value=0``.

    Note: torch's default is ``eps=1e-10``, the chapter's :math:`10^{-8}`; pass it.
    """

    buffers = ("G",)

    def __init__(self, lr=0.01, epsilon=1e-8):
        super().__init__(lr, epsilon=_check_nonnegative("epsilon", epsilon))

    def apply(self, theta, g, state, lr):
        adagrad_step(theta, g, state["G"], lr, self.epsilon)

    kernel = staticmethod(kernels.adagrad_kernel)

    def constants(self, state, lr):
        return lr, self.epsilon


class Adam(Optimizer):
    r"""Adam: momentum's :math:`m` over RMSprop's :math:`\sqrt v`, both bias-corrected.
    Let :math:`\alpha` be ``lr`` and :math:`\beta_1, \beta_2, \varepsilon` the arguments
    ``beta1``, ``beta2``, ``epsilon``.

    .. math::

        m_0 = v_0 = 0, \qquad
        m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2,

        \hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^t},
        \qquad \theta_t = \theta_{t-1} - \alpha \frac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon}

    The chapter's worked example, :math:`f(w) = w^2` from :math:`w = 5`, :math:`\alpha = 0.1`:

    >>> opt, params = Adam(lr=0.1), {'w': np.array(5.0)}
    >>> for _ in range(3):
    ...     params = opt.update(params, {'dw': 2 * params['w']})
    ...     print(round(float(params['w']), 4))
    4.9
    4.8001
    4.7002

    Each key keeps its own step counter ``state[key]['t']`` (torch's ``'step'``), so a
    parameter added later still starts its bias correction at :math:`t = 1`.

    PyTorch: ``torch.optim.Adam(params, lr=α, betas=(β₁, β₂), eps=ε)``, same defaults.
    Torch evaluates :math:`\theta - \frac{\alpha}{1-\beta_1^t}\,
    m_t / (\sqrt{v_t}/\sqrt{1-\beta_2^t} + \varepsilon)`, the same number rearranged;
    the two agree to rounding error.

    Note: Keras/TensorFlow add :math:`\varepsilon` to the *uncorrected*
    :math:`\sqrt{v_t}` (the paper's :math:`\hat\varepsilon`), which differs in the
    first steps.  ``torch.optim.Adam(weight_decay=λ)`` is L2 regularisation: it feeds
    :math:`g_t + \lambda\theta_{t-1}` to the moments; for decoupled decay see :class:`AdamW`.
    """

    buffers = ("m", "v")

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
        super().__init__(lr, **_adam_hyperparameters(beta1, beta2, epsilon))

    def init_state(self, theta):
        return {"t": 0, **super().init_state(theta)}

    def apply(self, theta, g, state, lr):
        state["t"] += 1
        adam_step(theta, g, state["m"], state["v"], state["t"], lr,
                  self.beta1, self.beta2, self.epsilon)

    kernel = staticmethod(kernels.adam_kernel)

    def constants(self, state, lr):
        state["t"] += 1
        t = state["t"]
        return lr, self.beta1, self.beta2, self.epsilon, 1 - self.beta1**t, 1 - self.beta2**t


class AdamW(Adam):
    r"""Adam with decoupled weight decay.  Let :math:`\alpha` be ``lr`` and
    :math:`\beta_1, \beta_2, \varepsilon, \lambda` the arguments ``beta1``, ``beta2``,
    ``epsilon``, ``weight_decay``.  First shrink the weights, then take Adam's step
    (:math:`m_t, v_t, \hat m_t, \hat v_t` exactly as in :class:`Adam`):

    .. math::

        \theta' = \theta_{t-1} - \alpha\lambda\,\theta_{t-1}, \qquad
        \theta_t = \theta' - \alpha \frac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon}

    >>> opt, params = AdamW(lr=0.1, weight_decay=0.5), {'w': np.array([2.0])}
    >>> opt.update(params, {'dw': np.array([0.0])})['w']   # no gradient: only decay
    array([1.9])

    PyTorch: ``torch.optim.AdamW(params, lr=α, betas=(β₁, β₂), eps=ε, weight_decay=λ)``,
    which multiplies :math:`\theta` by :math:`1-\alpha\lambda` before the Adam step;
    the defaults agree (λ = 0.01).

    Note: L2 regularisation (``torch.optim.Adam(weight_decay=λ)``) adds
    :math:`\lambda\theta` to the *gradient*, so the decay passes through
    :math:`\hat m_t/\sqrt{\hat v_t}` and weights whose gradients are large are
    decayed less.  Decoupled decay shrinks every weight by the same factor.  As in torch the
    decay is scaled by :math:`\alpha` (and so follows a schedule); the AdamW paper
    writes :math:`\eta_t\lambda\theta` with a separate schedule multiplier :math:`\eta_t`.
    """

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.01):
        Optimizer.__init__(self, lr, **_adam_hyperparameters(beta1, beta2, epsilon),
                           weight_decay=_check_nonnegative("weight_decay", weight_decay))

    def apply(self, theta, g, state, lr):
        state["t"] += 1
        adamw_step(theta, g, state["m"], state["v"], state["t"], lr,
                   self.beta1, self.beta2, self.epsilon, self.weight_decay)

    kernel = staticmethod(kernels.adamw_kernel)

    def constants(self, state, lr):
        return (1 - lr * self.weight_decay, *super().constants(state, lr))


OPTIMIZERS = {"SGD": SGD, "Momentum": MomentumSGD, "RMSprop": RMSprop,
              "AdaGrad": AdaGrad, "Adam": Adam, "AdamW": AdamW}
