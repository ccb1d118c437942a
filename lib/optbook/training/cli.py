"""The training pipeline's command line, ``python -m optbook.training --task MODULE:FUNC
[settings]``, and the tasks it trains (:class:`Task`; :func:`regression_task` is a small
built-in one)."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from optbook.training.checkpoint import _save_atomic, _write_atomic
from optbook.training.config import TrainConfig
from optbook.training.loop import NonFiniteLossError, fit

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
        raise TypeError(f"task function {spec!r} must return optbook.training.cli.Task, "
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
    r"""A small built-in task: a ReLU MLP on :func:`optbook.training.torch_loops.nonlinear_regression`.

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
# Command line: python -m optbook.training --task MODULE:FUNC [settings]
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
        prog="python -m optbook.training",
        description="Train a task with optbook's pipeline (AdamW, warm-up + cosine, clipping, "
                    "LR scaling; data parallel under torchrun).")
    parser.add_argument("--task", required=True, help="MODULE:FUNC returning an optbook.training.cli.Task")
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
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)

    _write_atomic(path, write)


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
            print(f"optbook.training: {exc}", file=sys.stderr)
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
        print(f"optbook.training: {result.steps} updates in {result.wall_time_s:.2f} s on "
              f"{result.device} x {result.world_size} process(es); last mini-batch loss "
              f"{last:.4g}")
    return 0
