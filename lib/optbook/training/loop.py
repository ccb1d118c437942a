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
>>> from optbook.training.cli import regression_task
>>> from optbook.training.config import TrainConfig
>>> from optbook.training.loop import fit
>>> task = regression_task(n=256)
>>> config = TrainConfig(epochs=2, batch_size=32, lr=3e-3, warmup_steps=4)
>>> result = fit(task.model, task.dataset, task.loss_fn, config, eval_fn=task.eval_fn,
...              device=torch.device("cpu"))
>>> result.steps, result.world_size, [round(r["lr"] / 3e-3, 2) for r in result.history[:5]]
(16, 1, [0.25, 0.5, 0.75, 1.0, 1.0])

**From the command line**, on one process or many (the task is any function returning
a :class:`Task`; :func:`regression_task` is a small built-in one)::

    python -m optbook.training --task optbook.training.cli:regression_task --epochs 4 \
        --batch-size 128 --lr 3e-3 --warmup-steps 8 --clip-norm 1.0 --out result.json
    torchrun --standalone --nproc_per_node=2 -m optbook.training \
        --task optbook.training.cli:regression_task --epochs 4 --batch-size 128 \
        --lr 3e-3 --warmup-steps 8 --out result.json --save-weights weights.pt

(``python -m torch.distributed.run`` is the same launcher as ``torchrun``; on a CPU,
set ``OMP_NUM_THREADS=1`` so the processes do not fight over the cores.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from optbook.book.device import pick_device
from optbook.training.checkpoint import (_CHECKPOINT_FORMAT, _check_resumable,
                                         _rng_state, _save_atomic, _set_rng_state)
from optbook.training.config import TrainConfig, _schedule

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
    defaults to :func:`optbook.book.device.pick_device` (``cuda:LOCAL_RANK`` under torchrun
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
