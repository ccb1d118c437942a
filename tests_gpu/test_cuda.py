"""The CUDA paths, on a machine with an NVIDIA GPU: ``make test-gpu``.

These tests are not part of ``make test`` (CI has no GPU); on a machine without CUDA
they fail at once (see conftest.py) instead of being skipped.  They check what the CPU
suite cannot: the optimizers' torch path on CUDA tensors (bitwise the readable step
functions, and torch.optim's CUDA implementations to rounding), the training pipeline's
mixed precision (bfloat16 autocast, float16 with a GradScaler) and its checkpoints on
the GPU, DistributedDataParallel over NCCL, 8.10's GPU cell and 8.1's timing loop.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from optbook import optimizers as ob
from optbook.book.device import describe, pick_device
from optbook.training.cli import regression_task
from optbook.training.config import TrainConfig
from optbook.training.loop import NonFiniteLossError, fit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_optimizer_speed_paths import CASES, HP, make, readable_update  # noqa: E402
from test_optimizers import draw_hyperparameters, torch_twin  # noqa: E402

CUDA = torch.device("cuda")
#: Chunked on the GPU: TORCH_CHUNK_BYTES["cuda"] is 64 MiB, i.e. 16 Mi float32 numbers.
SHAPES = [(5000, 4000), (37,), (300, 7), (1,)]


def test_the_book_picks_the_gpu():
    assert pick_device() == CUDA
    assert torch.cuda.get_device_name(0) in describe(pick_device())


# ------------------------------------------------------------------ optimizers on CUDA
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES)
def test_classes_on_cuda_are_bitwise_the_readable_step(case, dtype):
    gen = torch.Generator().manual_seed(0)
    start = {f"p{i}": torch.randn(s, generator=gen, dtype=dtype) for i, s in enumerate(SHAPES)}
    fast = {k: v.to(CUDA) for k, v in start.items()}
    slow = {k: v.to(CUDA) for k, v in start.items()}
    opt, state = make(case), {}
    for t in range(1, 4):
        scale = 10.0 ** (t - 2)
        grads = {"d" + k: (scale * torch.randn(v.shape, generator=gen, dtype=dtype)).to(CUDA)
                 for k, v in start.items()}
        opt.update(fast, grads)
        readable_update(case, slow, grads, state, t, HP[case]["lr"])
    assert opt._scratch, "the chunked path was not taken"
    for key in fast:
        assert fast[key].device.type == CUDA.type
        assert torch.equal(fast[key], slow[key]), key
        for name, ref in zip(opt.buffers, ("a", "b")):
            assert opt.state[key][name].device.type == CUDA.type
            assert torch.equal(opt.state[key][name], state[key][ref]), (key, name)


@pytest.mark.parametrize("case", CASES)
def test_classes_on_cuda_match_torch_optim_on_cuda(case):
    """float64 on the GPU, 50 steps, against torch.optim's CUDA implementation."""
    hp = draw_hyperparameters(case, seed=3)
    gen = torch.Generator().manual_seed(1)
    params = {f"p{i}": torch.randn(s, generator=gen, dtype=torch.float64).to(CUDA)
              for i, s in enumerate([(64, 33), (33,), (1000,)])}
    tensors = [p.clone().requires_grad_(True) for p in params.values()]
    twin, _ = torch_twin(case, hp, tensors)
    ours = ob.OPTIMIZERS["Momentum" if case == "Nesterov" else case](**hp)
    for _ in range(50):
        grads = {"d" + k: torch.randn(p.shape, generator=gen, dtype=torch.float64).to(CUDA)
                 for k, p in params.items()}
        for (k, p), t in zip(params.items(), tensors):
            t.grad = grads["d" + k].clone()
        twin.step()
        ours.update(params, grads)
    for p, t in zip(params.values(), tensors):
        torch.testing.assert_close(p, t.detach(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", ["Adam", "AdamW", "RMSprop", "Momentum"])
def test_cuda_and_cpu_agree_to_float32_rounding(case):
    gen = torch.Generator().manual_seed(2)
    cpu = {"w": torch.randn(4096, 257, generator=gen)}
    gpu = {"w": cpu["w"].to(CUDA)}
    a, b = make(case), make(case)
    for _ in range(10):
        g = torch.randn(4096, 257, generator=gen)
        a.update(cpu, {"dw": g})
        b.update(gpu, {"dw": g.to(CUDA)})
    torch.testing.assert_close(gpu["w"].cpu(), cpu["w"], rtol=1e-5, atol=1e-6)


def test_page_9_gpu_cell_book_adam_against_fused_adam():
    """8.10's last cell: the book's Adam and torch's fused Adam train two copies of a
    model on the GPU for 200 updates and end within float32 rounding of each other."""
    torch.manual_seed(0)
    X = torch.randn(512, 20)
    y = (X[:, :1] * 2 - X[:, 1:2]).sin()
    make_model = lambda: torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(),
                                             torch.nn.Linear(64, 1))
    reference = make_model().to(CUDA)
    book = copy.deepcopy(reference)
    fused = torch.optim.Adam(reference.parameters(), lr=0.001, fused=True)
    ours = ob.Adam(lr=0.001)
    Xd, yd = X.to(CUDA), y.to(CUDA)
    rng = torch.Generator().manual_seed(0)
    for _ in range(200):
        batch = torch.randint(len(X), (32,), generator=rng).to(CUDA)
        for model in (reference, book):
            model.zero_grad()
            torch.nn.functional.mse_loss(model(Xd[batch]), yd[batch]).backward()
        fused.step()
        with torch.no_grad():
            params = dict(book.named_parameters())
            ours.update(params, {"d" + k: p.grad for k, p in params.items()})
    gap = max((p - q).abs().max().item() for p, q in zip(reference.parameters(), book.parameters()))
    size = max(p.abs().max().item() for p in reference.parameters())
    assert 0 < gap < 1e-4 * size


def test_page_1_timing_loop_runs_on_the_gpu():
    from optbook.minibatch import mlp_seconds_per_example

    times = mlp_seconds_per_example([500, 512], N=4096, repeats=2, warmup=1, device=CUDA)
    assert set(times) == {500, 512}
    assert all(len(t) == 2 and np.all(t > 0) for t in times.values())


# ------------------------------------------------------------------ the training pipeline
def task():
    return regression_task(n=512, features=6, hidden=32)


def test_fit_on_cuda_in_float32_matches_the_cpu_run():
    config = TrainConfig(epochs=3, batch_size=64, lr=3e-3, warmup_steps=4, amp="off")
    a, b = task(), task()
    on_gpu = fit(a.model, a.dataset, a.loss_fn, config, device=CUDA)
    on_cpu = fit(b.model, b.dataset, b.loss_fn, config, device="cpu")
    assert on_gpu.device.startswith(CUDA.type) and on_cpu.device == "cpu"
    np.testing.assert_allclose([r["loss"] for r in on_gpu.history],
                               [r["loss"] for r in on_cpu.history], rtol=1e-4)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        torch.testing.assert_close(p.detach().cpu(), q.detach(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("amp, dtype", [("auto", torch.bfloat16), ("bf16", torch.bfloat16),
                                        ("fp16", torch.float16)])
def test_mixed_precision_trains_in_the_requested_type(amp, dtype):
    """Autocast runs the linear layers in ``dtype`` during training (seen by a forward
    hook; the end-of-epoch evaluation may run in float32), the weights stay float32,
    and the run learns about as well as float32 does."""
    seen = []
    a = task()
    for layer in a.model.modules():
        if isinstance(layer, torch.nn.Linear):
            layer.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    # the task's own settings: in float32 the MSE falls from about 1.2 to about 0.36
    config = TrainConfig(epochs=8, batch_size=64, lr=1e-2, warmup_steps=16, amp=amp)
    mixed = fit(a.model, a.dataset, a.loss_fn, config, eval_fn=a.eval_fn, device=CUDA)
    assert seen.count(dtype) >= 3 * mixed.steps          # three Linear layers per update
    assert set(seen) <= {dtype, torch.float32}
    assert all(p.dtype == torch.float32 for p in a.model.parameters())
    b = task()
    full = fit(b.model, b.dataset, b.loss_fn, dataclasses.replace(config, amp="off"),
               eval_fn=b.eval_fn, device=CUDA)
    first, last = mixed.epoch_metrics[0]["mse"], mixed.epoch_metrics[-1]["mse"]
    assert last < 0.5 * first
    assert last < 1.25 * full.epoch_metrics[-1]["mse"]


def test_fp16_checkpoint_resume_on_cuda_continues_the_same_run(tmp_path):
    """The GradScaler's state is in the checkpoint: stopping after 10 updates and
    resuming gives the losses of the uninterrupted float16 run."""
    config = dict(epochs=3, batch_size=64, lr=3e-3, warmup_steps=4, amp="fp16",
                  checkpoint_every=5)
    a = task()
    full = fit(a.model, a.dataset, a.loss_fn,
               TrainConfig(**config, checkpoint_path=str(tmp_path / "full.pt")), device=CUDA)
    path = str(tmp_path / "run.pt")
    b = task()
    fit(b.model, b.dataset, b.loss_fn, TrainConfig(**config, checkpoint_path=path, max_steps=10),
        device=CUDA)
    saved = torch.load(path, weights_only=False)
    assert saved["scaler"] is not None and saved["scaler"]["scale"] > 0
    c = task()
    rest = fit(c.model, c.dataset, c.loss_fn,
               TrainConfig(**config, checkpoint_path=path, resume=True), device=CUDA)
    assert rest.resumed_from == 10 and rest.steps == full.steps
    np.testing.assert_allclose([r["loss"] for r in rest.history[-5:]],
                               [r["loss"] for r in full.history[-5:]], rtol=1e-3)
    for p, q in zip(a.model.parameters(), c.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4)


def test_divergence_on_cuda_raises_the_named_error():
    a = task()
    with pytest.raises(NonFiniteLossError, match="update"):
        fit(a.model, a.dataset, a.loss_fn,
            TrainConfig(epochs=3, batch_size=64, lr=50.0, optimizer="sgd", amp="off"),
            device=CUDA)


DDP_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch, torch.distributed as dist
    from optbook.training.cli import regression_task
    from optbook.training.config import TrainConfig
    from optbook.training.loop import fit
    dist.init_process_group("nccl", device_id=torch.device("cuda", 0))
    t = regression_task(n=512, features=6, hidden=32)
    r = fit(t.model, t.dataset, t.loss_fn,
            TrainConfig(epochs=2, batch_size=64, lr=3e-3, warmup_steps=4, amp="off"),
            device="cuda")
    x = torch.ones(3, device="cuda")
    dist.all_reduce(x)
    print(json.dumps({"backend": dist.get_backend(), "world": r.world_size, "sum": x.tolist(),
                      "losses": [h["loss"] for h in r.history]}))
    dist.destroy_process_group()
""")


def test_data_parallel_over_nccl():
    """One process in an NCCL group (this machine has one GPU, and NCCL refuses two ranks
    on one device): fit() inside the group runs on the rank's GPU and repeats the plain
    run, and an all-reduce over NCCL works.  Several GPUs (DDP proper) stay untested."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29517", "RANK": "0",
           "WORLD_SIZE": "1", "LOCAL_RANK": "0"}
    done = subprocess.run([sys.executable, "-c", DDP_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["backend"] == "nccl" and out["world"] == 1 and out["sum"] == [1.0] * 3
    a = task()
    plain = fit(a.model, a.dataset, a.loss_fn,
                TrainConfig(epochs=2, batch_size=64, lr=3e-3, warmup_steps=4, amp="off"),
                device=CUDA)
    np.testing.assert_allclose(out["losses"], [h["loss"] for h in plain.history], rtol=1e-5)


def test_benchmark_cuda_section_quick(tmp_path):
    out = tmp_path / "cuda.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "optimizer_step.py"),
                           "--cuda-only", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.read_text())["cuda"]
    impls = {s["implementation"] for s in data["steps"]}
    assert {"optbook class", "optbook readable functions", "torch foreach",
            "torch fused"} <= impls
    for s in data["steps"]:
        if s["implementation"] == "optbook class":
            assert s["max_abs_diff_from_readable"] == 0.0
