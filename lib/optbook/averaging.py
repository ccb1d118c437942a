r"""8.12 Choosing settings in practice: weight averaging, and what "eval weights" are.

An optimizer with a learning rate that does not go to zero never settles: mini-batch
noise keeps the weights :math:`\theta_t` moving around the bottom of the valley.  An
*average of recent weights* sits nearer the bottom than any single iterate, costs one
extra copy of the parameters, and changes nothing in training.  Two averages are in use:

* the **exponential moving average** (EMA) of the weights, the 8.3 average applied to
  :math:`\theta` instead of to a gradient,

  .. math::

      \bar\theta_t = \beta\,\bar\theta_{t-1} + (1-\beta)\,\theta_t ,

  started at the weights it is created with (so no bias correction is needed) and
  updated after every optimizer step; it forgets with a window of about
  :math:`1/(1-\beta)` steps (:class:`EMA`);
* **stochastic weight averaging** (SWA; Izmailov et al., 2018): the plain mean of the
  weights collected from step ``swa_start`` on (in the paper once per epoch, with a
  constant or cyclical learning rate),
  :math:`\bar\theta_n = \bar\theta_{n-1} + (\theta - \bar\theta_{n-1})/n`
  (:class:`SWA`).  ``torch.optim.swa_utils.AveragedModel`` computes the same mean, and
  the tests check the two agree.

So a training run carries two sets of weights.  The **train weights** are the ones the
optimizer steps and the gradients are taken at; the **eval weights** are the ones you
evaluate, checkpoint for release and deploy -- here the average.  Only the train weights
feed the next step: averaging is read-only with respect to training.  Buffers that are
statistics of activations (BatchNorm's running mean and variance) belong to the train
weights; for the averaged weights recompute them with one pass over the data
(``torch.optim.swa_utils.update_bn``).  The chapter's models have no such buffers, and
both classes average parameters only (as ``AveragedModel`` does by default).
"""

from __future__ import annotations

import copy

from ._checks import check_int, is_real

__all__ = ["EMA", "SWA", "averaged_copy"]


def _params(model):
    return [p for p in model.parameters()]


class _Average:
    """Shared parts: a detached copy of the parameters, and an eval-weights model."""

    def __init__(self, model):
        import torch

        with torch.no_grad():
            self.average = [p.detach().clone() for p in _params(model)]
        self.updates = 0

    def _check(self, model):
        params = _params(model)
        if len(params) != len(self.average) or any(
                p.shape != a.shape for p, a in zip(params, self.average)):
            raise ValueError("the model's parameters do not match the averaged ones "
                             "(update with the model the average was created from)")
        return params

    def averaged_model(self, model):
        """A copy of ``model`` carrying the averaged parameters: the eval weights."""
        return averaged_copy(model, self.average)


class EMA(_Average):
    r"""Exponential moving average of a model's weights,
    :math:`\bar\theta \leftarrow \beta\bar\theta + (1-\beta)\theta` at every
    :meth:`update`, starting from the weights at construction.

    ``torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(β))``
    is the same average once its first ``update_parameters`` (which copies the weights)
    has been called.
    """

    def __init__(self, model, beta: float = 0.999):
        if not is_real(beta) or not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta: {beta!r} (must satisfy 0 <= beta < 1)")
        super().__init__(model)
        self.beta = float(beta)

    def update(self, model) -> None:
        import torch

        with torch.no_grad():
            for a, p in zip(self.average, self._check(model)):
                a.mul_(self.beta).add_(p.detach(), alpha=1 - self.beta)
        self.updates += 1


class SWA(_Average):
    r"""Stochastic weight averaging: the running mean of the weights passed to
    :meth:`update` (``updates`` of them), :math:`\bar\theta_n = \bar\theta_{n-1} +
    (\theta - \bar\theta_{n-1})/n`.  Create it when averaging starts (``swa_start``);
    the weights at creation count as the first of the mean, as in
    ``AveragedModel(model)`` followed by ``update_parameters(model)``."""

    def __init__(self, model):
        super().__init__(model)
        self.updates = 1

    def update(self, model) -> None:
        import torch

        self.updates += 1
        with torch.no_grad():
            for a, p in zip(self.average, self._check(model)):
                a.add_(p.detach() - a, alpha=1.0 / self.updates)


def averaged_copy(model, parameters):
    """A deep copy of ``model`` whose parameters are replaced by ``parameters`` (a list of
    tensors in ``model.parameters()`` order); ``model`` itself is not changed."""
    import torch

    params = list(parameters)
    clone = copy.deepcopy(model)
    targets = _params(clone)
    check_int("number of parameters", len(params), 0)
    if len(params) != len(targets):
        raise ValueError(f"got {len(params)} parameter tensors for a model with "
                         f"{len(targets)}")
    with torch.no_grad():
        for t, p in zip(targets, params):
            if t.shape != p.shape:
                raise ValueError(f"parameter shape {tuple(p.shape)} does not match the "
                                 f"model's {tuple(t.shape)}")
            t.copy_(p)
    return clone
