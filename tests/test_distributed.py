"""Distributed data parallel: 2 processes under torchrun (gloo, CPU) against 1 process.

``torchrun --nproc_per_node=2 -m optbook.training`` trains a task whose data set carries
each example's index, and whose loss function records the indices of every mini-batch
it sees.  With the same global batch :math:`B`, the single-process run must be the same
training run:

* in every update, the two ranks' shards are disjoint and together are exactly the
  single process's mini-batch (``DistributedSampler`` deals out the same permutation);
* DDP averages the two ranks' mean gradients, which is the mean over the whole batch
  because the shards are equally large (the data set size is a multiple of :math:`B`);
* so the final weights agree up to float32 rounding.  **Tolerance:** per tensor,
  ``max |w_2proc - w_1proc| <= 1e-5 * max |w_1proc|``.  The differences come only from
  the order of float32 additions (two half-batch sums and an all-reduce instead of one
  sum), about 1e-7 relative per update; over this run they stay near 3e-7, so the
  bound leaves a margin of ~30 without hiding a wrong batch (replacing one example in
  one update of this run moves every weight tensor by 1e-3 to 2e-2 relative).

The launcher is ``python -m torch.distributed.run`` (what ``torchrun`` runs) with
``--standalone`` (a free local port) and ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from optbook.training.cli import main

N, BATCH, EPOCHS = 512, 64, 3
TASK_KWARGS = json.dumps({"n": N})

SHARD_TASK = textwrap.dedent('''
    """The demo regression task, with each example's index recorded per update."""
    import json, os

    import torch
    from torch.utils.data import TensorDataset

    from optbook.training.cli import Task, regression_task


    def task(n=512):
        base = regression_task(n=n, hidden=16)
        X, y = base.dataset.tensors
        seen = []
        log = os.path.join(os.environ["SHARD_LOG_DIR"], f"rank{os.environ.get('RANK', '0')}.json")

        def loss_fn(model, batch):
            x, y, index = batch
            seen.append(index.tolist())
            return torch.nn.functional.mse_loss(model(x), y)

        def eval_fn(model):
            with open(log, "w") as f:
                json.dump(seen, f)
            return base.eval_fn(model)

        return Task(base.model, TensorDataset(X, y, torch.arange(n)), loss_fn, eval_fn,
                    base.config_overrides)
''')

FLAGS = ["--task", "shard_task:task", "--task-kwargs", TASK_KWARGS, "--epochs", str(EPOCHS),
         "--batch-size", str(BATCH), "--lr", "1e-2", "--warmup-steps", "6", "--clip-norm", "1.0",
         "--device", "cpu"]


def torchrun(tmp_path, flags, nproc=2, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SHARD_LOG_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "optbook.training", *flags]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One 2-process run and one single-process run of the same configuration."""
    two = tmp_path_factory.mktemp("two")
    one = tmp_path_factory.mktemp("one")
    for folder in (two, one):
        (folder / "shard_task.py").write_text(SHARD_TASK)
    proc = torchrun(two, FLAGS + ["--out", str(two / "result.json"),
                                  "--save-weights", str(two / "weights.pt")])
    assert proc.returncode == 0, proc.stdout + proc.stderr

    saved_path, saved_env = list(sys.path), os.environ.get("SHARD_LOG_DIR")
    sys.path.insert(0, str(one))
    os.environ["SHARD_LOG_DIR"] = str(one)
    try:
        assert main(FLAGS + ["--out", str(one / "result.json"),
                             "--save-weights", str(one / "weights.pt")]) == 0
    finally:
        sys.path[:] = saved_path
        sys.modules.pop("shard_task", None)
        if saved_env is None:
            os.environ.pop("SHARD_LOG_DIR", None)
        else:
            os.environ["SHARD_LOG_DIR"] = saved_env

    def load(folder, name):
        return json.loads((folder / name).read_text())

    return {
        "two": load(two, "result.json"), "one": load(one, "result.json"),
        "w2": torch.load(two / "weights.pt", weights_only=True),
        "w1": torch.load(one / "weights.pt", weights_only=True),
        "ranks": [load(two, "rank0.json"), load(two, "rank1.json")],
        "single": load(one, "rank0.json"), "stdout": proc.stdout,
    }


def test_two_processes_record_their_world(runs):
    two = runs["two"]
    assert two["world_size"] == 2 and runs["one"]["world_size"] == 1
    assert two["rank"] == 0 and two["device"] == "cpu"
    steps = EPOCHS * N // BATCH
    assert two["steps"] == runs["one"]["steps"] == steps
    assert two["samples_seen"] == [EPOCHS * N // 2] * 2
    assert runs["one"]["samples_seen"] == [EPOCHS * N]
    assert "x 2 process(es)" in runs["stdout"]          # rank 0 printed, once
    assert runs["stdout"].count("optbook.training:") == 1


def test_ranks_see_disjoint_halves_of_each_global_batch(runs):
    rank0, rank1 = runs["ranks"]
    single = runs["single"]
    assert len(rank0) == len(rank1) == len(single) == EPOCHS * N // BATCH
    for a, b, whole in zip(rank0, rank1, single):
        assert len(a) == len(b) == BATCH // 2
        assert not set(a) & set(b)
        assert sorted(a + b) == sorted(whole)
    for e in range(EPOCHS):                               # each epoch covers the data once
        per_epoch = N // BATCH
        covered = [i for batch in rank0[e * per_epoch:(e + 1) * per_epoch]
                   + rank1[e * per_epoch:(e + 1) * per_epoch] for i in batch]
        assert sorted(covered) == list(range(N))


def test_two_processes_equal_one_process_with_the_same_global_batch(runs):
    w1, w2 = runs["w1"], runs["w2"]
    assert w1.keys() == w2.keys()
    for name in w1:
        scale = w1[name].abs().max().item()
        assert (w2[name] - w1[name]).abs().max().item() <= 1e-5 * scale, name
    h1, h2 = runs["one"]["history"], runs["two"]["history"]
    assert [r["lr"] for r in h1] == [r["lr"] for r in h2]
    for a, b in zip(h1, h2, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)
    for a, b in zip(runs["one"]["epoch_metrics"], runs["two"]["epoch_metrics"], strict=True):
        assert b["mse"] == pytest.approx(a["mse"], rel=1e-5)
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)


def test_a_global_batch_that_does_not_split_evenly_is_refused(tmp_path):
    (tmp_path / "shard_task.py").write_text(SHARD_TASK)
    proc = torchrun(tmp_path, FLAGS + ["--batch-size", "63", "--max-steps", "1"])
    assert proc.returncode != 0
    assert "Invalid batch_size: 63 (the global batch must be divisible by the number of " \
           "processes, 2)" in proc.stderr


def test_a_two_process_run_resumes_to_the_same_weights(runs, tmp_path):
    """Stopped after 10 updates (mid-epoch 2), then resumed: rank 0's checkpoint carries
    the run on both ranks to the very weights of the uninterrupted 2-process run."""
    (tmp_path / "shard_task.py").write_text(SHARD_TASK)
    checkpoint = ["--checkpoint-path", str(tmp_path / "run.pt")]
    first = torchrun(tmp_path, FLAGS + checkpoint + ["--max-steps", "10"])
    assert first.returncode == 0, first.stdout + first.stderr
    second = torchrun(tmp_path, FLAGS + checkpoint + [
        "--resume", "--out", str(tmp_path / "result.json"),
        "--save-weights", str(tmp_path / "weights.pt")])
    assert second.returncode == 0, second.stdout + second.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["resumed_from"] == 10 and result["steps"] == runs["two"]["steps"]
    assert result["samples_seen"] == runs["two"]["samples_seen"]
    assert result["history"] == runs["two"]["history"]
    weights = torch.load(tmp_path / "weights.pt", weights_only=True)
    for name, value in runs["w2"].items():
        assert torch.equal(weights[name], value), name
