"""optbook.training: the training pipeline, against independent torch references.

The references are written here from torch's parts: ``torch.optim.lr_scheduler`` for
the learning-rate schedule, and hand-written loops with ``torch.optim.AdamW`` /
``torch.optim.SGD`` and ``torch.nn.utils.clip_grad_norm_`` over the data order
``DistributedSampler`` documents (``torch.randperm`` seeded with ``seed + epoch``), for
the whole pipeline.  Everything runs on the CPU in float32 (the distributed runs are in
``test_distributed.py``).
"""

from __future__ import annotations

import dataclasses
import doctest
import json
import math
import os
import random
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tls
from torch.utils.data import TensorDataset

import optbook.training.cli
import optbook.training.config
import optbook.training.loop
from optbook.minibatch import scaled_lr as minibatch_scaled_lr
from optbook.schedules import WarmupCosineSchedule
from optbook.training.cli import Task, load_task, main, regression_task
from optbook.training.config import TrainConfig, lr_at, scaled_lr
from optbook.training.loop import NonFiniteLossError, fit

CPU = torch.device("cpu")


def small_task(n: int = 256, seed: int = 0) -> Task:
    return regression_task(n=n, features=6, hidden=16, seed=seed)


def params_of(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def assert_same_weights(a, b) -> None:
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def steps_per_epoch(n: int, batch_size: int, drop_last: bool = False) -> int:
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """The order DistributedSampler documents for one process: randperm seeded with seed+epoch."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def hand_loop(model, X, y, config: TrainConfig, *, stop_at_nonfinite: bool = False):
    """The pipeline written out by hand with torch.optim: returns (losses, lrs, norms).

    With ``stop_at_nonfinite`` it returns at the first non-finite loss or gradient norm,
    adding ``("loss" | "gradient norm", step)`` as a fourth item.
    """
    n, B = len(X), config.batch_size
    T = config.epochs * steps_per_epoch(n, B)
    lrs = [lr_at(t, T, config) for t in range(T)]
    if config.optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=lrs[0], betas=config.betas,
                                eps=config.epsilon, weight_decay=config.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lrs[0], momentum=config.momentum,
                              weight_decay=config.weight_decay)
    losses, norms, t = [], [], 0
    for epoch in range(config.epochs):
        for idx in epoch_batches(n, B, config.seed, epoch):
            opt.param_groups[0]["lr"] = lrs[t]
            loss = torch.nn.functional.mse_loss(model(X[idx]), y[idx])
            if stop_at_nonfinite and not math.isfinite(loss.item()):
                return losses, lrs, norms, ("loss", t)
            opt.zero_grad()
            loss.backward()
            if config.clip_norm is not None:
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            else:
                norm = torch.linalg.vector_norm(
                    torch.cat([p.grad.flatten() for p in model.parameters()]))
            if stop_at_nonfinite and not math.isfinite(norm.item()):
                return losses, lrs, norms, ("gradient norm", t)
            opt.step()
            losses.append(loss.item())
            norms.append(norm.item())
            t += 1
    return losses, lrs, norms


# ------------------------------------------------------------------ learning-rate scaling
@pytest.mark.parametrize("base_lr, B0, B", [(0.1, 256, 1024), (1e-3, 4096, 32 * 4096),
                                            (0.05, 512, 128), (0.3, 64, 64)])
def test_scaled_lr_rules(base_lr, B0, B):
    assert scaled_lr(base_lr, B0, B, "none") == base_lr
    assert scaled_lr(base_lr, B0, B, "linear") == pytest.approx(base_lr * B / B0, rel=1e-15)
    assert scaled_lr(base_lr, B0, B, "sqrt") == pytest.approx(base_lr * math.sqrt(B / B0),
                                                              rel=1e-15)
    for rule in ("linear", "sqrt"):
        assert scaled_lr(base_lr, B0, B, rule) == minibatch_scaled_lr(base_lr, B0, B, rule)


def test_scaled_lr_reproduces_the_seeds_flipkart_number():
    # 0.001 x sqrt(32 GPUs) with 4096 examples per GPU: the seed's "0.0057".
    assert round(scaled_lr(0.001, 4096, 32 * 4096, "sqrt"), 4) == 0.0057


@pytest.mark.parametrize("args, name, value", [
    ((0.0, 256, 512, "linear"), "base_lr", 0.0), ((-0.1, 256, 512, "sqrt"), "base_lr", -0.1),
    ((math.nan, 256, 512, "sqrt"), "base_lr", math.nan),
    ((0.1, 0, 512, "linear"), "base_batch_size", 0), ((0.1, 256, 0, "linear"), "batch_size", 0),
    ((0.1, 256, 2.5, "linear"), "batch_size", 2.5), ((0.1, 256, 512, "cubic"), "rule", "cubic"),
    ((0.1, 256, 512, None), "rule", None),
])
def test_scaled_lr_rejects_bad_input(args, name, value):
    with pytest.raises(ValueError) as info:
        scaled_lr(*args)
    assert f"Invalid {name}: {value!r}" in str(info.value)


# ------------------------------------------------------------------ the configuration
BAD_CONFIGS = [
    ("epochs", 0), ("epochs", 1.5), ("batch_size", 0), ("batch_size", True), ("lr", 0.0),
    ("lr", -1e-3), ("lr", math.inf), ("base_batch_size", 0), ("lr_scaling", "cubic"),
    ("optimizer", "adam"), ("weight_decay", -0.1), ("betas", (0.9,)),
    ("betas", (1.0, 0.999)), ("epsilon", 0.0), ("momentum", 1.0), ("warmup_steps", -1),
    ("warmup_steps", 2.0), ("schedule", "step"), ("min_lr", -1e-4), ("min_lr", 0.5),
    ("clip_norm", 0.0), ("clip_norm", -1.0), ("seed", -1), ("amp", "fp8"), ("amp", 1),
    ("checkpoint_every", -1), ("checkpoint_every", 5), ("resume", True),
    ("progress", "yes"), ("log_every", 0), ("num_workers", -1), ("drop_last", 1),
    ("max_steps", 0), ("checkpoint_path", ""),
]


@pytest.mark.parametrize("name, value", BAD_CONFIGS)
def test_config_rejects_bad_values_naming_them(name, value):
    with pytest.raises(ValueError) as info:
        TrainConfig(**{name: value})
    assert f"Invalid {name}: {value!r}" in str(info.value)


def test_config_defaults_and_peak_lr():
    c = TrainConfig()
    assert (c.optimizer, c.schedule, c.lr_scaling, c.betas, c.epsilon) == (
        "adamw", "cosine", "none", (0.9, 0.999), 1e-8)
    assert c.peak_lr == c.lr
    c = TrainConfig(lr=1e-3, batch_size=1024, base_batch_size=256, lr_scaling="linear")
    assert c.peak_lr == pytest.approx(4e-3)
    assert TrainConfig(betas=[0.8, 0.9]).betas == (0.8, 0.9)
    with pytest.raises(ValueError, match="Invalid lr: 0"):
        c.replace(lr=0)


# ------------------------------------------------------------------ the schedule
def torch_rates(make_scheduler, lr: float, n: int) -> np.ndarray:
    """The rates torch's scheduler gives updates 0..n-1, driven as a training loop drives it."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
        scheduler = make_scheduler(opt)
        rates = []
        for _ in range(n):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            scheduler.step()
    return np.array(rates)


SCHEDULE_CASES = [
    dict(lr=0.01, warmup_steps=10, min_lr=1e-4),
    dict(lr=0.003, warmup_steps=2, batch_size=512, base_batch_size=128, lr_scaling="sqrt"),
    dict(lr=0.001, warmup_steps=25, batch_size=256, base_batch_size=32, lr_scaling="linear",
         min_lr=1e-5),
    dict(lr=0.05, warmup_steps=0),
    dict(lr=0.05, warmup_steps=1, min_lr=0.01),
]


@pytest.mark.parametrize("kwargs", SCHEDULE_CASES)
@pytest.mark.parametrize("T", [40, 300])
def test_lr_at_equals_torch_warmup_then_cosine(kwargs, T):
    config = TrainConfig(**kwargs)
    W, peak = config.warmup_steps, config.peak_lr

    def make(opt):
        cosine = tls.CosineAnnealingLR(opt, T_max=T - W, eta_min=config.min_lr)
        if W == 0:
            return cosine
        warm = (tls.LinearLR(opt, start_factor=1 / W, end_factor=1.0, total_iters=W - 1)
                if W > 1 else tls.ConstantLR(opt, factor=1.0, total_iters=1))
        return tls.SequentialLR(opt, schedulers=[warm, cosine], milestones=[W])

    ours = np.array([lr_at(t, T, config) for t in range(T)])
    np.testing.assert_allclose(ours, torch_rates(make, peak, T), rtol=1e-12, atol=0)
    # ...and it is optbook.schedules' warm-up + cosine, counted in updates.
    reference = WarmupCosineSchedule(lr_max=peak, warmup_epochs=W, total_epochs=T,
                                     lr_min=config.min_lr)
    assert ours.tolist() == [reference(t) for t in range(T)]
    if W:
        assert ours[0] == pytest.approx(peak / W) and ours[W - 1] == pytest.approx(peak)
    assert ours[-1] > config.min_lr and ours.max() == pytest.approx(peak)


@pytest.mark.parametrize("W", [1, 5, 30])
def test_lr_at_constant_schedule_equals_torch_linear_warmup(W):
    config = TrainConfig(lr=0.02, warmup_steps=W, schedule="constant")
    T = 60

    def make(opt):
        if W == 1:
            return tls.ConstantLR(opt, factor=1.0, total_iters=1)
        return tls.LinearLR(opt, start_factor=1 / W, end_factor=1.0, total_iters=W - 1)

    ours = np.array([lr_at(t, T, config) for t in range(T)])
    np.testing.assert_allclose(ours, torch_rates(make, 0.02, T), rtol=1e-12, atol=0)
    assert (ours[W:] == 0.02).all()


@pytest.mark.parametrize("step, total, name", [(-1, 10, "step"), (1.0, 10, "step"),
                                               (0, 0, "total_steps"), (0, 5, "warmup_steps")])
def test_lr_at_rejects_bad_input(step, total, name):
    with pytest.raises(ValueError, match=f"Invalid {name}"):
        lr_at(step, total, TrainConfig(warmup_steps=5))


def test_fit_uses_lr_at_for_every_update():
    task = small_task(n=200)
    config = TrainConfig(epochs=3, batch_size=32, lr=2e-3, warmup_steps=6, min_lr=1e-5)
    result = fit(task.model, task.dataset, task.loss_fn, config, device=CPU)
    T = 3 * steps_per_epoch(200, 32)
    assert result.total_steps == result.steps == T
    assert [r["lr"] for r in result.history] == [lr_at(t, T, config) for t in range(T)]
    assert [r["step"] for r in result.history] == list(range(T))
    assert result.final_lr == lr_at(T - 1, T, config)


def test_warmup_longer_than_the_run_is_refused():
    task = small_task(n=64)
    with pytest.raises(ValueError, match="Invalid warmup_steps: 10 .*8 = epochs"):
        fit(task.model, task.dataset, task.loss_fn,
            TrainConfig(epochs=2, batch_size=16, warmup_steps=10), device=CPU)


# ------------------------------------------------------------------ against hand-written loops
@pytest.mark.parametrize("kwargs", [
    dict(optimizer="adamw", lr=3e-3, warmup_steps=5, weight_decay=0.01),
    dict(optimizer="adamw", lr=1e-2, warmup_steps=0, betas=(0.8, 0.99), epsilon=1e-6,
         weight_decay=0.1, min_lr=1e-4, batch_size=48, base_batch_size=16, lr_scaling="sqrt"),
    dict(optimizer="sgd", lr=0.02, momentum=0.9, weight_decay=1e-3, warmup_steps=4),
    dict(optimizer="adamw", lr=5e-3, warmup_steps=3, clip_norm=0.5, schedule="constant"),
])
def test_fit_equals_a_hand_written_torch_loop(kwargs):
    """Same batches, same torch optimizer, same rates: the same weights, bit for bit."""
    config = TrainConfig(**{"epochs": 3, "batch_size": 32, **kwargs})
    task, twin = small_task(n=200), small_task(n=200)
    result = fit(task.model, task.dataset, task.loss_fn, config, device=CPU)
    X, y = twin.dataset.tensors
    losses, lrs, norms = hand_loop(twin.model, X, y, config)
    assert_same_weights(task.model, twin.model)
    assert [r["loss"] for r in result.history] == losses
    assert [r["lr"] for r in result.history] == lrs
    np.testing.assert_allclose([r["grad_norm"] for r in result.history], norms, rtol=1e-6)


def test_clipping_bounds_every_update():
    """Plain SGD: the update is -α·g_clipped, so its norm is α·min(‖g‖, c)."""
    c = 0.05
    config = TrainConfig(epochs=2, batch_size=32, lr=0.1, optimizer="sgd", momentum=0.0,
                         weight_decay=0.0, clip_norm=c, warmup_steps=3)
    task, twin = small_task(n=256), small_task(n=256)
    for t in (task, twin):   # float64, so that rounding cannot blur the bound
        t.model.double()
        t.dataset = TensorDataset(*(a.double() for a in t.dataset.tensors))
    snapshots = [torch.cat([p.flatten() for p in params_of(task.model)])]
    result = fit(task.model, task.dataset, task.loss_fn, config, device=CPU,
                 callbacks=[lambda model, record: snapshots.append(
                     torch.cat([p.detach().flatten() for p in model.parameters()]))])
    steps = np.array([torch.linalg.vector_norm(b - a).item()
                      for a, b in zip(snapshots, snapshots[1:])])
    lrs = np.array([r["lr"] for r in result.history])
    norms = np.array([r["grad_norm"] for r in result.history])
    assert (norms > c).sum() >= len(norms) // 2          # clipping was active...
    assert (steps <= lrs * c * (1 + 1e-9)).all()         # ...and bounded every update
    # torch scales by min(1, c / (‖g‖ + 1e-6)) (clip_grad_norm_'s documented formula).
    np.testing.assert_allclose(steps, lrs * norms * np.minimum(1.0, c / (norms + 1e-6)),
                               rtol=1e-9)
    # The recorded norms are the pre-clip norms clip_grad_norm_ reports in a hand loop.
    X, y = twin.dataset.tensors
    _, _, hand_norms = hand_loop(twin.model, X, y, config)
    assert norms.tolist() == hand_norms
    assert_same_weights(task.model, twin.model)


# ------------------------------------------------------------------ seeds and determinism
def test_same_seed_same_weights_other_seed_other_weights():
    runs = []
    for seed in (3, 3, 4):
        task = small_task()
        config = TrainConfig(epochs=2, batch_size=32, lr=3e-3, warmup_steps=4, seed=seed)
        fit(task.model, task.dataset, task.loss_fn, config, device=CPU)
        runs.append(task.model)
    assert_same_weights(runs[0], runs[1])
    assert not all(torch.equal(p, q) for p, q in zip(runs[0].parameters(),
                                                     runs[2].parameters()))


# ------------------------------------------------------------------ non-finite loss
def test_exploding_run_stops_with_a_helpful_error_at_the_right_step():
    config = TrainConfig(epochs=2, batch_size=32, lr=30.0, optimizer="sgd", momentum=0.9,
                         weight_decay=0.0)
    task, twin = small_task(), small_task()
    X, y = twin.dataset.tensors
    *_, (what, expected) = hand_loop(twin.model, X, y, config, stop_at_nonfinite=True)
    with pytest.raises(NonFiniteLossError) as info:
        fit(task.model, task.dataset, task.loss_fn, config, device=CPU)
    err = info.value
    assert isinstance(err, FloatingPointError)
    assert err.step == expected > 0
    assert err.lr == lr_at(expected, 2 * 8, config)
    message = str(err)
    assert f"The {what} became" in message and f"at step {expected} " in message
    assert f"α = {err.lr:.6g}" in message
    for advice in ("smaller learning rate", "warm-up", "clip_norm", "standardised inputs"):
        assert advice in message
    assert len(err.history) == expected
    assert all(math.isfinite(r["loss"]) for r in err.history)
    assert err.last_finite_loss == err.history[-1]["loss"]
    assert f"{err.last_finite_loss:.6g}" in message


def test_warmup_and_clipping_rescue_the_same_run():
    base = dict(epochs=2, batch_size=32, optimizer="sgd", momentum=0.9, weight_decay=0.0,
                lr=1.5)
    task = small_task()
    with pytest.raises(NonFiniteLossError):
        fit(task.model, task.dataset, task.loss_fn, TrainConfig(**base), device=CPU)
    task = small_task()
    result = fit(task.model, task.dataset, task.loss_fn,
                 TrainConfig(**base, warmup_steps=8, clip_norm=1.0), device=CPU)
    assert all(math.isfinite(r["loss"]) for r in result.history)


# ------------------------------------------------------------------ checkpoint and resume
class NoisyTask:
    """A model with dropout and a loss that draws from torch, random and NumPy: a resumed
    run can only match if every random state is restored."""

    def __init__(self, n=200, seed=0):
        X, y = regression_task(n=n, features=6, seed=0).dataset.tensors
        self.dataset = TensorDataset(X, y)
        torch.manual_seed(seed)
        self.model = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(),
                                         torch.nn.Dropout(0.2), torch.nn.Linear(32, 1))

    @staticmethod
    def loss_fn(model, batch):
        x, y = batch
        jitter = 1.0 + 0.01 * random.random() + 0.01 * float(np.random.rand())
        return jitter * torch.nn.functional.mse_loss(model(x), y)


RESUME_CONFIG = dict(epochs=3, batch_size=32, lr=3e-3, warmup_steps=5, clip_norm=1.0)


def uninterrupted():
    task = NoisyTask()
    result = fit(task.model, task.dataset, task.loss_fn, TrainConfig(**RESUME_CONFIG),
                 device=CPU)
    return task.model, result


def test_resume_after_max_steps_mid_epoch_gives_the_same_weights(tmp_path):
    reference, full = uninterrupted()
    path = tmp_path / "run.pt"
    first = NoisyTask()
    part = fit(first.model, first.dataset, first.loss_fn,
               TrainConfig(**RESUME_CONFIG, checkpoint_path=path, max_steps=10), device=CPU)
    assert part.steps == 10 and part.history[-1]["epoch"] == 1   # 7 updates per epoch
    assert os.listdir(tmp_path) == ["run.pt"]                    # no temporary file left
    second = NoisyTask(seed=123)                                 # other initial weights
    rest = fit(second.model, second.dataset, second.loss_fn,
               TrainConfig(**RESUME_CONFIG, checkpoint_path=path, resume=True), device=CPU)
    assert rest.resumed_from == 10 and rest.steps == full.steps == 21
    assert_same_weights(second.model, reference)
    assert rest.history == full.history
    assert rest.epoch_metrics == full.epoch_metrics


def test_resume_after_a_crash_restarts_from_the_last_checkpoint(tmp_path):
    reference, full = uninterrupted()
    path = str(tmp_path / "run.pt")

    def crash(model, record):
        if record["step"] == 11:
            raise KeyboardInterrupt("simulated crash")

    first = NoisyTask()
    with pytest.raises(KeyboardInterrupt):
        fit(first.model, first.dataset, first.loss_fn,
            TrainConfig(**RESUME_CONFIG, checkpoint_path=path, checkpoint_every=4),
            device=CPU, callbacks=[crash])
    second = NoisyTask(seed=7)
    rest = fit(second.model, second.dataset, second.loss_fn,
               TrainConfig(**RESUME_CONFIG, checkpoint_path=path, checkpoint_every=4,
                           resume=True), device=CPU)
    assert rest.resumed_from == 8
    assert_same_weights(second.model, reference)
    assert rest.history == full.history


def test_resume_refuses_a_different_run(tmp_path):
    path = tmp_path / "run.pt"
    task = NoisyTask()
    fit(task.model, task.dataset, task.loss_fn,
        TrainConfig(**RESUME_CONFIG, checkpoint_path=path, max_steps=3), device=CPU)
    with pytest.raises(ValueError, match=r"batch_size=32 \(now 64\)"):
        fit(task.model, task.dataset, task.loss_fn,
            TrainConfig(**{**RESUME_CONFIG, "batch_size": 64}, checkpoint_path=path,
                        resume=True), device=CPU)
    saved = torch.load(path, weights_only=True)
    saved["world_size"] = 2
    torch.save(saved, path)
    with pytest.raises(ValueError, match=r"world_size=2 \(now 1\)"):
        fit(task.model, task.dataset, task.loss_fn,
            TrainConfig(**RESUME_CONFIG, checkpoint_path=path, resume=True), device=CPU)


def test_resume_without_a_checkpoint_starts_afresh(tmp_path):
    task = small_task()
    result = fit(task.model, task.dataset, task.loss_fn,
                 TrainConfig(epochs=1, batch_size=64, checkpoint_path=tmp_path / "none.pt",
                             resume=True), device=CPU)
    assert result.resumed_from is None and result.steps == 4
    assert (tmp_path / "none.pt").exists()


# ------------------------------------------------------------------ results, logging, misc
def test_loss_decreases_on_the_demo_task():
    task = regression_task()
    task.model.eval()
    with torch.no_grad():
        before = task.eval_fn(task.model)["mse"]
    result = fit(task.model, task.dataset, task.loss_fn,
                 TrainConfig(**task.config_overrides), eval_fn=task.eval_fn, device=CPU)
    after = [m["mse"] for m in result.epoch_metrics]
    assert len(after) == task.config_overrides["epochs"]
    assert after[-1] < 0.5 * before
    assert result.epoch_metrics[-1]["train_loss"] < 0.6 * result.epoch_metrics[0]["train_loss"]


def test_epoch_metrics_hold_the_mean_training_loss_and_eval_metrics():
    task = small_task(n=192)
    calls = []

    def eval_fn(model):
        calls.append((model.training, torch.is_grad_enabled()))
        return {"mse": task.eval_fn(model)["mse"], "tensor": torch.tensor(2.0)}

    result = fit(task.model, task.dataset, task.loss_fn,
                 TrainConfig(epochs=3, batch_size=32, lr=3e-3), eval_fn=eval_fn, device=CPU)
    assert calls == [(False, False)] * 3 and task.model.training
    for e, metrics in enumerate(result.epoch_metrics):
        losses = [r["loss"] for r in result.history if r["epoch"] == e]
        assert metrics["epoch"] == e
        assert metrics["train_loss"] == pytest.approx(np.mean(losses), rel=1e-12)
        assert metrics["tensor"] == 2.0 and isinstance(metrics["tensor"], float)
    assert result.samples_seen == [3 * 192] and result.world_size == 1


def test_log_every_thins_the_history():
    task = small_task()
    result = fit(task.model, task.dataset, task.loss_fn,
                 TrainConfig(epochs=2, batch_size=16, log_every=5), device=CPU)
    assert [r["step"] for r in result.history] == list(range(0, 32, 5))
    assert result.steps == 32


def test_drop_last_and_batch_checks():
    task = small_task(n=100)
    result = fit(task.model, task.dataset, task.loss_fn,
                 TrainConfig(batch_size=32, drop_last=True), device=CPU)
    assert result.steps == 3 and result.samples_seen == [96]
    with pytest.raises(ValueError, match="Invalid batch_size: 128 with drop_last"):
        fit(task.model, task.dataset, task.loss_fn,
            TrainConfig(batch_size=128, drop_last=True), device=CPU)


def test_bad_loss_functions_and_arguments_are_named():
    task = small_task()
    with pytest.raises(TypeError, match="loss_fn must return a scalar tensor"):
        fit(task.model, task.dataset, lambda m, b: m(b[0]), device=CPU)
    with pytest.raises(ValueError, match="does not depend on the model"):
        fit(task.model, task.dataset, lambda m, b: b[1].mean(), device=CPU)
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        fit(task.model, task.dataset, task.loss_fn, {"lr": 1e-3})
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        fit(lambda x: x, task.dataset, task.loss_fn)
    with pytest.raises(ValueError, match="dataset: it is empty"):
        fit(task.model, TensorDataset(torch.zeros(0, 6)), task.loss_fn)


def test_mixed_precision_is_never_used_on_the_cpu():
    task = small_task()
    dtypes = []

    def loss_fn(model, batch):
        out = model(batch[0])
        dtypes.append(out.dtype)
        return torch.nn.functional.mse_loss(out, batch[1])

    for amp in ("auto", True, False, "off"):
        fit(task.model, task.dataset, loss_fn, TrainConfig(amp=amp, batch_size=128), device=CPU)
    assert set(dtypes) == {torch.float32}
    with pytest.raises(ValueError, match="Invalid amp: 'bf16' on device cpu"):
        fit(task.model, task.dataset, loss_fn, TrainConfig(amp="bf16"), device=CPU)


def test_progress_line_shows_loss_and_lr(capsys):
    task = small_task()
    fit(task.model, task.dataset, task.loss_fn,
        TrainConfig(epochs=2, batch_size=32, progress=True), device=CPU)
    err = capsys.readouterr().err
    assert "step 16/16" in err and "epoch 2/2" in err and " loss " in err and " lr " in err
    fit(task.model, task.dataset, task.loss_fn, TrainConfig(batch_size=32), device=CPU)
    assert capsys.readouterr().err == ""


def test_module_examples_run():
    for module in (optbook.training.loop, optbook.training.config):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# ------------------------------------------------------------------ tasks and the command line
def test_load_task_errors_name_the_problem():
    with pytest.raises(ValueError, match="must look like"):
        load_task("optbook.training")
    with pytest.raises(ValueError, match="cannot import 'no_such_module_xyz'"):
        load_task("no_such_module_xyz:task")
    with pytest.raises(ValueError, match="has no function 'nothing'"):
        load_task("optbook.training:nothing")
    with pytest.raises(TypeError, match="must return optbook.training.cli.Task"):
        load_task("optbook.training.config:lr_at", {"step": 0, "total_steps": 1,
                                          "config": TrainConfig()})
    assert isinstance(load_task("optbook.training.cli:regression_task", {"n": 64}), Task)


def test_command_line_writes_the_result_and_weights(tmp_path, capsys):
    out, weights = tmp_path / "result.json", tmp_path / "w.pt"
    status = main(["--task", "optbook.training.cli:regression_task", "--task-kwargs", '{"n": 256}',
                   "--epochs", "2", "--batch-size", "32", "--lr", "0.004", "--clip-norm", "1", "--warmup-steps", "4",
                   "--betas", "0.8", "0.99", "--device", "cpu", "--out", str(out),
                   "--save-weights", str(weights)])
    assert status == 0 and "16 updates" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["world_size"] == 1 and data["steps"] == 16 and len(data["history"]) == 16
    assert len(data["epoch_metrics"]) == 2 and "mse" in data["epoch_metrics"][0]
    # Flags win over the task's config_overrides (epochs=8, lr=1e-2), the rest is kept.
    assert (data["config"]["epochs"], data["config"]["lr"], data["config"]["warmup_steps"],
            data["config"]["betas"]) == (2, 0.004, 4, [0.8, 0.99])
    task = regression_task(n=256)
    config = TrainConfig(**{**task.config_overrides, "epochs": 2, "batch_size": 32,
                            "lr": 0.004, "clip_norm": 1.0, "betas": (0.8, 0.99), "warmup_steps": 4})
    fit(task.model, task.dataset, task.loss_fn, config, device=CPU)
    saved = torch.load(weights, weights_only=True)
    for name, value in task.model.state_dict().items():
        assert torch.equal(saved[name], value)


def test_command_line_reports_divergence(capsys):
    status = main(["--task", "optbook.training.cli:regression_task", "--lr", "50",
                   "--optimizer", "sgd", "--warmup-steps", "0", "--device", "cpu"])
    assert status == 1
    assert "optbook.training: The " in capsys.readouterr().err


def test_command_line_names_bad_settings(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--task", "optbook.training.cli:regression_task", "--optimizer", "adam"])
    assert info.value.code == 2
    assert "Invalid optimizer: 'adam'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--task", "optbook.training:no_such_task"])
    assert "has no function 'no_such_task'" in capsys.readouterr().err


def test_data_loader_workers_do_not_change_the_run():
    runs = []
    for workers in (0, 2):
        task = small_task(n=128)
        fit(task.model, task.dataset, task.loss_fn,
            TrainConfig(epochs=2, batch_size=32, num_workers=workers), device=CPU)
        runs.append(task.model)
    assert_same_weights(*runs)


def test_config_fields_all_reachable_from_the_command_line():
    parser = optbook.training.cli._parser()
    dests = {a.dest for a in parser._actions}
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= dests
