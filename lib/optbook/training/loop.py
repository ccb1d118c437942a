r"""Create: a training pipeline with warm-up, cosine annealing, clipping, learning-rate
scaling and distributed mini-batch SGD — on PyTorch's own engine.

The chapter's last objective is to *design* a training pipeline, not just an optimizer.
Each piece below answers one way large-batch training goes wrong, and each is a
setting of :class:`TrainConfig`:

========================  ==========================================  ======================
piece                     what it protects against                    setting
========================  ==========================================  ======================
AdamW                     features on very different scales           ``optimizer="adamw"``
learning-rate scaling     a larger batch averages away noise, so it   ``lr_scaling``,
                          can afford a larger step                    ``base_batch_size``
linear warm-up            early gradients of a random network are     ``warmup_steps``
                          unreliable; a big first step diverges
cosine annealing          a fixed α bounces around the minimum        ``schedule="cosine"``
clipping by global norm   a few outlier examples with huge gradients  ``clip_norm``
distributed data          one machine is too slow                     ``torchrun``
parallel (DDP)
========================  ==========================================  ======================

**Learning rate.**  :math:`\alpha` (``lr``) is the rate that works at the batch size
``base_batch_size`` :math:`B_0`; at the global batch :math:`B` the peak rate is

.. math::

    \alpha_{\rm peak} = \alpha \cdot \frac{B}{B_0} \ \text{(linear rule, Goyal et al. 2017)}
    \qquad\text{or}\qquad
    \alpha_{\rm peak} = \alpha \sqrt{\frac{B}{B_0}} \ \text{(square-root rule)},

(:func:`scaled_lr`).  Keeping the per-GPU batch fixed and adding GPUs multiplies
:math:`B` by the number of GPUs, so the square-root rule with :math:`B_0` = the per-GPU
batch is the seed's ":math:`\alpha = \text{base\_lr}\times\sqrt{\text{num\_gpus}}`".
The rate is then set **before every update** :math:`t = 0, 1, \dots, T-1` (counting
from 0, as in :mod:`optbook.schedules`) by :func:`lr_at`: a linear warm-up over
:math:`W` = ``warmup_steps`` updates, :math:`\alpha_t = \alpha_{\rm peak}(t+1)/W`, then
cosine annealing from :math:`\alpha_{\rm peak}` to ``min_lr`` over the remaining
:math:`T - W` updates (it is :class:`optbook.schedules.WarmupCosineSchedule` counted in
updates instead of epochs).  :math:`T` is ``epochs`` × the updates per epoch.

**One update** of :func:`fit`, for a mini-batch of the global batch :math:`B`:

1. :math:`\alpha_t` from the schedule is written into the optimizer;
2. the loss :math:`J` (``loss_fn(model, batch)``) and its gradient :math:`g` are
   computed, in bfloat16/float16 autocast on CUDA (mixed precision; never on the CPU);
3. the loss is checked: a NaN or infinite loss stops the run at once with a
   :class:`NonFiniteLossError` that says which update, at which :math:`\alpha_t`, and
   what to try;
4. if ``clip_norm`` :math:`c` is set, :math:`g \leftarrow g \cdot \min(1, c/\lVert g\rVert)`
   (``torch.nn.utils.clip_grad_norm_``: one norm over *all* parameters, so the
   direction is kept); :math:`\lVert g\rVert` before clipping is recorded every update;
5. ``torch.optim.AdamW`` (or ``torch.optim.SGD`` with momentum) takes the step.

Nothing here re-implements an optimizer, a scheduler or a collective: the point of the
chapter's own from-scratch classes was to understand them; a pipeline should use the
tested ones.  ``tests/test_train.py`` checks that :func:`fit` equals a hand-written
``torch.optim`` loop bit for bit, so the pipeline adds nothing unexpected.

**Distributed data parallel.**  Launched by ``torchrun --nproc_per_node=N``, :func:`fit`
joins the process group (``nccl`` on CUDA, ``gloo`` on the CPU), wraps the model in
``torch.nn.parallel.DistributedDataParallel`` and gives every process a disjoint shard
of each epoch through ``torch.utils.data.DistributedSampler``.  Each process computes
the mean gradient over its :math:`B/N` examples; DDP averages these over the
processes during ``backward()``, which is the mean gradient over all :math:`B` examples
when the shards are equally large.  ``batch_size`` is therefore always the *global*
batch: the same configuration gives the same training run (to float rounding) on 1
process or on :math:`N`.  Only rank 0 prints and writes files; the logged loss is the
global mean (an ``all_reduce``), so every rank reports the same numbers.

**Reproducible and resumable.**  ``seed`` seeds ``torch``, ``random`` and NumPy; the
data order of epoch :math:`e` is a permutation drawn from a ``torch.Generator`` seeded
with ``seed + e`` (inside ``DistributedSampler``), so it is a function of the seed and
the epoch only.  Two runs with the same seed give bit-identical weights on the CPU.  A
checkpoint (``checkpoint_path``, written atomically every ``checkpoint_every`` updates
and at the end) holds the model, the optimizer, the position in the epoch and every
random state; ``resume=True`` continues from it and ends with exactly the weights of an
uninterrupted run, even when it stopped mid-epoch.

>>> import torch
>>> from optbook.train import TrainConfig, fit, regression_task
>>> task = regression_task(n=256)
>>> config = TrainConfig(epochs=2, batch_size=32, lr=3e-3, warmup_steps=4)
>>> result = fit(task.model, task.dataset, task.loss_fn, config, eval_fn=task.eval_fn,
...              device=torch.device("cpu"))
>>> result.steps, result.world_size, [round(r["lr"] / 3e-3, 2) for r in result.history[:5]]
(16, 1, [0.25, 0.5, 0.75, 1.0, 1.0])

**From the command line**, on one process or many (the task is any function returning
a :class:`Task`; :func:`regression_task` is a small built-in one)::

    python -m optbook.train --task optbook.train:regression_task --epochs 4 \
        --batch-size 128 --lr 3e-3 --warmup-steps 8 --clip-norm 1.0 --out result.json
    torchrun --standalone --nproc_per_node=2 -m optbook.train \
        --task optbook.train:regression_task --epochs 4 --batch-size 128 \
        --lr 3e-3 --warmup-steps 8 --out result.json --save-weights weights.pt

(``python -m torch.distributed.run`` is the same launcher as ``torchrun``; on a CPU,
set ``OMP_NUM_THREADS=1`` so the processes do not fight over the cores.)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import importlib
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ._checks import check_int as _need_int, is_int as _is_int, is_real as _is_real
from .device import pick_device
from .minibatch import scaled_lr as _scaled_lr_formula
from .schedules import WarmupCosineSchedule

__all__ = ["LR_SCALING_RULES", "OPTIMIZERS", "SCHEDULES", "AMP_MODES", "scaled_lr",
           "TrainConfig", "lr_at", "NonFiniteLossError", "TrainResult", "fit", "Task",
           "load_task", "regression_task", "main"]

LR_SCALING_RULES = ("none", "linear", "sqrt")
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "constant")
AMP_MODES = ("auto", "bf16", "fp16", "off")

#: Settings that shape the training trajectory: a resumed run must not change them.
TRAJECTORY_FIELDS = ("epochs", "batch_size", "lr", "base_batch_size", "lr_scaling",
                     "optimizer", "weight_decay", "betas", "epsilon", "momentum",
                     "warmup_steps", "schedule", "min_lr", "clip_norm", "seed", "amp",
                     "drop_last")

_CHECKPOINT_FORMAT = "optbook.train/1"


# --------------------------------------------------------------------------------------
# Validation helpers: every error names the setting and the value it got.
# --------------------------------------------------------------------------------------


def _need_positive(name: str, value) -> None:
    if not _is_real(value) or not 0.0 < value < math.inf:
        raise ValueError(f"Invalid {name}: {value!r} (must be a positive finite number)")


def _need_nonnegative(name: str, value) -> None:
    if not _is_real(value) or not 0.0 <= value < math.inf:
        raise ValueError(f"Invalid {name}: {value!r} (must be a finite number >= 0)")


def _need_choice(name: str, value, choices) -> None:
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"Invalid {name}: {value!r} (must be one of {listed})")


def _need_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"Invalid {name}: {value!r} (must be True or False)")


# --------------------------------------------------------------------------------------
# Learning-rate scaling and the per-update schedule
# --------------------------------------------------------------------------------------


def scaled_lr(base_lr: float, base_batch_size: int, batch_size: int,
              rule: str = "linear") -> float:
    r"""The peak learning rate for ``batch_size``, given ``base_lr`` that works at ``base_batch_size``.

    ``rule`` is ``"linear"`` (:math:`\alpha\,B/B_0`, Goyal et al. 2017), ``"sqrt"``
    (:math:`\alpha\sqrt{B/B_0}`) or ``"none"`` (:math:`\alpha`, whatever the batch).
    The formulas are :func:`optbook.minibatch.scaled_lr`'s.

    >>> scaled_lr(0.001, 4096, 32 * 4096, "sqrt") == 0.001 * 32 ** 0.5
    True
    >>> scaled_lr(0.1, 256, 1024, "linear"), scaled_lr(0.1, 256, 1024, "none")
    (0.4, 0.1)
    """
    _need_positive("base_lr", base_lr)
    _need_int("base_batch_size", base_batch_size, 1)
    _need_int("batch_size", batch_size, 1)
    _need_choice("rule", rule, LR_SCALING_RULES)
    if rule == "none":
        return float(base_lr)
    return _scaled_lr_formula(base_lr, base_batch_size, batch_size, rule)


@dataclass
class TrainConfig:
    r"""Every setting of :func:`fit`, checked when it is made (errors name the setting).

    ``batch_size`` is the **global** batch :math:`B`, summed over all processes (each of
    :math:`N` processes takes :math:`B/N`).  ``lr`` is :math:`\alpha` before scaling:
    the peak rate is ``scaled_lr(lr, base_batch_size, batch_size, lr_scaling)``
    (:attr:`peak_lr`); ``base_batch_size=None`` means ``batch_size``, i.e. no scaling.
    ``betas`` (:math:`\beta_1, \beta_2`) and ``epsilon`` (:math:`\varepsilon`) are
    AdamW's; ``momentum`` (:math:`\beta`) is SGD's; ``weight_decay`` is decoupled in
    AdamW and an L2 term in SGD (torch's conventions).  ``warmup_steps``
    (:math:`W`, in updates) and ``schedule`` (``"cosine"`` down to ``min_lr``, or
    ``"constant"`` at the peak) define :func:`lr_at`.  ``clip_norm`` is the maximal
    global gradient norm (``None``: no clipping).  ``amp``: ``"auto"`` uses bfloat16
    autocast on CUDA (float16 with a ``GradScaler`` where bfloat16 is unsupported) and
    nothing on the CPU; ``"bf16"``/``"fp16"`` force one (CUDA only); ``"off"`` never;
    ``True``/``False`` mean ``"auto"``/``"off"``.  ``checkpoint_every`` counts updates
    (0: only at the end); ``resume=True`` continues from ``checkpoint_path`` when that
    file exists (and starts afresh when it does not).  ``log_every``: one history record
    every so many updates.  ``max_steps`` stops the run after that many updates in
    total; it does *not* shorten the schedule, which always spans ``epochs`` (so a run
    stopped by ``max_steps`` and resumed is the same run as an uninterrupted one).
    """

    epochs: int = 1
    batch_size: int = 64
    lr: float = 1e-3
    base_batch_size: int | None = None
    lr_scaling: str = "none"
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    epsilon: float = 1e-8
    momentum: float = 0.9
    warmup_steps: int = 0
    schedule: str = "cosine"
    min_lr: float = 0.0
    clip_norm: float | None = None
    seed: int = 0
    amp: str | bool = "auto"
    checkpoint_path: str | None = None
    checkpoint_every: int = 0
    resume: bool = False
    progress: bool = False
    log_every: int = 1
    num_workers: int = 0
    drop_last: bool = False
    max_steps: int | None = None

    def __post_init__(self):
        _need_int("epochs", self.epochs, 1)
        _need_int("batch_size", self.batch_size, 1)
        _need_positive("lr", self.lr)
        if self.base_batch_size is not None:
            _need_int("base_batch_size", self.base_batch_size, 1)
        _need_choice("lr_scaling", self.lr_scaling, LR_SCALING_RULES)
        _need_choice("optimizer", self.optimizer, OPTIMIZERS)
        _need_nonnegative("weight_decay", self.weight_decay)
        betas = self.betas
        if (not isinstance(betas, (tuple, list)) or len(betas) != 2
                or not all(_is_real(b) and 0.0 <= b < 1.0 for b in betas)):
            raise ValueError(f"Invalid betas: {betas!r} (must be two numbers in [0, 1))")
        self.betas = (float(betas[0]), float(betas[1]))
        _need_positive("epsilon", self.epsilon)
        if not _is_real(self.momentum) or not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"Invalid momentum: {self.momentum!r} (must be in [0, 1))")
        _need_int("warmup_steps", self.warmup_steps, 0)
        _need_choice("schedule", self.schedule, SCHEDULES)
        _need_nonnegative("min_lr", self.min_lr)
        if self.min_lr > self.peak_lr:
            raise ValueError(f"Invalid min_lr: {self.min_lr!r} (must not exceed the peak "
                             f"learning rate {self.peak_lr!r})")
        if self.clip_norm is not None:
            _need_positive("clip_norm", self.clip_norm)
        _need_int("seed", self.seed, 0)
        if not isinstance(self.amp, bool):
            _need_choice("amp", self.amp, AMP_MODES)
        if self.checkpoint_path is not None:
            if not isinstance(self.checkpoint_path, (str, os.PathLike)) or not os.fspath(
                    self.checkpoint_path):
                raise ValueError(f"Invalid checkpoint_path: {self.checkpoint_path!r} "
                                 "(must be a file path or None)")
            self.checkpoint_path = os.fspath(self.checkpoint_path)
        _need_int("checkpoint_every", self.checkpoint_every, 0)
        _need_bool("resume", self.resume)
        if self.checkpoint_path is None and (self.checkpoint_every or self.resume):
            what = "checkpoint_every" if self.checkpoint_every else "resume"
            value = self.checkpoint_every if self.checkpoint_every else self.resume
            raise ValueError(f"Invalid {what}: {value!r} (needs checkpoint_path, which is None)")
        _need_bool("progress", self.progress)
        _need_int("log_every", self.log_every, 1)
        _need_int("num_workers", self.num_workers, 0)
        _need_bool("drop_last", self.drop_last)
        if self.max_steps is not None:
            _need_int("max_steps", self.max_steps, 1)

    @property
    def peak_lr(self) -> float:
        """:math:`\\alpha` after the scaling rule: the top of the schedule."""
        return scaled_lr(self.lr, self.base_batch_size or self.batch_size, self.batch_size,
                         self.lr_scaling)

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some settings changed (and checked again)."""
        return dataclasses.replace(self, **changes)


def _schedule(total_steps: int, config: TrainConfig) -> WarmupCosineSchedule:
    """The schedule of a run of ``total_steps`` updates (``constant``: cosine from peak to peak)."""
    _need_int("total_steps", total_steps, 1)
    W = config.warmup_steps
    if W >= total_steps:
        raise ValueError(f"Invalid warmup_steps: {W!r} (must be smaller than the run's "
                         f"number of updates, {total_steps} = epochs x updates per epoch)")
    peak = config.peak_lr
    floor = config.min_lr if config.schedule == "cosine" else peak
    return WarmupCosineSchedule(lr_max=peak, warmup_epochs=W, total_epochs=total_steps,
                                lr_min=floor)


def lr_at(step: int, total_steps: int, config: TrainConfig) -> float:
    r"""The learning rate of update ``step`` (0-based) in a run of ``total_steps`` updates.

    .. math::

        \alpha_t = \begin{cases}
            \alpha_{\rm peak}\,(t+1)/W & t < W \\
            \alpha_{\min} + \tfrac12(\alpha_{\rm peak}-\alpha_{\min})
                \bigl(1 + \cos\frac{\pi (t-W)}{T-W}\bigr) & t \ge W
        \end{cases}

    with :math:`\alpha_{\rm peak}` = ``config.peak_lr``, :math:`W` = ``warmup_steps``,
    :math:`T` = ``total_steps`` and :math:`\alpha_{\min}` = ``min_lr``
    (``schedule="constant"``: :math:`\alpha_t = \alpha_{\rm peak}` after the warm-up).
    The warm-up starts at :math:`\alpha_{\rm peak}/W`, just above zero, and the last
    update, :math:`t = T-1`, is one step short of :math:`\alpha_{\min}`.  It is
    :class:`optbook.schedules.WarmupCosineSchedule` counted in updates; in torch it is
    ``SequentialLR([LinearLR(start_factor=1/W, total_iters=W-1),
    CosineAnnealingLR(T_max=T-W, eta_min=min_lr)], milestones=[W])`` stepped once per
    update, for :math:`W \ge 2` (``tests/test_train.py`` checks the two agree over
    whole runs, and :math:`W = 0, 1` against ``CosineAnnealingLR`` and ``ConstantLR``).

    >>> c = TrainConfig(lr=0.1, warmup_steps=4)
    >>> [round(lr_at(t, 10, c), 4) for t in range(10)]
    [0.025, 0.05, 0.075, 0.1, 0.1, 0.0933, 0.075, 0.05, 0.025, 0.0067]
    """
    _need_int("step", step, 0)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    return float(_schedule(total_steps, config)(step))


# --------------------------------------------------------------------------------------
# Results and errors
# --------------------------------------------------------------------------------------


class NonFiniteLossError(FloatingPointError):
    """The loss (or the gradient norm) became NaN or infinite; the run was stopped there.

    Attributes: ``step`` (0-based update), ``epoch``, ``lr`` (:math:`\\alpha` of that
    update), ``loss`` (the non-finite value; for a gradient norm, the loss of that
    update), ``last_finite_loss`` and ``history`` (the records logged before it).
    """

    def __init__(self, message: str, *, step: int, epoch: int, lr: float, loss: float,
                 last_finite_loss: float | None, history: list[dict]):
        super().__init__(message)
        self.step, self.epoch, self.lr, self.loss = step, epoch, lr, loss
        self.last_finite_loss = last_finite_loss
        self.history = history


@dataclass
class TrainResult:
    """What :func:`fit` returns (the model itself is trained in place).

    ``history``: one record per logged update, ``{"step", "epoch", "loss", "lr",
    "grad_norm"}`` — the global mean mini-batch loss *before* that update, the rate it
    used and the gradient norm before clipping.  ``epoch_metrics``: one record per
    finished epoch, ``{"epoch", "train_loss"}`` (the mean of the epoch's mini-batch
    losses, weighted by batch size) plus what ``eval_fn`` returned.  ``steps``: updates
    done in total (including those before a resume); ``total_steps``: the schedule's
    length :math:`T`; ``wall_time_s``: seconds spent in this call; ``final_lr``: the
    rate of the last update; ``samples_seen``: examples each rank trained on (one entry
    per rank); ``resumed_from``: the update the run resumed at (``None``: fresh start).
    """

    history: list[dict]
    epoch_metrics: list[dict]
    steps: int
    wall_time_s: float
    final_lr: float
    device: str
    world_size: int
    rank: int = 0
    total_steps: int = 0
    samples_seen: list[int] = field(default_factory=list)
    resumed_from: int | None = None

    def to_dict(self) -> dict:
        """A JSON-ready copy."""
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------
# Distributed set-up: join the process group torchrun describes, or run alone
# --------------------------------------------------------------------------------------


@dataclass
class _Dist:
    world_size: int
    rank: int
    device: Any
    created: bool = False

    def all_reduce_sum(self, tensor):
        if self.world_size > 1:
            torch.distributed.all_reduce(tensor)
        return tensor

    def barrier(self):
        if self.world_size > 1:
            torch.distributed.barrier()

    def close(self):
        if self.created and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _as_device(device, local_rank: int = 0):
    device = pick_device() if device is None else torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def _setup_distributed(device) -> _Dist:
    """Use the process group in place, or start one if torchrun's variables say so."""
    import torch.distributed as dist

    initialized = dist.is_available() and dist.is_initialized()
    env_world = int(os.environ.get("WORLD_SIZE", "1"))
    if not initialized and not (env_world > 1 and "RANK" in os.environ):
        return _Dist(1, 0, _as_device(device))
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 asks for distributed training, but this torch "
                           "build has no torch.distributed")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _as_device(device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    created = False
    if not initialized:
        if device.type == "cuda":
            dist.init_process_group(backend="nccl", device_id=device)
        else:
            dist.init_process_group(backend="gloo")
        created = True
    return _Dist(dist.get_world_size(), dist.get_rank(), device, created)


# --------------------------------------------------------------------------------------
# Small pieces of the loop
# --------------------------------------------------------------------------------------


class _Progress:
    """A one-line progress display on stderr (rewritten in place, at most 10 times a second)."""

    def __init__(self, total: int, epochs: int, stream=None, min_interval: float = 0.1):
        self.total, self.epochs = total, epochs
        self.stream = sys.stderr if stream is None else stream
        self.min_interval, self.last, self.shown = min_interval, -math.inf, False

    def update(self, record: dict, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < self.min_interval:
            return
        self.last, self.shown = now, True
        done = record["step"] + 1
        bar = "#" * int(20 * done / self.total)
        self.stream.write(f"\r[{bar:<20}] step {done}/{self.total} "
                          f"epoch {record['epoch'] + 1}/{self.epochs} "
                          f"loss {record['loss']:.4g} lr {record['lr']:.3g}")
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _batch_len(batch) -> int:
    if isinstance(batch, torch.Tensor):
        return len(batch)
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_len(batch[0])
    if isinstance(batch, dict) and batch:
        return _batch_len(next(iter(batch.values())))
    raise TypeError(f"cannot tell the size of a batch of type {type(batch).__name__}")


def _builtin(value):
    """Plain Python numbers for metrics (tensors and NumPy scalars become floats/ints)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _amp_dtype(amp, device):
    mode = "auto" if amp is True else "off" if amp is False else amp
    if mode == "off":
        return None
    if device.type != "cuda":
        if mode == "auto":
            return None
        raise ValueError(f"Invalid amp: {amp!r} on device {device} (mixed precision is used "
                         "on CUDA only; use amp='auto' or 'off')")
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if mode == "bf16" else torch.float16


def _make_optimizer(params, config: TrainConfig, lr: float):
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=config.betas, eps=config.epsilon,
                                 weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "python": random.getstate(),
        "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))


def _save_atomic(obj, path: str) -> None:
    """``torch.save`` to a temporary file next to ``path``, then rename it over ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _check_resumable(saved: dict, config: TrainConfig, world_size: int, n: int, path) -> None:
    if saved.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"Cannot resume from {path}: not a checkpoint written by "
                         f"optbook.train (format {saved.get('format')!r})")
    ours = dataclasses.asdict(config)
    theirs = saved["config"]
    diffs = [f"{k}={theirs.get(k)!r} (now {ours[k]!r})" for k in TRAJECTORY_FIELDS
             if _normalise(theirs.get(k)) != _normalise(ours[k])]
    if saved["world_size"] != world_size:
        diffs.append(f"world_size={saved['world_size']} (now {world_size})")
    if saved["dataset_len"] != n:
        diffs.append(f"dataset length={saved['dataset_len']} (now {n})")
    if diffs:
        raise ValueError(
            f"Cannot resume from {path}: it was written by a different run: "
            + ", ".join(diffs) + ". Resuming continues the same run, so these must match; "
            "start a fresh run (resume=False or another checkpoint_path) instead.")


def _normalise(value):
    return list(value) if isinstance(value, tuple) else value


def _advice(config: TrainConfig, lr: float, amp_dtype) -> str:
    tips = [f"a smaller learning rate (this update used α = {lr:.3g}; try α/10)",
            f"a warm-up or a longer one (warmup_steps = {config.warmup_steps})",
            f"gradient clipping (clip_norm = {config.clip_norm})",
            "standardised inputs (features on very different scales make huge gradients)"]
    if amp_dtype == torch.float16:
        tips.append("amp='bf16' or 'off' (float16 overflows above 65504)")
    return "Things to try: " + "; ".join(tips) + "."


# --------------------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------------------



def _tensor_batches(dataset, order: list[int], batch_size: int, drop_last: bool):
    """Mini-batches of a ``TensorDataset`` in the given order, as a ``DataLoader`` with
    the default collate function yields them (a list with one tensor per field)."""
    import torch

    for first in range(0, len(order), batch_size):
        index = order[first:first + batch_size]
        if drop_last and len(index) < batch_size:
            return
        index = torch.as_tensor(index, dtype=torch.long)
        yield [tensor[index] for tensor in dataset.tensors]


def fit(model, dataset, loss_fn: Callable, config: TrainConfig | None = None, *,
        eval_fn: Callable | None = None, device=None,
        callbacks: Sequence[Callable] | None = None) -> TrainResult:
    r"""Train ``model`` in place on ``dataset`` with the pipeline described by ``config``.

    ``dataset`` is a ``torch.utils.data.Dataset`` (usually a ``TensorDataset`` of
    ``(x, y)`` or ``(x, y, weight)``); ``loss_fn(model, batch)`` returns the scalar loss
    of a mini-batch (the batch as the ``DataLoader`` collates it, already on the
    device), so the caller decides how a batch becomes a loss.  ``eval_fn(model)`` runs
    at the end of every epoch, in ``model.eval()`` mode under ``torch.no_grad()``, and
    returns a dict of metrics for :attr:`TrainResult.epoch_metrics`.  ``device``
    defaults to :func:`optbook.device.pick_device` (``cuda:LOCAL_RANK`` under torchrun
    on CUDA).  Each of ``callbacks`` is called as ``callback(model, record)`` after
    every update, with the update's history record; an exception raised there stops the
    run (the tests use this to simulate a crash).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) or in an initialised process group, the
    training is data-parallel (see the module's introduction) and every rank returns the
    same :class:`TrainResult` apart from ``rank``.  For :math:`N` processes to repeat a
    single process's run exactly (to rounding), make ``len(dataset)`` a multiple of the
    global batch: ``DistributedSampler`` pads a data set that does not split evenly by
    repeating examples, and unequal last batches would weigh the ranks' means unequally.

    Raises :class:`NonFiniteLossError` at the first non-finite loss or gradient norm.
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(model, batch), got {loss_fn!r}")
    if eval_fn is not None and not callable(eval_fn):
        raise TypeError(f"eval_fn must be callable as eval_fn(model) or None, got {eval_fn!r}")
    try:
        n = len(dataset)
    except TypeError:
        raise TypeError(f"dataset must have a length, got {type(dataset).__name__}") from None
    if n == 0:
        raise ValueError("Invalid dataset: it is empty")
    callbacks = list(callbacks or [])
    ctx = _setup_distributed(device)
    try:
        return _fit(model, dataset, n, loss_fn, config, eval_fn, ctx, callbacks)
    finally:
        ctx.close()


def _fit(model, dataset, n, loss_fn, config, eval_fn, ctx: _Dist, callbacks) -> TrainResult:
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    start_time = time.perf_counter()
    world, rank, device = ctx.world_size, ctx.rank, ctx.device
    if config.batch_size % world:
        raise ValueError(f"Invalid batch_size: {config.batch_size} (the global batch must be "
                         f"divisible by the number of processes, {world})")
    local_B = config.batch_size // world
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True,
                                 seed=config.seed, drop_last=config.drop_last)
    per_rank = len(sampler)
    steps_per_epoch = per_rank // local_B if config.drop_last else -(-per_rank // local_B)
    if steps_per_epoch == 0:
        raise ValueError(f"Invalid batch_size: {config.batch_size} with drop_last=True leaves "
                         f"no full batch of the {n} examples")
    total_steps = config.epochs * steps_per_epoch
    schedule = _schedule(total_steps, config)

    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)
    model.to(device)
    model.train()
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("Invalid model: it has no trainable parameters")
    optimizer = _make_optimizer(params, config, schedule(0))
    amp_dtype = _amp_dtype(config.amp, device)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    autocast = (functools.partial(torch.autocast, device_type="cuda", dtype=amp_dtype)
                if amp_dtype is not None else contextlib.nullcontext)

    s = dict(step=0, epoch=0, batch_in_epoch=0, epoch_loss_sum=0.0, epoch_count=0,
             history=[], epoch_metrics=[], last_lr=schedule(0), last_finite_loss=None)
    seen = [0] * world
    resumed_from = None
    path = config.checkpoint_path
    if config.resume and os.path.exists(path):
        saved = torch.load(path, map_location="cpu", weights_only=True)
        _check_resumable(saved, config, world, n, path)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scaler is not None and saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        for key in s:
            s[key] = saved[key]
        seen = list(saved["samples_seen"])
        _set_rng_state(saved["rng"])
        resumed_from = s["step"]

    def gather_seen() -> list[int]:
        """Every rank's count of examples trained on (each rank only knows its own)."""
        counts = torch.zeros(world, dtype=torch.float64)
        counts[rank] = seen[rank]
        return [int(c) for c in ctx.all_reduce_sum(counts.to(device)).tolist()]

    def save_checkpoint():
        counts = gather_seen()
        if rank == 0:
            _save_atomic({"format": _CHECKPOINT_FORMAT, **s, "samples_seen": counts,
                          "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scaler": scaler.state_dict() if scaler is not None else None,
                          "rng": _rng_state(), "config": dataclasses.asdict(config),
                          "world_size": world, "dataset_len": n}, path)
        ctx.barrier()

    def close_epoch():
        metrics = {"epoch": s["epoch"], "train_loss": s["epoch_loss_sum"] / s["epoch_count"]}
        if eval_fn is not None:
            model.eval()
            with torch.no_grad():
                extra = eval_fn(model)
            model.train()
            if not isinstance(extra, dict):
                raise TypeError(f"eval_fn must return a dict of metrics, got {extra!r}")
            metrics.update({str(k): _builtin(v) for k, v in extra.items()})
        s["epoch_metrics"].append(metrics)
        s.update(epoch=s["epoch"] + 1, batch_in_epoch=0, epoch_loss_sum=0.0, epoch_count=0)

    progress = _Progress(total_steps, config.epochs) if config.progress and rank == 0 else None
    loader_generator = torch.Generator()
    stopped = config.max_steps is not None and s["step"] >= config.max_steps
    while s["epoch"] < config.epochs and not stopped:
        sampler.set_epoch(s["epoch"])
        order = list(sampler)[s["batch_in_epoch"] * local_B:]
        # Seeds worker processes only; a fixed generator keeps the global RNG untouched.
        loader_generator.manual_seed(config.seed + s["epoch"])
        if isinstance(dataset, TensorDataset) and config.num_workers == 0:
            # The same batches a DataLoader would collate, gathered with one indexing
            # operation per tensor instead of one __getitem__ call per example.
            loader = _tensor_batches(dataset, order, local_B, config.drop_last)
        else:
            loader = DataLoader(dataset, batch_size=local_B, sampler=order,
                                drop_last=config.drop_last, num_workers=config.num_workers,
                                generator=loader_generator, pin_memory=device.type == "cuda")
        for batch in loader:
            step, epoch = s["step"], s["epoch"]
            lr = schedule(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = _to_device(batch, device)
            n_local = _batch_len(batch)
            with autocast():
                loss = loss_fn(net, batch)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise TypeError(f"loss_fn must return a scalar tensor, got {loss!r}")
            if not loss.requires_grad:
                raise ValueError("loss_fn returned a loss that does not depend on the model's "
                                 "parameters (requires_grad is False)")
            if world > 1:
                buf = torch.stack([loss.detach().double() * n_local,
                                   torch.tensor(float(n_local), dtype=torch.float64,
                                                device=loss.device)])
                total, n_global = ctx.all_reduce_sum(buf).tolist()
                loss_value, n_global = total / n_global, int(n_global)
            else:
                loss_value, n_global = loss.item(), n_local

            def stop(what: str, value: float):
                last = s["last_finite_loss"]
                last_text = "none (it was the first update)" if last is None else f"{last:.6g}"
                message = (f"The {what} became {value} at step {step} (epoch {epoch}, "
                           f"update {step + 1} of {total_steps}) with learning rate "
                           f"α = {lr:.6g}; the last finite loss was {last_text}. "
                           f"The run was stopped. {_advice(config, lr, amp_dtype)}")
                return NonFiniteLossError(message, step=step, epoch=epoch, lr=lr,
                                          loss=loss_value, last_finite_loss=last,
                                          history=list(s["history"]))

            if not math.isfinite(loss_value):
                raise stop("loss", loss_value)
            optimizer.zero_grad(set_to_none=True)
            (scaler.scale(loss) if scaler is not None else loss).backward()
            if scaler is not None:
                scaler.unscale_(optimizer)
            grads = [p.grad for p in params if p.grad is not None]
            if not grads:
                raise ValueError("no parameter received a gradient from loss_fn")
            if config.clip_norm is not None:
                norm = torch.nn.utils.clip_grad_norm_(params, config.clip_norm)
            else:
                norm = torch.nn.utils.get_total_norm(grads)
            grad_norm = norm.item()
            # With float16 a GradScaler skips steps with inf gradients by design.
            if scaler is None and not math.isfinite(grad_norm):
                raise stop("gradient norm", grad_norm)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()

            record = {"step": step, "epoch": epoch, "loss": loss_value, "lr": lr,
                      "grad_norm": grad_norm}
            s["step"] += 1
            s["batch_in_epoch"] += 1
            s["epoch_loss_sum"] += loss_value * n_global
            s["epoch_count"] += n_global
            s["last_lr"], s["last_finite_loss"] = lr, loss_value
            seen[rank] += n_local
            if step % config.log_every == 0:
                s["history"].append(record)
            if progress is not None:
                progress.update(record, force=s["step"] == total_steps)
            if s["batch_in_epoch"] == steps_per_epoch:
                close_epoch()
            for callback in callbacks:
                callback(model, record)
            if config.checkpoint_every and s["step"] % config.checkpoint_every == 0:
                save_checkpoint()
            if config.max_steps is not None and s["step"] >= config.max_steps:
                stopped = True
                break
    if progress is not None:
        progress.close()
    if path is not None:
        save_checkpoint()
    return TrainResult(history=s["history"], epoch_metrics=s["epoch_metrics"],
                       steps=s["step"], wall_time_s=time.perf_counter() - start_time,
                       final_lr=s["last_lr"], device=str(device), world_size=world,
                       rank=rank, total_steps=total_steps,
                       samples_seen=gather_seen(), resumed_from=resumed_from)


# --------------------------------------------------------------------------------------
# Tasks: what the command line trains
# --------------------------------------------------------------------------------------


@dataclass
class Task:
    """Everything :func:`fit` needs besides the configuration, as a task function returns it.

    ``config_overrides`` are the task's own defaults for :class:`TrainConfig`; flags
    given on the command line win over them.
    """

    model: Any
    dataset: Any
    loss_fn: Callable
    eval_fn: Callable | None = None
    config_overrides: dict = field(default_factory=dict)


def load_task(spec: str, kwargs: dict | None = None) -> Task:
    """Call the task function named ``"package.module:function"`` with ``kwargs``."""
    module_name, sep, func_name = str(spec).partition(":")
    if not sep or not module_name or not func_name:
        raise ValueError(f"Invalid task: {spec!r} (must look like 'package.module:function')")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"Invalid task: {spec!r} (cannot import {module_name!r}: {exc})") from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ValueError(f"Invalid task: {spec!r} ({module_name!r} has no function {func_name!r})")
    task = func(**(kwargs or {}))
    if not isinstance(task, Task):
        raise TypeError(f"task function {spec!r} must return optbook.train.Task, "
                        f"got {type(task).__name__}")
    return task


def _mse_loss(model, batch):
    x, y = batch[0], batch[1]
    return torch.nn.functional.mse_loss(model(x), y)


def _full_mse(model, X, y) -> dict:
    device = next(model.parameters()).device
    return {"mse": torch.nn.functional.mse_loss(model(X.to(device)), y.to(device)).item()}


def regression_task(n: int = 1024, features: int = 10, hidden: int = 32, seed: int = 0,
                    noise: float = 0.1) -> Task:
    r"""A small built-in task: a ReLU MLP on :func:`optbook.torch_loops.nonlinear_regression`.

    ``n`` examples with ``features`` inputs; the network has two hidden layers of
    ``hidden`` units and the loss is the mean squared error (the best possible is about
    ``noise**2``).  ``eval_fn`` reports the full-data MSE as ``"mse"``.  Everything is
    drawn from ``seed``, so two calls give the same task.
    """
    from torch.utils.data import TensorDataset

    from .torch_loops import nonlinear_regression, relu_mlp

    X, y = nonlinear_regression(seed=seed, N=n, D=features, noise=noise)
    model = relu_mlp((features, hidden, hidden, 1), seed=seed)
    return Task(model=model, dataset=TensorDataset(X, y), loss_fn=_mse_loss,
                eval_fn=functools.partial(_full_mse, X=X, y=y),
                config_overrides={"epochs": 8, "batch_size": 64, "lr": 1e-2,
                                  "warmup_steps": 16})


# --------------------------------------------------------------------------------------
# Command line: python -m optbook.train --task MODULE:FUNC [settings]
# --------------------------------------------------------------------------------------


def _optional(convert):
    def parse(text: str):
        return None if text.lower() == "none" else convert(text)

    parse.__name__ = convert.__name__
    return parse


def _amp_flag(text: str):
    lowered = text.lower()
    return True if lowered == "true" else False if lowered == "false" else lowered


_FLAGS = {
    "epochs": int, "batch_size": int, "lr": float, "base_batch_size": _optional(int),
    "lr_scaling": str, "optimizer": str, "weight_decay": float, "epsilon": float,
    "momentum": float, "warmup_steps": int, "schedule": str, "min_lr": float,
    "clip_norm": _optional(float), "seed": int, "amp": _amp_flag,
    "checkpoint_path": _optional(str), "checkpoint_every": int, "log_every": int,
    "num_workers": int, "max_steps": _optional(int),
}
_SWITCHES = ("resume", "progress", "drop_last")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m optbook.train",
        description="Train a task with optbook's pipeline (AdamW, warm-up + cosine, clipping, "
                    "LR scaling; data parallel under torchrun).")
    parser.add_argument("--task", required=True, help="MODULE:FUNC returning an optbook.train.Task")
    parser.add_argument("--task-kwargs", default="{}", help="JSON object of keyword arguments for FUNC")
    parser.add_argument("--device", default=None, help="e.g. cpu or cuda (default: pick_device())")
    parser.add_argument("--out", default=None, help="write the result (JSON) here, from rank 0")
    parser.add_argument("--save-weights", default=None, help="save the final state_dict here")
    for name, convert in _FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=convert,
                            default=argparse.SUPPRESS, help=f"TrainConfig.{name}")
    parser.add_argument("--betas", nargs=2, type=float, default=argparse.SUPPRESS,
                        metavar=("BETA1", "BETA2"), help="TrainConfig.betas")
    for name in _SWITCHES:
        parser.add_argument("--" + name.replace("_", "-"), dest=name,
                            action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                            help=f"TrainConfig.{name}")
    return parser


def _write_json_atomic(data: dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (1 when the loss became non-finite)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        task_kwargs = json.loads(args.task_kwargs)
    except json.JSONDecodeError as exc:
        parser.error(f"--task-kwargs is not valid JSON: {exc}")
    if not isinstance(task_kwargs, dict):
        parser.error(f"--task-kwargs must be a JSON object, got {args.task_kwargs!r}")
    given = {k: v for k, v in vars(args).items() if k in _FLAGS or k in _SWITCHES or k == "betas"}
    try:
        task = load_task(args.task, task_kwargs)
        config = TrainConfig(**{**task.config_overrides, **given})
    except ValueError as exc:
        parser.error(str(exc))
    rank = int(os.environ.get("RANK", "0"))
    try:
        result = fit(task.model, task.dataset, task.loss_fn, config, eval_fn=task.eval_fn,
                     device=args.device)
    except NonFiniteLossError as exc:
        if rank == 0:
            print(f"optbook.train: {exc}", file=sys.stderr)
        return 1
    if result.rank == 0:
        if args.out:
            _write_json_atomic({"task": args.task, "task_kwargs": task_kwargs,
                                "config": dataclasses.asdict(config), **result.to_dict()},
                               args.out)
        if args.save_weights:
            weights = {k: v.detach().cpu() for k, v in task.model.state_dict().items()}
            _save_atomic(weights, args.save_weights)
        last = result.history[-1]["loss"] if result.history else float("nan")
        print(f"optbook.train: {result.steps} updates in {result.wall_time_s:.2f} s on "
              f"{result.device} x {result.world_size} process(es); last mini-batch loss "
              f"{last:.4g}")
    return 0


if __name__ == "__main__":
    # Run the imported module's main, so that Task and the errors are optbook.train's.
    from optbook.train import main as _main

    sys.exit(_main())
