"""The optimizers' fast paths: the classes run the readable step functions' operations
with ``out=`` through a fixed scratch buffer, chunk by chunk (and, on NumPy, on several
threads), or, for NumPy arrays, as one C loop generated from the same kernel
(:mod:`optbook.fast.onepass`).  Checked here: results bitwise equal to the readable functions
on every path; which path a step takes; the fall-back when the C loop cannot be built;
no per-step allocation that grows with the number of parameters; the benchmark script
runs and writes the results file the page reads.  No timing is asserted anywhere."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from torch.utils._python_dispatch import TorchDispatchMode

from optbook.fast import onepass
from optbook import optimizers as ob
from optbook.fast import engine
from optbook.fast import kernels

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = ROOT / "benchmarks" / "optimizer_step.py"
RECORDED = ROOT / "benchmarks" / "results" / "cpu-2core.json"
RECORDED_CUDA = ROOT / "benchmarks" / "results" / "cuda-nvidia-h200.json"
CASES = ["SGD", "Momentum", "Nesterov", "RMSprop", "AdaGrad", "Adam", "AdamW"]
HP = {"SGD": dict(lr=0.03), "Momentum": dict(lr=0.03, beta=0.8),
      "Nesterov": dict(lr=0.03, beta=0.8, nesterov=True),
      "RMSprop": dict(lr=0.01, beta=0.95, epsilon=1e-7), "AdaGrad": dict(lr=0.1, epsilon=1e-7),
      "Adam": dict(lr=0.01, beta1=0.8, beta2=0.99, epsilon=1e-7),
      "AdamW": dict(lr=0.01, beta1=0.8, beta2=0.99, epsilon=1e-7, weight_decay=0.1)}


def make(case):
    return ob.OPTIMIZERS["Momentum" if case == "Nesterov" else case](**HP[case])


def readable_update(case, params, grads, state, t, lr):
    """The chapter's step functions, called directly: the reference for the classes."""
    hp = HP[case]
    for key, theta in params.items():
        g = grads["d" + key]
        st = state.setdefault(key, {"a": ob.zeros_like(theta), "b": ob.zeros_like(theta)})
        if case == "SGD":
            ob.sgd_step(theta, g, lr)
        elif case in ("Momentum", "Nesterov"):
            ob.momentum_step(theta, g, st["a"], lr, hp["beta"], case == "Nesterov")
        elif case == "RMSprop":
            ob.rmsprop_step(theta, g, st["a"], lr, hp["beta"], hp["epsilon"])
        elif case == "AdaGrad":
            ob.adagrad_step(theta, g, st["a"], lr, hp["epsilon"])
        elif case == "Adam":
            ob.adam_step(theta, g, st["a"], st["b"], t, lr, hp["beta1"], hp["beta2"], hp["epsilon"])
        else:
            ob.adamw_step(theta, g, st["a"], st["b"], t, lr, hp["beta1"], hp["beta2"],
                          hp["epsilon"], hp["weight_decay"])


def run_both(case, shapes, dtype, lib="numpy", steps=4, seed=0):
    """The class and the readable functions side by side on the same random data."""
    rng = np.random.default_rng(seed)
    start = {f"p{i}": rng.standard_normal(s).astype(dtype) for i, s in enumerate(shapes)}
    convert = (lambda a: torch.from_numpy(a)) if lib == "torch" else (lambda a: a)
    fast = {k: convert(v.copy()) for k, v in start.items()}
    slow = {k: convert(v.copy()) for k, v in start.items()}
    opt, state = make(case), {}
    for t in range(1, steps + 1):
        # a scale per step, so that the moments see gradients of different sizes
        grads = {"d" + k: convert((rng.standard_normal(v.shape) * 10.0 ** rng.uniform(-3, 1))
                                  .astype(dtype)) for k, v in start.items()}
        opt.update(fast, grads)
        readable_update(case, slow, grads, state, t, HP[case]["lr"])
    return opt, fast, slow, state


def as_numpy(x):
    return x.numpy() if isinstance(x, torch.Tensor) else x


def assert_bitwise_equal(opt, fast, slow, state):
    for key in fast:
        assert_array_equal(as_numpy(fast[key]), as_numpy(slow[key]), strict=True)
        for name, ref in zip(opt.buffers, ("a", "b")):
            assert_array_equal(as_numpy(opt.state[key][name]), as_numpy(state[key][ref]),
                               strict=True)


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 1 Ki float32 numbers and no small-array exemption, so that arrays of
    a few thousand numbers already take many chunks and are split between threads."""
    monkeypatch.setattr(engine, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(engine, "TORCH_CHUNK_BYTES", {"cpu": 4096, "cuda": 4096})
    monkeypatch.setattr(engine, "SMALL_ARRAY", 1)


@pytest.fixture
def chunked():
    """The chunked NumPy path even for large steps (compiled kernels off)."""
    engine.set_compiled(False)
    yield
    engine.set_compiled(None)


@pytest.fixture
def compiled():
    """The C loop for NumPy steps, even where OPTBOOK_COMPILE=0 is set."""
    engine.set_compiled(True)
    yield
    engine.set_compiled(None)


@pytest.fixture
def loop_calls(monkeypatch):
    """Every call of a C loop, as the number of jobs (arrays or parts of arrays) it ran."""
    calls = []
    original = onepass.CKernel.__call__

    def spy(self, jobs, check=True):
        calls.append(len(jobs))
        return original(self, jobs, check)

    monkeypatch.setattr(onepass.CKernel, "__call__", spy)
    return calls


@pytest.fixture
def fresh_cache(monkeypatch, tmp_path):
    """An empty disk cache and no loop built yet in this process."""
    monkeypatch.setenv("OPTBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(onepass, "_kernels", {})
    monkeypatch.setattr(engine, "_compile_failure", None)
    return tmp_path / "cache"


@pytest.fixture(params=[1, 2, 3], ids=lambda n: f"{n}-threads")
def threads(request):
    before = engine.get_num_threads()
    engine.set_num_threads(request.param)
    yield request.param
    engine.set_num_threads(before)


# ----------------------------------------------------------- fast path == readable formulas
MIXED = [(37, 29), (1,), (4097,), (3, 5, 7), (2048,), (1000, 3)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_fast_numpy_path_is_bitwise_the_readable_step(case, dtype, small_chunks, threads,
                                                      chunked):
    opt, fast, slow, state = run_both(case, MIXED, dtype)
    assert opt._scratch, "the fast path was not taken"
    assert_bitwise_equal(opt, fast, slow, state)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_fast_torch_path_is_bitwise_the_readable_step(case, dtype, small_chunks):
    """Same operations, same torch kernels: on the CPU the results are bitwise equal."""
    opt, fast, slow, state = run_both(case, MIXED, dtype, lib="torch")
    assert opt._scratch, "the fast path was not taken"
    assert_bitwise_equal(opt, fast, slow, state)


@pytest.mark.parametrize("case", ["Adam", "RMSprop", "Nesterov"])
def test_real_chunk_sizes_and_threads(case, threads, chunked):
    """The library's own chunk sizes: 700,000 float32 numbers are 6 chunks, enough to
    be split between threads; plus arrays below SMALL_ARRAY, which take the readable
    step functions."""
    opt, fast, slow, state = run_both(case, [(700, 1000), (engine.SMALL_ARRAY - 1,), (3,)],
                                      np.float32, steps=3)
    assert opt._scratch
    assert_bitwise_equal(opt, fast, slow, state)


@pytest.mark.parametrize("path", ["chunked", "compiled"])
def test_arrays_the_fast_path_cannot_take_use_the_readable_step(small_chunks, path, request,
                                                                loop_calls):
    """0-d, non-contiguous, and a gradient of another dtype: results as before."""
    request.getfixturevalue(path)
    rng = np.random.default_rng(1)
    base = rng.standard_normal((300, 200))
    cases = {"zero_d": (np.array(2.0), np.array(0.5)),
             "transposed": (base.T.copy(order="C").T, rng.standard_normal((300, 200))),
             "f64_grad": (rng.standard_normal(9000).astype(np.float32), rng.standard_normal(9000))}
    for name, (theta, g) in cases.items():
        opt, state = ob.Adam(lr=0.01), {}
        fast, slow = {"w": theta.copy(order="K")}, {"w": theta.copy(order="K")}
        assert fast["w"].flags.c_contiguous == theta.flags.c_contiguous
        for t in (1, 2):
            opt.update(fast, {"dw": g})
            ob.adam_step(slow["w"], g, *state.setdefault("mv", (np.zeros_like(theta),
                                                                np.zeros_like(theta))),
                         t, 0.01, 0.9, 0.999, 1e-8)
        assert_array_equal(fast["w"], slow["w"], strict=True)
        assert not opt._scratch and not loop_calls, name


def test_torch_parameters_that_require_grad_take_the_fast_path():
    torch.manual_seed(0)
    model = torch.nn.Linear(300, 200)
    twin = torch.nn.Linear(300, 200)
    twin.load_state_dict(model.state_dict())
    opt, state = ob.AdamW(lr=0.01, weight_decay=0.1), {}
    for t in (1, 2, 3):
        grads = {n: torch.randn_like(p) for n, p in model.named_parameters()}
        with torch.no_grad():
            opt.update(dict(model.named_parameters()), {"d" + n: g for n, g in grads.items()})
            for n, p in twin.named_parameters():
                m, v = state.setdefault(n, (torch.zeros_like(p), torch.zeros_like(p)))
                ob.adamw_step(p, grads[n], m, v, t, 0.01, 0.9, 0.999, 1e-8, 0.1)
    assert ("torch", torch.float32, torch.device("cpu"), 0) in opt._scratch
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p, q)


def test_subclass_that_overrides_apply_is_not_bypassed(loop_calls):
    """A subclass may change apply (the readable step); the fast kernel, which mirrors
    the parent's apply, must then stay out of its way."""
    calls = []

    class LoggedAdam(ob.Adam):
        def apply(self, theta, g, state, lr):
            calls.append(theta.size)
            super().apply(theta, g, state, lr)

    opt = LoggedAdam(lr=0.01)
    opt.update({"w": np.ones(10_000)}, {"dw": np.ones(10_000)})
    assert calls == [10_000] and not opt._scratch and not loop_calls


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_set_num_threads_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="Invalid number of threads"):
        engine.set_num_threads(bad)


# ------------------------------------------------------------- no allocation that grows
def peak_allocation_of_one_step(opt, n):
    """Peak bytes allocated (tracemalloc; NumPy reports its arrays to it) during one
    update, after a first update has created the state and the scratch buffers."""
    params, grads = {"w": np.ones(n, np.float32)}, {"dw": np.full(n, 0.5, np.float32)}
    opt.update(params, grads)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        opt.update(params, grads)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("path", ["chunked", "compiled"])
def test_step_allocates_no_more_for_ten_times_the_parameters(case, threads, path, request):
    request.getfixturevalue(path)
    small, large = (peak_allocation_of_one_step(make(case), n) for n in (10**5, 10**6))
    # One float32 temporary of 10^6 numbers would be 4 MB; a scratch chunk is 512 KiB.
    # What a step allocates is bookkeeping (views, thread futures): a few KiB.
    assert large < engine.CHUNK_BYTES // 8
    assert large - small < 16 * 1024


def test_the_readable_functions_do_allocate():
    """The measurement above can fail: the readable Adam step makes full-size
    temporaries (several MB at 10^6 numbers)."""
    w, g = np.ones(10**6, np.float32), np.full(10**6, 0.5, np.float32)
    m, v = np.zeros_like(w), np.zeros_like(w)
    tracemalloc.start()
    try:
        ob.adam_step(w, g, m, v, 1, 1e-3, 0.9, 0.999, 1e-8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak > 2 * w.nbytes


class AtenOps(TorchDispatchMode):
    """Records every ATen operation run inside it."""

    def __init__(self):
        super().__init__()
        self.ops = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("case", CASES)
def test_torch_step_runs_only_in_place_out_and_view_ops(case):
    """tracemalloc cannot see torch's allocator, so look at the operations instead:
    every one writes into an existing tensor (``out=`` or in place) or makes a view."""
    params = {"w": torch.ones(300_000), "b": torch.ones(5000)}
    grads = {"dw": torch.full((300_000,), 0.5), "db": torch.full((5000,), 0.5)}
    opt = make(case)
    opt.update(params, grads)
    with AtenOps() as seen:
        opt.update(params, grads)
    allocating = {str(f) for f in seen.ops if not (f._schema.is_mutable or f.is_view)}
    assert not allocating
    assert any(str(f).endswith(".out") for f in seen.ops)


# ----------------------------------------------------------------- the benchmark script
def load_benchmark():
    spec = importlib.util.spec_from_file_location("optimizer_step", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STEP_KEYS = {"optimizer", "n", "layout", "arrays", "implementation", "bytes_per_step",
             "floor_ms", "fraction_of_floor", "median_ms", "samples_ms",
             "identical_to_readable", "max_abs_diff_from_readable",
             "max_rel_diff_from_readable"}


def check_results(results, sizes):
    implementations = set(load_benchmark().IMPLEMENTATIONS)
    assert {"machine", "settings", "bytes_per_parameter", "bandwidth_GBps", "steps",
            "ratios", "faults_and_allocations", "cuda", "slider_frame_ms"} <= set(results)
    machine = results["machine"]
    assert {"cpu_model", "cpus", "numpy", "torch", "date", "torch_threads",
            "load_average_start", "load_average_end"} <= set(machine)
    assert results["bytes_per_parameter"]["Adam"] == 28
    assert results["bytes_per_parameter"]["Momentum"] == 20
    assert results["settings"]["sizes"] == sizes
    for n in sizes:
        bw = results["bandwidth_GBps"][str(n)]
        assert bw["ceiling"] == max(v for k, v in bw.items() if k != "ceiling") > 0
    steps = results["steps"]
    assert all(STEP_KEYS <= set(s) for s in steps)
    for name in ("Adam", "AdamW", "RMSprop", "Momentum"):
        for n in sizes:
            for layout in ("flat", "mixed"):
                impls = {s["implementation"]: s for s in steps
                         if (s["optimizer"], s["n"], s["layout"]) == (name, n, layout)}
                expected = set(implementations)
                if name == "RMSprop":
                    expected.discard("torch fused")  # torch has none
                assert set(impls) == expected
                # the benchmark's own agreement check: same operations, same bits...
                for impl in ("numpy in place", "numpy chunked (32 Ki, 1 thread)",
                             "optbook class, chunked", "optbook class"):
                    assert impls[impl]["identical_to_readable"] is True, impl
                    assert impls[impl]["max_abs_diff_from_readable"] == 0.0, impl
                # ... and float32 rounding for other arithmetic (torch's float32 sqrt on
                # the CPU is not always NumPy's, in the last bit): differences of a few
                # units of float32 rounding, relative to the largest parameter
                for impl in ("torch foreach", "torch fused", "chapter code (naive)",
                             "optbook class, torch tensors"):
                    if impl in impls:
                        assert impls[impl]["max_rel_diff_from_readable"] < 1e-5, impl
                assert all(s["median_ms"] > 0 and s["floor_ms"] > 0 for s in impls.values())
    assert len(results["ratios"]) == 4 * 2 * len(sizes)
    for n in sizes:
        fa = results["faults_and_allocations"][str(n)]
        assert fa["optbook class"]["peak_allocated_bytes_per_step"] < 64 * 1024
        assert fa["numpy in place"]["peak_allocated_bytes_per_step"] < 64 * 1024
        assert fa["chapter code (naive)"]["peak_allocated_bytes_per_step"] > 4 * n
    assert {"trajectories", "figure", "png", "total"} <= set(results["slider_frame_ms"])


def test_benchmark_quick_mode_writes_valid_results(tmp_path):
    out = tmp_path / "quick.json"
    sizes = [5000, 30000]
    subprocess.run([sys.executable, str(BENCHMARK), "--quick", "--repeats", "1", "--out",
                    str(out), "--sizes", *map(str, sizes)], check=True, cwd=tmp_path,
                   capture_output=True, text=True, timeout=600)
    results = json.loads(out.read_text())
    assert results["settings"]["quick"] is True
    check_results(results, sizes)


def test_gpu_part_of_the_benchmark_runs_on_any_device():
    """The CUDA comparison is the same code on another device: run it on the CPU."""
    bench = load_benchmark()
    gpu = bench.gpu_benchmark(torch.device("cpu"), [5000], 1, sync=lambda: None,
                              compile_adam=False)
    assert gpu["copy_GBps"] > 0
    assert {s["implementation"] for s in gpu["steps"]} == {
        "optbook readable functions", "optbook class", "torch foreach", "torch fused"}
    assert {s["layout"] for s in gpu["steps"]} == {"flat", "mixed"}
    assert {s["optimizer"] for s in gpu["steps"]} == set(bench.OPTIMIZERS)
    for s in gpu["steps"]:
        # optbook's class is the readable functions bitwise; torch's own to rounding
        bound = 0.0 if s["implementation"].startswith("optbook") else 1e-5
        assert s["max_abs_diff_from_readable"] <= bound, s


def test_recorded_results_file_is_there_for_the_page():
    """The page glues its numbers from this file (the book build does not rerun the
    benchmark): it must be a full run at 10^6 and 10^7 parameters."""
    results = json.loads(RECORDED.read_text())
    assert results["settings"]["quick"] is False
    check_results(results, [1_000_000, 10_000_000])


def test_error_in_a_worker_thread_reaches_the_caller(small_chunks, chunked):
    """The step is split between threads; a failure in any of them must not be lost."""
    import threading

    main = threading.get_ident()

    def failing_kernel(xp, c, theta, g, s, r):
        if threading.get_ident() != main:
            raise ArithmeticError("raised in a worker thread")
        kernels.sgd_kernel(xp, c, theta, g, s, r)

    class FailingSGD(ob.SGD):
        kernel = staticmethod(failing_kernel)

    before = engine.get_num_threads()
    engine.set_num_threads(2)
    try:
        opt = FailingSGD(lr=0.1)
        with pytest.raises(ArithmeticError, match="worker thread"):
            for _ in range(20):  # the worker may start late and take no chunk at first
                opt.update({"w": np.ones(100_000, np.float32)},
                           {"dw": np.ones(100_000, np.float32)})
    finally:
        engine.set_num_threads(before)


def test_page_is_written_for_the_recorded_file():
    """The book caches executed pages by their code, not by the files they read: the
    page names the digest of the results file, so a new recording changes the page's
    code (and re-executes it) instead of leaving stale numbers on it."""
    page = (ROOT / "chapters" / "appendix-a-optimizer-step-speed.md").read_text()
    named = re.search(r'RESULTS_SHA256 = "([0-9a-f]{64})"', page).group(1)
    assert named == hashlib.sha256(RECORDED.read_bytes()).hexdigest()
    assert 'RESULTS_FILE = "cpu-2core.json"' in page
    cuda = re.search(r'CUDA_SHA256 = "([0-9a-f]{64})"', page).group(1)
    assert cuda == hashlib.sha256(RECORDED_CUDA.read_bytes()).hexdigest()
    assert f'CUDA_FILE = "{RECORDED_CUDA.name}"' in page


def test_recorded_cuda_results_are_a_full_gpu_run():
    """The page's GPU section reads this file: a full run on a GPU, every optimizer,
    optbook's classes bitwise equal to the readable functions there too."""
    results = json.loads(RECORDED_CUDA.read_text())
    assert results["settings"]["quick"] is False and results["machine"]["cuda_device"]
    steps = results["cuda"]["steps"]
    assert {s["optimizer"] for s in steps} == {"Adam", "AdamW", "RMSprop", "Momentum"}
    assert {s["layout"] for s in steps} == {"flat", "mixed"}
    assert all(s["max_abs_diff_from_readable"] == 0 for s in steps
               if s["implementation"] == "optbook class")
    assert results["cuda"]["copy_GBps"] > 0 and all(s["median_ms"] > 0 for s in steps)


# ---------------------------------------------------------------------- the C loop
def built(kernel):
    return any(key[0] is kernel for key in onepass._kernels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_c_loop_is_bitwise_the_readable_step(case, dtype, threads, loop_calls):
    """NumPy steps run as one C loop by default, arrays of every size in one call (or
    one per thread, the arrays cut between them): same operations, same rounding."""
    shapes = [(700, 1000), (300_001,), (3,), *MIXED]
    opt, fast, slow, state = run_both(case, shapes, dtype, steps=3)
    assert not opt._scratch, "the chunked path was taken instead of the C loop"
    assert built(opt.kernel) and engine.compiled_status().startswith("on")
    assert sum(loop_calls) >= 3 * len(shapes) and len(loop_calls) <= 3 * threads
    assert_bitwise_equal(opt, fast, slow, state)


@pytest.mark.parametrize("case", CASES)
def test_baseline_c_loop_is_bitwise_too(case, monkeypatch, fresh_cache, loop_calls):
    """Without the AVX versions (-DBASELINE_ONLY: the loop every x86-64 CPU runs, or
    any other architecture's baseline), the same bits."""
    monkeypatch.setattr(onepass, "FLAGS", (*onepass.FLAGS, "-DBASELINE_ONLY"))
    opt, fast, slow, state = run_both(case, [(3001,), (17, 5), *MIXED], np.float32, steps=3)
    assert loop_calls and not opt._scratch
    assert all(k.library.parent == fresh_cache for k in onepass._kernels.values())
    assert_bitwise_equal(opt, fast, slow, state)


def test_many_tiny_arrays_are_one_call(loop_calls):
    """Fifty arrays of 1 to 50 numbers: one loop call per step, not fifty per operation."""
    opt, fast, slow, state = run_both("Adam", [(k,) for k in range(1, 51)], np.float32,
                                      steps=2)
    assert loop_calls == [50, 50]
    assert_bitwise_equal(opt, fast, slow, state)


def test_dtypes_without_a_c_loop_take_the_chunked_path(loop_calls):
    """float16 has no C loop: those arrays are chunked, float32 ones looped, one step."""
    rng = np.random.default_rng(3)
    fast = {"a": rng.standard_normal(5000).astype(np.float16),
            "b": rng.standard_normal(6000).astype(np.float32)}
    slow = {k: v.copy() for k, v in fast.items()}
    opt, state = make("Adam"), {}
    for t in (1, 2):
        grads = {"d" + k: (rng.standard_normal(v.shape) * 0.1).astype(v.dtype)
                 for k, v in fast.items()}
        opt.update(fast, grads)
        readable_update("Adam", slow, grads, state, t, HP["Adam"]["lr"])
    assert loop_calls == [1, 1] and ("numpy", np.dtype(np.float16), None, 0) in opt._scratch
    assert_bitwise_equal(opt, fast, slow, state)


@pytest.mark.parametrize("case", ["Adam", "Nesterov", "AdaGrad"])
def test_c_loop_with_a_schedule(case, monkeypatch):
    """A schedule changes α every step: the scalars are inputs of the loop, not
    constants in its code, so it is built once, not once per step."""
    builds = []
    original = onepass._build
    monkeypatch.setattr(onepass, "_kernels", {})
    monkeypatch.setattr(onepass, "_build", lambda source: builds.append(source) or original(source))
    hp = dict(HP[case])
    lr0 = hp["lr"]
    hp["lr"] = lambda k: lr0 * 0.9**k
    opt = ob.OPTIMIZERS["Momentum" if case == "Nesterov" else case](**hp)
    rng = np.random.default_rng(5)
    fast = {k: rng.standard_normal(s).astype(np.float32) for k, s in (("a", (64, 65)), ("b", (4097,)))}
    slow = {k: v.copy() for k, v in fast.items()}
    state = {}
    for t in range(1, 6):
        grads = {"d" + k: rng.standard_normal(v.shape).astype(np.float32) for k, v in fast.items()}
        opt.update(fast, grads)
        readable_update(case, slow, grads, state, t, hp["lr"](t - 1))
    assert len(builds) == 1 and not opt._scratch
    assert_bitwise_equal(opt, fast, slow, state)


def test_a_parameter_added_later_has_its_own_bias_correction(loop_calls):
    """Adam's t is per key: a key that joins at step 3 starts at t = 1 inside the same
    loop call (its scalars are its own)."""
    rng = np.random.default_rng(8)
    fast = {"a": rng.standard_normal(3000).astype(np.float32)}
    slow = {"a": fast["a"].copy()}
    opt, state = make("Adam"), {}
    t_of = {}
    for step in range(1, 5):
        if step == 3:
            fast["b"] = rng.standard_normal(2000).astype(np.float32)
            slow["b"] = fast["b"].copy()
        grads = {"d" + k: rng.standard_normal(v.shape).astype(np.float32) for k, v in fast.items()}
        opt.update(fast, grads)
        for key in slow:
            t_of[key] = t_of.get(key, 0) + 1
            readable_update("Adam", {key: slow[key]}, {"d" + key: grads["d" + key]}, state,
                            t_of[key], HP["Adam"]["lr"])
    assert loop_calls == [1, 1, 2, 2] and opt.state["b"]["t"] == 2
    assert_bitwise_equal(opt, fast, slow, state)


def test_split_between_threads_covers_every_number_once():
    rng = np.random.default_rng(0)
    sizes = [int(x) for x in rng.integers(1, 5000, 40)] + [100_000, 1]
    arrays = [np.zeros(n) for n in sizes]
    jobs = [([a], (float(i),)) for i, a in enumerate(arrays)]
    total = sum(sizes)
    for parts in (1, 2, 3, 7):
        split = engine._split(jobs, parts)
        assert len(split) == parts
        counts = [sum(views[0].shape[0] for views, _ in part) for part in split]
        assert sum(counts) == total and max(counts) - min(counts) <= 1 + total // parts // 100
        for part in split:
            for views, (i,) in part:
                views[0] += 1.0 + i  # marks each number with its array's index
        for i, a in enumerate(arrays):
            assert np.all(a == 1.0 + i), (parts, i)
            a[:] = 0


def test_compiling_can_be_switched_off_by_the_environment(monkeypatch, loop_calls):
    monkeypatch.setenv("OPTBOOK_COMPILE", "0")
    opt, fast, slow, state = run_both("RMSprop", [(70_000,), (9,)], np.float32, steps=2)
    assert opt._scratch and not loop_calls
    assert engine.compiled_status() == "off: OPTBOOK_COMPILE=0"
    assert_bitwise_equal(opt, fast, slow, state)


def test_without_a_c_compiler_the_step_falls_back_once_with_a_warning(monkeypatch, fresh_cache):
    """No C compiler (simulated): the step warns, takes the chunked path, and updates
    every array exactly once; later steps and optimizers do not try again."""
    attempts = []

    def no_compiler():
        attempts.append(1)
        raise onepass.CompileError("simulated: no C compiler found")

    monkeypatch.setattr(onepass, "_compiler", no_compiler)
    with pytest.warns(RuntimeWarning, match="C loop failed.*no C compiler"):
        opt, fast, slow, state = run_both("AdamW", [(400, 1000), (300,)], np.float32, steps=3)
    assert len(attempts) == 1 and opt._scratch
    assert_bitwise_equal(opt, fast, slow, state)
    assert "simulated: no C compiler" in engine.compiled_status()
    opt, fast, slow, state = run_both("Momentum", [(5000,)], np.float64, steps=2)
    assert len(attempts) == 1 and opt._scratch
    assert_bitwise_equal(opt, fast, slow, state)


def test_a_compiler_that_fails_names_itself(monkeypatch, fresh_cache, tmp_path):
    """A compiler that exits with an error: CompileError with its name and message."""
    fake = tmp_path / "broken-cc"
    fake.write_text("#!/bin/sh\necho 'fatal: simulated failure' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    with pytest.raises(onepass.CompileError, match="broken-cc failed: fatal: simulated"):
        onepass.compile_kernel(kernels.sgd_kernel, (0.1,), (), np.float32)
    assert not list(fresh_cache.glob("*.so"))  # no half-written library left behind


def test_built_loops_are_cached_on_disk(monkeypatch, fresh_cache):
    """The second process (here: an emptied in-process table) loads the library built
    by the first instead of running the compiler again."""
    first = onepass.compile_kernel(kernels.rmsprop_kernel, (0.1, 0.9, 1e-8), ("v",), np.float64)
    assert first.library.parent == fresh_cache and first.library.exists()
    monkeypatch.setattr(onepass, "_kernels", {})
    monkeypatch.setattr(onepass.subprocess, "run", lambda *a, **k: pytest.fail("compiled again"))
    again = onepass.compile_kernel(kernels.rmsprop_kernel, (0.2, 0.5, 1e-7), ("v",), np.float64)
    assert again.library == first.library


def test_an_unusable_cache_directory_falls_back_to_a_temporary_one(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("OPTBOOK_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(onepass, "_kernels", {})
    step = onepass.compile_kernel(kernels.sgd_kernel, (0.5,), (), np.float32)
    theta, g = np.ones(10, np.float32), np.full(10, 2.0, np.float32)
    step([([theta, g], (0.5,))])
    assert np.all(theta == 0.0) and not str(step.library).startswith(str(blocker))


def test_c_code_is_the_kernel_line_by_line():
    """The generated loop body is the kernel's operations, in order, one per line."""
    source = onepass.c_code(kernels.adam_kernel, (1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001),
                              ("m", "v"), np.float64)
    body = [line.strip() for line in source.splitlines() if line.strip().startswith(
        ("m =", "v =", "s =", "r =", "theta ="))]
    assert body == ["m = m * k0;", "s = g * k1;", "m = m + s;", "v = v * k2;",
                    "s = g * k3;", "s = s * g;", "v = v + s;", "s = m / k4;",
                    "r = v / k5;", "r = sqrt(r);", "r = r + k6;", "s = s * k7;",
                    "s = s / r;", "theta = theta - s;"]
    assert "const double k1 = (double)((1.0 - c[1]));" in source  # 1 - β1, in double


@pytest.mark.parametrize("dtype, buffers, message", [
    (np.float16, ("m",), "no C loop for dtype float16"),
    (np.float32, ("m", "theta"), "'theta' cannot name a C variable"),
    (np.float32, ("m", "bad name"), "'bad name' cannot name a C variable"),
    (np.float32, ("double",), "'double' cannot name a C variable")])
def test_c_code_rejects_what_it_cannot_write(dtype, buffers, message):
    with pytest.raises(ValueError, match=message):
        onepass.c_code(kernels.momentum_kernel, (0.1, 0.9, False), buffers, dtype)


def test_c_loop_checks_its_jobs():
    step = onepass.compile_kernel(kernels.momentum_kernel, (0.1, 0.9, False), ("m",), np.float32)
    a = np.zeros(8, np.float32)
    with pytest.raises(ValueError, match="same length"):
        step([([a, a[:4].copy(), a.copy()], (0.1, 0.9, False))])
    with pytest.raises(ValueError, match="1-d contiguous float32 arrays, 3 of them"):
        step([([a, a.astype(np.float64), a.copy()], (0.1, 0.9, False))])
    with pytest.raises(ValueError, match="1-d contiguous float32 arrays, 3 of them"):
        step([([a, a.copy()], (0.1, 0.9, False))])


@pytest.mark.parametrize("bad", [1, "yes", 0.0])
def test_set_compiled_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="Invalid compiled setting"):
        engine.set_compiled(bad)


def test_module_examples_run():
    """The docstrings' examples (the generated momentum loop, the optimizers' worked
    numbers) are what the code does."""
    import doctest

    assert doctest.testmod(onepass).failed == 0
    assert doctest.testmod(ob).attempted > 0 and doctest.testmod(ob).failed == 0


def test_a_shared_temporary_directory_open_to_others_is_not_used(monkeypatch, tmp_path):
    """The fallback directory must be private: one that others can write to could hold
    a library planted for us to load."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("OPTBOOK_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(onepass, "_kernels", {})
    monkeypatch.setattr(onepass.tempfile, "gettempdir", lambda: str(tmp_path))
    shared = tmp_path / f"optbook-{os.getuid()}"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(onepass.CompileError, match="no writable cache directory"):
        onepass.compile_kernel(kernels.sgd_kernel, (0.5,), (), np.float32)
    assert not list(shared.iterdir())


def test_c_loop_refuses_read_only_outputs():
    step = onepass.compile_kernel(kernels.momentum_kernel, (0.1, 0.9, False), ("m",), np.float32)
    theta, g, m = np.ones(8, np.float32), np.ones(8, np.float32), np.zeros(8, np.float32)
    m.flags.writeable = False
    with pytest.raises(ValueError, match="must be writeable"):
        step([([theta, g, m], (0.1, 0.9, False))])
    g.flags.writeable = False  # a read-only gradient is fine: it is only read
    m.flags.writeable = True
    step([([theta, g, m], (0.1, 0.9, False))])
    assert np.all(m == np.float32(1 - 0.9))


def test_a_read_only_state_buffer_is_never_written(monkeypatch):
    """A state buffer someone made read-only does not go into the loop (which would
    write it regardless): NumPy's own error instead, and the buffer unchanged."""
    opt = make("Momentum")
    params, grads = {"w": np.ones(5000, np.float32)}, {"dw": np.ones(5000, np.float32)}
    opt.update(params, grads)
    before = opt.state["w"]["m"].copy()
    opt.state["w"]["m"].flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        opt.update(params, grads)
    assert_array_equal(opt.state["w"]["m"], before)


def test_last_level_cache_size_is_read_from_sysfs(tmp_path):
    """The benchmark records the largest cache level's size (the page uses it to say how
    much of a 40 MB array's traffic can stay in the cache)."""
    read = load_benchmark().last_level_cache_bytes
    for index, level, size in [(0, 1, "48K"), (2, 2, "2048K"), (3, 3, "32M")]:
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        (folder / "level").write_text(f"{level}\n")
        (folder / "size").write_text(f"{size}\n")
    assert read(tmp_path) == 32 * 2**20
    assert read(tmp_path / "missing") is None
