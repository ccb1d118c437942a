r"""8.12 Choosing settings in practice: mixed precision and the optimizer's state.

bfloat16 (bf16) keeps float32's 8 exponent bits and only 8 significant bits (7 stored
plus the implicit one).  Its range is float32's, so activations and gradients rarely
overflow, but its *spacing* is coarse: between :math:`2^e` and :math:`2^{e+1}` the
representable numbers are :math:`2^{e-7}` apart, a relative spacing of 0.4--0.8 %
(:func:`bf16_spacing`).  Rounding to nearest (ties to even, :func:`round_to_bf16`) turns
an addition :math:`\theta + \Delta` back into :math:`\theta` whenever
:math:`|\Delta|` is below half that spacing (:func:`lost_updates`).

That is harmless for a forward pass and fatal for an optimizer that *stores* its
parameters in bf16: late in training the updates :math:`\alpha\,\hat m/\sqrt{\hat v}` are
small relative to the weights, and every one below half a spacing is simply lost -- the
weights stop moving while the loss is still falling in float32.  The optimizer's state
suffers the same way: an average :math:`v \leftarrow \beta_2 v + (1-\beta_2) g^2` with
:math:`\beta_2 = 0.999` changes :math:`v` by 0.1 % per step, under half a bf16 spacing,
so a bf16 :math:`v` cannot follow a change in the gradient's scale
(:func:`ewa_in_dtype`).

The fix used in mixed-precision training (Micikevicius et al., 2018) is a **float32
master copy** of the weights: the forward and backward passes run in bf16 on a rounded
copy, the gradients are cast to float32 and the optimizer (with float32 state) updates
the master weights, where small updates accumulate until they show in the bf16 copy.
:func:`train_in_precision` runs the three set-ups (``"fp32"``, ``"bf16"`` -- parameters
and state in bf16 -- and ``"bf16+master"``) with any ``torch.optim`` optimizer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ._checks import check_int, is_real

__all__ = ["round_to_bf16", "bf16_spacing", "lost_updates", "ewa_in_dtype", "MODES",
           "PrecisionRun", "train_in_precision"]

MODES = ("fp32", "bf16", "bf16+master")


def round_to_bf16(x) -> np.ndarray:
    """``x`` rounded to the nearest bfloat16 (ties to even), as float32 values.

    Written with integer operations on float32's bits, independently of any bf16
    implementation: add ``0x7FFF`` plus the lowest kept bit, then clear the low 16 bits.
    NaN stays NaN; values beyond bf16's range become infinite.

    >>> round_to_bf16([1.0, 1.00390625, 1.01171875, 3.14159]).tolist()
    [1.0, 1.0, 1.015625, 3.140625]
    """
    x = np.asarray(x, dtype=np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    out = rounded.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), np.float32(np.nan), out).astype(np.float32)


def bf16_spacing(x) -> np.ndarray:
    r"""The gap between :math:`|x|` (a bf16 number) and the next larger bf16 number:
    :math:`2^{e-7}` for :math:`2^e \le |x| < 2^{e+1}`; :math:`2^{-133}` (the smallest
    subnormal) below :math:`2^{-126}`.

    >>> bf16_spacing([1.0, 1.5, 0.25, 1000.0]).tolist()
    [0.0078125, 0.0078125, 0.001953125, 4.0]
    """
    a = np.abs(np.asarray(x, dtype=np.float64))
    _, e = np.frexp(a)                      # a = m · 2**e with 0.5 <= m < 1
    return np.where(a < 2.0 ** -126, 2.0 ** -133, np.ldexp(1.0, e - 8))


def lost_updates(theta, delta) -> np.ndarray:
    r"""Where adding ``delta`` to the bf16 numbers ``theta`` (computed in float32 and
    rounded once, as PyTorch does for a bf16 tensor) leaves ``theta`` unchanged, although
    ``delta`` is not zero: where :math:`|\Delta|` is below half the gap to the
    neighbouring bf16 number in the direction of the move (:func:`bf16_spacing` above
    :math:`|\theta|`; half of it below a power of two)."""
    theta = np.asarray(theta, dtype=np.float32)
    delta = np.asarray(delta, dtype=np.float32)
    if not np.array_equal(round_to_bf16(theta), theta, equal_nan=True):
        raise ValueError("theta must hold bf16 numbers (pass it through round_to_bf16)")
    return (round_to_bf16(theta + delta) == theta) & (delta != 0)


def ewa_in_dtype(values, beta: float, dtype, start: float = 0.0) -> np.ndarray:
    r"""The 8.3 average :math:`v \leftarrow \beta v + (1-\beta)x` kept in a torch
    ``dtype``, computed as ``torch.optim.Adam`` updates its state
    (``v.mul_(β).add_(x, alpha=1-β)``: each operation rounds to ``dtype``); returns
    :math:`v_1, \dots, v_T` as float64."""
    import torch

    if not is_real(beta) or not 0.0 <= beta < 1.0:
        raise ValueError(f"Invalid beta: {beta!r} (must satisfy 0 <= beta < 1)")
    xs = torch.as_tensor(np.asarray(values, dtype=np.float64)).to(dtype)
    if xs.ndim != 1:
        raise ValueError(f"values must be a 1-D sequence, got shape {tuple(xs.shape)}")
    v = torch.tensor(float(start), dtype=dtype)
    out = np.empty(len(xs))
    for t, x in enumerate(xs):
        v.mul_(beta).add_(x, alpha=1 - beta)
        out[t] = float(v)
    return out


@dataclass
class PrecisionRun:
    """What :func:`train_in_precision` returns: ``losses[k]`` from ``eval_fn`` after
    ``k`` steps (``k = 0`` is the start) and ``unchanged[k]`` the share of the working
    (forward-pass) parameters that step ``k + 1`` left exactly as they were."""

    mode: str
    losses: np.ndarray
    unchanged: np.ndarray


def _flat(model):
    import torch

    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def train_in_precision(model, loss_fn: Callable, batches: Iterable, make_optimizer: Callable,
                       steps: int, mode: str, eval_fn: Callable) -> PrecisionRun:
    r"""Train a copy of the float32 ``model`` for ``steps`` steps in one of :data:`MODES`.

    * ``"fp32"``: parameters, gradients and optimizer state in float32;
    * ``"bf16"``: the model converted to bf16, so ``make_optimizer(params)`` keeps its
      state in bf16 as well and every update is rounded into bf16 weights;
    * ``"bf16+master"``: float32 master weights and optimizer; every step rounds them
      into a bf16 working copy, runs forward and backward on it and hands the gradients,
      cast to float32, to the optimizer.

    ``loss_fn(model, batch)`` is a batch's mean loss (floating tensors in ``batch`` are
    cast to the working precision), ``eval_fn(model)`` a float from the working model.
    """
    import torch

    if mode not in MODES:
        raise ValueError(f"Invalid mode: {mode!r} (choose one of {', '.join(MODES)})")
    check_int("steps", steps, 1)
    dtype = torch.float32 if mode == "fp32" else torch.bfloat16
    work = copy.deepcopy(model).to(dtype)
    master = copy.deepcopy(model).float() if mode == "bf16+master" else None
    optimizer = make_optimizer(list((master or work).parameters()))
    batches = iter(batches)
    losses, unchanged = [eval_fn(work)], []
    for _ in range(steps):
        batch = tuple(t.to(dtype) if torch.is_floating_point(t) else t for t in next(batches))
        before = _flat(work)
        optimizer.zero_grad()
        work.zero_grad()
        loss_fn(work, batch).backward()
        if master is not None:
            for m, w in zip(master.parameters(), work.parameters()):
                m.grad = w.grad.float()
        optimizer.step()
        if master is not None:
            with torch.no_grad():
                for m, w in zip(master.parameters(), work.parameters()):
                    w.copy_(m)          # rounds to bf16
        unchanged.append(float((_flat(work) == before).float().mean()))
        losses.append(eval_fn(work))
    return PrecisionRun(mode, np.array(losses), np.array(unchanged))
