"""Checkpoints of the training pipeline: written atomically, holding the model, the
optimizer, the position in the epoch and every random state, and refused on resume when
they come from a different run (:mod:`optbook.training.loop` writes and reads them)."""

from __future__ import annotations

import dataclasses
import os
import random

import numpy as np
import torch

from optbook.training.config import TRAJECTORY_FIELDS, TrainConfig

_CHECKPOINT_FORMAT = "optbook.training/1"


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


def _write_atomic(path: str, write) -> None:
    """``write(tmp)`` to a temporary file next to ``path``, then rename it over ``path``:
    a reader sees the old file or the whole new one, never a part."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _save_atomic(obj, path: str) -> None:
    """``torch.save`` to ``path``, atomically (:func:`_write_atomic`)."""
    _write_atomic(path, lambda tmp: torch.save(obj, tmp))


def _check_resumable(saved: dict, config: TrainConfig, world_size: int, n: int, path) -> None:
    if saved.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"Cannot resume from {path}: not a checkpoint written by "
                         f"optbook.training (format {saved.get('format')!r})")
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
