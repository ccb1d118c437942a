"""How fast is one optimizer step?  A benchmark anyone can rerun.

    .venv/bin/python benchmarks/optimizer_step.py [--quick] [--out FILE.json] [--threads 2]

An optimizer step does a dozen arithmetic operations per parameter and moves 12-28 bytes
per parameter between memory and the CPU, so it is limited by memory bandwidth, not by
arithmetic.  This script measures, for 10^6 and 10^7 float32 parameters, held as one
flat array and as ~50 arrays of mixed sizes (like the weights and biases of a network):

* the bandwidth ceiling: copy, triad and in-place update, in GB/s;
* the bytes each optimizer must move per parameter per step, hence its floor (the time
  the memory traffic alone takes at the ceiling);
* one step of Adam, AdamW, RMSprop and momentum, as
  - the chapter's code as written (NumPy, a new array for every intermediate result),
  - optbook's readable step functions (``adam_step`` ...: state in place, temporaries),
  - NumPy in place (the same operations with ``out=``, whole arrays, full-size scratch),
  - NumPy in place in cache-sized chunks (32 Ki numbers, one thread),
  - the optbook classes on NumPy arrays: as they run by default (the whole step as one
    C loop generated from the kernel, see optbook.fast.onepass) and with that off (cache-sized
    chunks), both on ``--threads`` threads, and on torch tensors,
  - ``torch.optim`` with ``foreach=True`` and with ``fused=True``
  (times are medians of interleaved repetitions: every implementation is timed once per
  round, so a slow moment of a shared machine hits all of them alike);
* page faults and traced allocations per step (the chapter's code vs in place);
* with CUDA: optbook's Adam on CUDA tensors against torch's fused Adam, as a fraction of
  the GPU's measured copy bandwidth;
* one slider frame of the momentum page (two trajectories, contour plot, PNG).

It prints tables and writes everything, with a description of the machine, to a JSON
file (default ``benchmarks/results/cpu-<N>core.json``); the chapter's page "How fast
can an optimizer step be?" reads ``benchmarks/results/cpu-2core.json``.  ``--quick`` runs
the same code on tiny sizes in seconds (for tests; its timings mean nothing).
Nothing here asserts a speed: the targets are evaluated and reported, not enforced.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

from optbook import optimizers as ob
from optbook.fast import engine
from optbook.fast import kernels as fast_kernels

ROOT = Path(__file__).resolve().parents[1]
OPTIMIZERS = ("Adam", "AdamW", "RMSprop", "Momentum")
HYPER = {"Adam": dict(lr=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8),
         "AdamW": dict(lr=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.01),
         "RMSprop": dict(lr=1e-3, beta=0.999, epsilon=1e-8),
         "Momentum": dict(lr=1e-2, beta=0.9)}
#: Numbers read + written per parameter per step: (θ, g, state) in, (θ, state) out.
ARRAYS_MOVED = {"SGD": 3, "Momentum": 5, "RMSprop": 5, "AdaGrad": 5, "Adam": 7, "AdamW": 7}
#: Elementwise operations per parameter per step in optbook's kernels (one ufunc each:
#: multiply, add, subtract, divide, square root), e.g. the 14 lines of adam_kernel.
OPS_PER_PARAMETER = {"SGD": 2, "Momentum": 5, "RMSprop": 9, "AdaGrad": 7, "Adam": 14,
                     "AdamW": 15}
IMPLEMENTATIONS = ("chapter code (naive)", "optbook readable functions", "numpy in place",
                   "numpy chunked (32 Ki, 1 thread)", "optbook class, chunked",
                   "optbook class", "optbook class, torch tensors", "torch foreach",
                   "torch fused")


# ------------------------------------------------------------- the chapter's code as written
class SeedMomentum:
    """Section 4b of the source, as written (NumPy; every line makes new arrays)."""

    def __init__(self, lr=0.01, beta=0.9):
        self.lr, self.beta, self.velocity = lr, beta, {}

    def update(self, params, grads):
        for key in params:
            if key not in self.velocity:
                self.velocity[key] = np.zeros_like(params[key])
            self.velocity[key] = (self.beta * self.velocity[key]
                                  + (1 - self.beta) * grads['d' + key])
            params[key] -= self.lr * self.velocity[key]
        return params


class SeedRMSprop:
    """Section 4c of the source, as written."""

    def __init__(self, lr=0.001, beta=0.999, epsilon=1e-8):
        self.lr, self.beta, self.epsilon, self.cache = lr, beta, epsilon, {}

    def update(self, params, grads):
        for key in params:
            if key not in self.cache:
                self.cache[key] = np.zeros_like(params[key])
            grad = grads['d' + key]
            self.cache[key] = (self.beta * self.cache[key] + (1 - self.beta) * grad ** 2)
            params[key] -= (self.lr * grad / (np.sqrt(self.cache[key]) + self.epsilon))
        return params


class SeedAdam:
    """Section 4d of the source, as written; ``weight_decay`` adds AdamW's decoupled
    decay in the same style (the source gives no AdamW code)."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.0):
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon
        self.weight_decay, self.m, self.v, self.t = weight_decay, {}, {}, 0

    def update(self, params, grads):
        self.t += 1
        for key in params:
            if key not in self.m:
                self.m[key] = np.zeros_like(params[key])
                self.v[key] = np.zeros_like(params[key])
            grad = grads['d' + key]
            if self.weight_decay:
                params[key] -= self.lr * self.weight_decay * params[key]
            self.m[key] = (self.beta1 * self.m[key] + (1 - self.beta1) * grad)
            self.v[key] = (self.beta2 * self.v[key] + (1 - self.beta2) * grad ** 2)
            m_hat = self.m[key] / (1 - self.beta1 ** self.t)
            v_hat = self.v[key] / (1 - self.beta2 ** self.t)
            params[key] -= (self.lr * m_hat / (np.sqrt(v_hat) + self.epsilon))
        return params


def seed_optimizer(name):
    hp = HYPER[name]
    if name == "Momentum":
        return SeedMomentum(hp["lr"], hp["beta"])
    if name == "RMSprop":
        return SeedRMSprop(hp["lr"], hp["beta"], hp["epsilon"])
    return SeedAdam(**hp)


# -------------------------------------------------- the same step, in place, whole or chunked
class Readable:
    """optbook's readable step functions (adam_step, ...) called array by array."""

    def __init__(self, name):
        self.name, self.hp, self.state, self.t = name, HYPER[name], {}, 0

    def update(self, params, grads):
        hp, self.t = self.hp, self.t + 1
        for key, theta in params.items():
            g = grads["d" + key]
            if key not in self.state:
                self.state[key] = {"m": ob.zeros_like(theta), "v": ob.zeros_like(theta)}
            st = self.state[key]
            if self.name == "Adam":
                ob.adam_step(theta, g, st["m"], st["v"], self.t, hp["lr"], hp["beta1"],
                             hp["beta2"], hp["epsilon"])
            elif self.name == "AdamW":
                ob.adamw_step(theta, g, st["m"], st["v"], self.t, hp["lr"], hp["beta1"],
                              hp["beta2"], hp["epsilon"], hp["weight_decay"])
            elif self.name == "RMSprop":
                ob.rmsprop_step(theta, g, st["v"], hp["lr"], hp["beta"], hp["epsilon"])
            else:
                ob.momentum_step(theta, g, st["m"], hp["lr"], hp["beta"])


class InPlace:
    """The optbook kernel (the readable operations with ``out=``) over whole arrays, or
    over chunks of ``chunk`` numbers; one thread, scratch allocated once."""

    def __init__(self, name, chunk=None):
        self.opt = ob.OPTIMIZERS[name](**HYPER[name])  # for its kernel and constants
        self.chunk, self.state, self.scratch = chunk, {}, None

    def update(self, params, grads):
        opt = self.opt
        for key, theta in params.items():
            if key not in self.state:
                self.state[key] = opt.init_state(theta)
            st = self.state[key]
            c = opt.constants(st, opt.lr)
            arrays = [a.reshape(-1) for a in (theta, grads["d" + key],
                                              *(st[b] for b in opt.buffers))]
            n = arrays[0].shape[0]
            step = n if self.chunk is None else self.chunk
            if self.scratch is None or self.scratch[0].shape[0] < min(step, n):
                self.scratch = (np.empty(min(step, n), theta.dtype),
                                np.empty(min(step, n), theta.dtype))
            s, r = self.scratch
            for a in range(0, n, step):
                b = min(a + step, n)
                opt.kernel(fast_kernels.NUMPY_OPS, c, *(x[a:b] for x in arrays),
                           s[:b - a], r[:b - a])


def torch_optimizer(name, tensors, mode):
    hp = HYPER[name]
    kw = {mode: True}
    if name == "Momentum":  # the chapter's momentum is SGD(lr=α(1-β), momentum=β)
        return torch.optim.SGD(tensors, lr=hp["lr"] * (1 - hp["beta"]), momentum=hp["beta"], **kw)
    if name == "RMSprop":
        if mode == "fused":
            return None  # torch 2.x has no fused RMSprop
        return torch.optim.RMSprop(tensors, lr=hp["lr"], alpha=hp["beta"], eps=hp["epsilon"], **kw)
    betas = (hp["beta1"], hp["beta2"])
    if name == "AdamW":
        return torch.optim.AdamW(tensors, lr=hp["lr"], betas=betas, eps=hp["epsilon"],
                                 weight_decay=hp["weight_decay"], **kw)
    return torch.optim.Adam(tensors, lr=hp["lr"], betas=betas, eps=hp["epsilon"], **kw)


# ----------------------------------------------------------------------------- the problems
def mixed_shapes(total, pairs=25, seed=0):
    """~2 × ``pairs`` shapes like a network's: a weight matrix (sizes spread
    log-normally) and its bias vector, about ``total`` numbers in all."""
    rng = np.random.default_rng(seed)
    share = rng.lognormal(0.0, 1.0, pairs)
    share /= share.sum()
    shapes = []
    for s in share:
        size = max(16, int(total * s))
        rows = max(1, round(math.sqrt(size / 4)))
        shapes += [(rows, max(1, size // rows)), (rows,)]
    return shapes


def layouts(n):
    return {"flat": [(n,)], "mixed": mixed_shapes(n)}


def problem(shapes, seed=0):
    rng = np.random.default_rng(seed)
    theta = {f"p{i}": rng.standard_normal(s, dtype=np.float32) for i, s in enumerate(shapes)}
    grads = {f"dp{i}": rng.standard_normal(s, dtype=np.float32) for i, s in enumerate(shapes)}
    return theta, grads


def median_ms(samples):
    return 1e3 * statistics.median(samples)


def interleaved(steps: dict, repeats: int, warmup: int = 1, sync=None) -> dict:
    """Seconds per call of each function, ``repeats`` samples each, timed in turn
    (one call of every function per round) after ``warmup`` untimed rounds."""
    for _ in range(warmup):
        for f in steps.values():
            f()
    if sync:
        sync()
    samples = {k: [] for k in steps}
    for _ in range(repeats):
        for k, f in steps.items():
            t0 = time.perf_counter()
            f()
            if sync:
                sync()
            samples[k].append(time.perf_counter() - t0)
    return samples


# ------------------------------------------------------------------------------ the parts
def last_level_cache_bytes(cpu: Path = Path("/sys/devices/system/cpu/cpu0/cache")):
    """Size in bytes of the largest-level cache CPU 0 sees (Linux sysfs), or None."""
    best = None
    for index in sorted(cpu.glob("index*")):
        try:
            level = int((index / "level").read_text())
            size = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        unit = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1:], 1)
        number = int(size[:-1] if size[-1:] in "KMG" else size)
        if best is None or level > best[0]:
            best = (level, number * unit)
    return best[1] if best else None


def machine_info(threads):
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu_model": model, "cpus": cpus, "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "optbook_threads": threads, "cuda_device": cuda,
            "llc_bytes": last_level_cache_bytes(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "load_average_start": list(os.getloadavg())}


def bandwidth(n, repeats):
    """GB/s of simple memory-bound kernels on n float32 numbers (STREAM's byte counts)."""
    a, b = np.ones(n, np.float32), np.zeros(n, np.float32)
    ta, tb, tc = torch.ones(n), torch.zeros(n), torch.ones(n)
    kernels = {"copy, numpy (1 thread)": (lambda: np.copyto(b, a), 8),
               "update in place, numpy (1 thread)": (lambda: np.add(b, a, out=b), 12),
               "copy, torch": (lambda: tb.copy_(ta), 8),
               "triad, torch": (lambda: torch.add(ta, tc, alpha=0.5, out=tb), 12),
               "update in place, torch": (lambda: tb.add_(ta, alpha=1e-3), 12)}
    samples = interleaved({k: f for k, (f, _) in kernels.items()}, repeats, warmup=2)
    out = {k: nbytes * n / statistics.median(samples[k]) / 1e9
           for k, (_, nbytes) in kernels.items()}
    out["ceiling"] = max(out.values())
    return out


def compute_ceiling(repeats, n=2048):
    """GFLOP/s of a float32 matrix product (torch, its threads): what the cores can do
    when memory is not the limit."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    samples = interleaved({"matmul": lambda: torch.mm(a, b)}, repeats, warmup=2)["matmul"]
    return 2 * n**3 / statistics.median(samples) / 1e9


def step_benchmark(name, n, layout, shapes, threads, repeats):
    """Time one step of optimizer ``name`` in every implementation; check they agree."""
    theta0, grads = problem(shapes)
    params = {impl: {k: v.copy() for k, v in theta0.items()} for impl in IMPLEMENTATIONS}
    optc = ob.OPTIMIZERS[name](**HYPER[name])
    optn = ob.OPTIMIZERS[name](**HYPER[name])
    optt = ob.OPTIMIZERS[name](**HYPER[name])
    tparams = {k: torch.from_numpy(v) for k, v in params["optbook class, torch tensors"].items()}
    tgrads = {k: torch.from_numpy(v) for k, v in grads.items()}
    torch_opts = {}
    for mode in ("foreach", "fused"):
        tensors = [torch.from_numpy(v) for v in params[f"torch {mode}"].values()]
        for t, g in zip(tensors, tgrads.values()):
            t.grad = g
        torch_opts[mode] = torch_optimizer(name, tensors, mode)

    def numpy_step(impl, opt, compiled=None):
        def run():
            engine.set_compiled(compiled)  # None: optbook's default (the C loop)
            opt.update(params[impl], grads)
        return run

    steps = {
        "chapter code (naive)": numpy_step("chapter code (naive)", seed_optimizer(name)),
        "optbook readable functions": numpy_step("optbook readable functions", Readable(name)),
        "numpy in place": numpy_step("numpy in place", InPlace(name)),
        "numpy chunked (32 Ki, 1 thread)": numpy_step("numpy chunked (32 Ki, 1 thread)",
                                                      InPlace(name, 32768)),
        "optbook class, chunked": numpy_step("optbook class, chunked", optc, False),
        "optbook class": numpy_step("optbook class", optn),
        "optbook class, torch tensors": lambda: optt.update(tparams, tgrads),
        "torch foreach": torch_opts["foreach"].step,
    }
    if torch_opts["fused"] is not None:
        steps["torch fused"] = torch_opts["fused"].step
    with torch.no_grad():
        samples = interleaved(steps, repeats)
    engine.set_compiled(None)

    # Every implementation took the same number of steps on the same data: those that
    # run the readable operations must agree bitwise; the rest to float32 rounding.
    ref = params["optbook readable functions"]
    largest = max(float(np.max(np.abs(a))) for a in ref.values())
    agreement = {}
    for impl in steps:
        identical = all(np.array_equal(params[impl][k], ref[k]) for k in ref)
        worst = max(float(np.max(np.abs(params[impl][k] - ref[k]))) for k in ref)
        agreement[impl] = {"identical_to_readable": identical,
                           "max_abs_diff_from_readable": worst,
                           "max_rel_diff_from_readable": worst / largest}
    nbytes = ARRAYS_MOVED[name] * 4 * sum(int(np.prod(s)) for s in shapes)
    return {impl: {"median_ms": median_ms(samples[impl]),
                   "samples_ms": [1e3 * s for s in samples[impl]],
                   **agreement[impl]} for impl in steps}, nbytes


def faults_and_allocations(n, steps=3):
    """Minor page faults and peak traced allocation per Adam step, at n float32 numbers.

    Run it in a fresh process (see ``fresh_process``): how many faults a temporary
    costs depends on the allocator's history.  After a long run glibc may hand the
    naive code's freed temporaries back without new pages, and hide them."""
    theta0, grads = problem([(n,)])
    makers = {"chapter code (naive)": lambda: seed_optimizer("Adam"),
              "optbook readable functions": lambda: Readable("Adam"),
              "numpy in place": lambda: InPlace("Adam"),
              "optbook class": lambda: ob.Adam(**HYPER["Adam"])}
    out = {}
    for impl, make in makers.items():
        opt, params = make(), {k: v.copy() for k, v in theta0.items()}
        opt.update(params, grads)  # state and scratch exist from here on
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(steps):
            opt.update(params, grads)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        opt.update(params, grads)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        out[impl] = {"minor_faults_per_step": faults, "peak_allocated_bytes_per_step": peak}
    return out


def fresh_process(function, *args):
    """The JSON result of ``function(*args)`` (a function of this script), computed in
    a new Python process."""
    import subprocess

    code = (f"import json, runpy; m = runpy.run_path({str(Path(__file__).resolve())!r}); "
            f"print(json.dumps(m[{function!r}](*{list(args)!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def gpu_benchmark(device, sizes, repeats, sync, compile_adam=True):
    """The four optimizers on ``device`` tensors: optbook's readable step functions and
    classes against torch's foreach and fused implementations, plus the device's copy
    bandwidth (GB/s, bytes read + written) and each step's fraction of the floor that
    bandwidth sets.  Each sample is several steps, so that the time of one ``sync`` is
    spread over them.  With ``compile_adam``, also the readable ``adam_step`` compiled by
    ``torch.compile`` (one generated kernel per array) on the flat layout.  Every
    implementation's parameters after the timed steps are compared with the readable
    functions' (bitwise for optbook's classes)."""
    a = torch.empty(max(max(sizes), 50_000_000), device=device)
    b = torch.empty_like(a)
    per = 10
    copy = interleaved({"copy": lambda: [b.copy_(a) for _ in range(per)]}, repeats,
                       warmup=2, sync=sync)["copy"]
    gbps = 8 * a.numel() * per / statistics.median(copy) / 1e9
    del a, b
    results = []
    for n in sizes:
        for layout, shapes in layouts(n).items():
            gen = torch.Generator(device="cpu").manual_seed(0)
            base = [torch.randn(s, generator=gen).to(device) for s in shapes]
            grads = [torch.randn(s, generator=gen).to(device) for s in shapes]
            numbers = sum(int(np.prod(s)) for s in shapes)
            for name in OPTIMIZERS:
                params = {}

                def fresh(impl):
                    params[impl] = {f"p{i}": t.clone() for i, t in enumerate(base)}
                    return params[impl]

                mine_g = {f"dp{i}": g for i, g in enumerate(grads)}
                readable, opt = Readable(name), ob.OPTIMIZERS[name](**HYPER[name])
                pr, pc = fresh("optbook readable functions"), fresh("optbook class")
                steps = {"optbook readable functions":
                         lambda: [readable.update(pr, mine_g) for _ in range(per)],
                         "optbook class": lambda: [opt.update(pc, mine_g) for _ in range(per)]}
                for mode in ("foreach", "fused"):
                    tensors = list(fresh(f"torch {mode}").values())
                    for t, g in zip(tensors, grads):
                        t.grad = g
                    o = torch_optimizer(name, tensors, mode)
                    if o is None:
                        del params[f"torch {mode}"]
                        continue
                    steps[f"torch {mode}"] = lambda o=o: [o.step() for _ in range(per)]
                if compile_adam and name == "Adam" and layout == "flat":
                    try:
                        steps["readable adam_step, torch.compile"] = compiled_adam(
                            fresh("readable adam_step, torch.compile"), mine_g, per)
                    except Exception as exc:  # no compiler there: say so, time the rest
                        params.pop("readable adam_step, torch.compile", None)
                        print(f"    torch.compile unavailable: {type(exc).__name__}: {exc}")
                with torch.no_grad():
                    samples = interleaved(steps, repeats, sync=sync)
                floor_ms = 1e3 * 4 * ARRAYS_MOVED[name] * numbers / (gbps * 1e9)
                ref = params["optbook readable functions"]
                for impl, ts in samples.items():
                    ms = median_ms(ts) / per
                    diff = max((params[impl][k] - ref[k]).abs().max().item() for k in ref)
                    results.append({"optimizer": name, "n": n, "numbers": numbers,
                                    "layout": layout, "arrays": len(shapes),
                                    "implementation": impl,
                                    "median_ms": ms, "floor_ms": floor_ms,
                                    "fraction_of_floor": floor_ms / ms,
                                    "max_abs_diff_from_readable": diff})
                print(f"  {name:8s} n = {n:.0e} {layout:5s} done", flush=True)
                del params, steps
    return {"device": str(device), "name": (torch.cuda.get_device_name(device)
                                            if device.type == "cuda" else "cpu"),
            "copy_GBps": gbps, "steps": results}


def compiled_adam(params, grads, per):
    """The readable ``adam_step`` compiled by ``torch.compile``: the generated code fuses
    its fourteen operations into one pass over each array (the returned m̂, v̂ are not
    used, so they are never written)."""
    hp = HYPER["Adam"]
    state = {k: (torch.zeros_like(p), torch.zeros_like(p)) for k, p in params.items()}

    @torch.compile(fullgraph=True, dynamic=False)
    def step(theta, g, m, v, t):
        ob.adam_step(theta, g, m, v, t, hp["lr"], hp["beta1"], hp["beta2"], hp["epsilon"])

    # t as a 0-d tensor on the device: a Python int would be compiled in as a constant
    # (one recompilation per step)
    t = torch.zeros((), device=next(iter(params.values())).device)

    def run():
        for _ in range(per):
            t.add_(1)
            for k, p in params.items():
                step(p, grads["d" + k], *state[k], t)

    return run


def slider_frame(repeats):
    """One frame of the momentum page's slider: two 150-step trajectories on the ravine,
    then the two-panel figure (contours + loss curves) as a PNG, made two ways: a new
    figure per frame (``paths_and_losses_figure`` + ``figure_png``), and the way the
    page makes it (``PathsAndLossesFrames``: contours and axes drawn once, each frame
    redraws only what changes)."""
    import matplotlib

    matplotlib.use("Agg")

    from optbook.book.figures import book_style, figure_png
    from optbook.book.surface_figures import (PathsAndLossesFrames,
                                              paths_and_losses_figure)
    from optbook.surfaces import ill_conditioned_quadratic, trajectory
    from optbook.book.widgets import frame_slider

    book_style()
    valley = ill_conditioned_quadratic(kappa=100, name="narrow ravine")
    frames = PathsAndLossesFrames(valley)

    def paths(alpha=0.05, beta=0.9):
        return {f"SGD (α = {alpha:g})": trajectory(ob.SGD(lr=alpha), valley, steps=150),
                f"Momentum (α = {alpha:g}, β = {beta:g})":
                    trajectory(ob.MomentumSGD(lr=alpha, beta=beta), valley, steps=150)}

    parts = {"trajectories": [], "figure": [], "png": [], "total": [], "kept_png": [],
             "kept_total": []}
    for i in range(repeats + 1):
        alpha = 0.04 + 0.005 * i   # a new frame each time
        t0 = time.perf_counter()
        p = paths(alpha)
        t1 = time.perf_counter()
        fig = paths_and_losses_figure(valley, p, title=f"frame {i}")
        t2 = time.perf_counter()
        figure_png(fig, dpi=90)
        t3 = time.perf_counter()
        p = paths(alpha)
        t4 = time.perf_counter()
        frames(p, title=f"frame {i}")
        t5 = time.perf_counter()
        for k, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0, t5 - t4,
                                      t5 - t3)):
            parts[k].append(seconds)
    out = {k: median_ms(v[1:]) for k, v in parts.items()}  # the first frame warms caches
    t0 = time.perf_counter()
    frame_slider(lambda alpha: frames(paths(alpha), title=f"α = {alpha}"),
                 alpha=[0.019, 0.05, 0.15, 0.02, 0.03, 0.04])
    out["frame_slider_per_frame"] = 1e3 * (time.perf_counter() - t0) / 6
    return out


# -------------------------------------------------------------------------------- reports
def table(rows, headers):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join([line.format(*headers), line.format(*("-" * w for w in widths))]
                     + [line.format(*r) for r in rows])


CUDA_SIZES = [1_000_000, 10_000_000, 100_000_000]


def write_results(results, out, started):
    """Write ``results`` (with the run's duration and final load) as JSON to ``out``."""
    info = results["machine"]
    info["load_average_end"] = list(os.getloadavg())
    info["seconds"] = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=1) + "\n"
    out.write_text(text)
    print(f"\nwrote {out} ({info['seconds']:.0f} s; load average at the end "
          f"{info['load_average_end']}); sha256 {hashlib.sha256(text.encode()).hexdigest()}")
    return results


def cuda_section(sizes, repeats, compile_adam=True):
    print("\nCUDA")
    res = gpu_benchmark(torch.device("cuda"), sizes, repeats, torch.cuda.synchronize,
                        compile_adam)
    print(f"{res['name']}: device copy {res['copy_GBps']:.0f} GB/s")
    print(table([[s["optimizer"], s["implementation"], f"{s['n']:.0e}", s["layout"],
                  f"{s['median_ms']:.3f}", f"{s['fraction_of_floor']:.0%}",
                  f"{s['max_abs_diff_from_readable']:.1e}"] for s in res["steps"]],
                ["optimizer", "implementation", "n", "layout", "ms", "of floor",
                 "max |Δθ| vs readable"]))
    return res


def main_cuda(args, parser):
    """``--cuda-only``: the CUDA section alone, written to its own results file."""
    if not torch.cuda.is_available():
        parser.error("--cuda-only needs a CUDA device, and torch sees none here")
    torch.set_num_threads(args.threads)
    info = machine_info(args.threads)
    slug = "".join(c if c.isalnum() else "-" for c in info["cuda_device"].lower()).strip("-")
    out = args.out or ROOT / "benchmarks" / "results" / f"cuda-{slug}.json"
    started = time.perf_counter()
    sizes = args.sizes or ([20_000, 100_000] if args.quick else CUDA_SIZES)
    repeats = args.repeats or (2 if args.quick else 11)
    results = {"machine": info, "settings": {
        "quick": args.quick, "sizes": sizes, "repeats": repeats, "dtype": "float32",
        "torch_chunk_bytes": engine.TORCH_CHUNK_BYTES,
        "command": "python benchmarks/optimizer_step.py --cuda-only"},
        "bytes_per_parameter": {k: 4 * v for k, v in ARRAYS_MOVED.items()},
        "ops_per_parameter": OPS_PER_PARAMETER}
    results["cuda"] = cuda_section(sizes, max(5, repeats), compile_adam=not args.quick)
    return write_results(results, out, started)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, two rounds: checks that everything runs (seconds)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON results file (default benchmarks/results/cpu-<N>core.json)")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for torch and for the optbook classes (default 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 11)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="parameter counts (default 1000000 10000000; with --cuda-only "
                             "1000000 10000000 100000000)")
    parser.add_argument("--cuda-only", action="store_true",
                        help="only the CUDA section (needs a GPU); default output "
                             "benchmarks/results/cuda-<device>.json")
    args = parser.parse_args(argv)
    if args.cuda_only:
        return main_cuda(args, parser)
    sizes = args.sizes or ([20_000, 100_000] if args.quick else [1_000_000, 10_000_000])
    repeats = args.repeats or (2 if args.quick else 11)
    torch.set_num_threads(args.threads)
    engine.set_num_threads(args.threads)
    info = machine_info(args.threads)
    out = args.out or ROOT / "benchmarks" / "results" / f"cpu-{info['cpus']}core.json"
    started = time.perf_counter()
    print(f"{info['cpu_model']}, {info['cpus']} CPUs; numpy {info['numpy']}, torch "
          f"{info['torch']} ({args.threads} threads); load average {info['load_average_start']}")

    results = {"machine": info, "settings": {
        "quick": args.quick, "sizes": sizes, "repeats": repeats, "dtype": "float32",
        "threads": args.threads, "chunk_bytes": engine.CHUNK_BYTES,
        "c_loop": engine.compiled_status().split(" (")[0],
        "torch_chunk_bytes": engine.TORCH_CHUNK_BYTES, "small_array": engine.SMALL_ARRAY,
        "mixed_arrays": {n: len(mixed_shapes(n)) for n in sizes},
        "command": "python benchmarks/optimizer_step.py" + (" --quick" if args.quick else "")},
        "bytes_per_parameter": {k: 4 * v for k, v in ARRAYS_MOVED.items()},
        "ops_per_parameter": OPS_PER_PARAMETER}

    results["compute_GFLOPs"] = compute_ceiling(max(3, repeats), 512 if args.quick else 2048)
    print(f"\nCompute ceiling: float32 matrix product, {results['compute_GFLOPs']:.0f} GFLOP/s")

    print("\nBytes per parameter per step (float32): "
          + ", ".join(f"{k} {v} B" for k, v in results["bytes_per_parameter"].items()))
    print("\nBandwidth ceiling (GB/s; STREAM byte counts, float32)")
    results["bandwidth_GBps"] = {str(n): bandwidth(n, max(5, repeats)) for n in sizes}
    bw = results["bandwidth_GBps"]
    print(table([[k] + [f"{bw[str(n)][k]:.1f}" for n in sizes] for k in bw[str(sizes[0])]],
                ["kernel"] + [f"n = {n:.0e}" for n in sizes]))

    steps = []
    for n in sizes:
        ceiling = results["bandwidth_GBps"][str(n)]["ceiling"]
        for layout, shapes in layouts(n).items():
            for name in OPTIMIZERS:
                timings, nbytes = step_benchmark(name, n, layout, shapes, args.threads, repeats)
                floor_ms = 1e3 * nbytes / (ceiling * 1e9)
                for impl, r in timings.items():
                    steps.append({"optimizer": name, "n": n, "layout": layout,
                                  "arrays": len(shapes), "implementation": impl,
                                  "bytes_per_step": nbytes, "floor_ms": floor_ms,
                                  "fraction_of_floor": floor_ms / r["median_ms"], **r})
                print(f"  {name:8s} n = {n:.0e} {layout:5s} done", flush=True)
    results["steps"] = steps

    record = {(s["optimizer"], s["n"], s["layout"], s["implementation"]): s for s in steps}

    def ms(name, n, layout, impl):
        hit = record.get((name, n, layout, impl))
        return hit["median_ms"] if hit else None

    ratios = []
    for n in sizes:
        for layout in ("flat", "mixed"):
            for name in OPTIMIZERS:
                mine = ms(name, n, layout, "optbook class")
                mine_t = ms(name, n, layout, "optbook class, torch tensors")
                mine_c = ms(name, n, layout, "optbook class, chunked")
                foreach = ms(name, n, layout, "torch foreach")
                fused = ms(name, n, layout, "torch fused")
                floor = record[name, n, layout, "optbook class"]["floor_ms"]
                ratios.append({
                    "optimizer": name, "n": n, "layout": layout,
                    "optbook_over_foreach": mine / foreach,
                    "optbook_over_fused": mine / fused if fused else None,
                    "optbook_torch_over_foreach": mine_t / foreach,
                    "optbook_torch_over_fused": mine_t / fused if fused else None,
                    "optbook_chunked_over_foreach": mine_c / foreach,
                    "optbook_chunked_over_fused": mine_c / fused if fused else None,
                    "optbook_fraction_of_floor": floor / mine,
                    "target_foreach_met": mine / foreach <= 1.0,
                    "target_fused_met": (mine / fused <= 3.0) if fused else None,
                    "target_floor_met": floor / mine >= 0.3})
    results["ratios"] = ratios
    ratio = {(r["optimizer"], r["n"], r["layout"]): r for r in ratios}
    for n in sizes:
        for layout in ("flat", "mixed"):
            print(f"\nOne step, n = {n:.0e} float32 parameters, {layout} "
                  f"({len(layouts(n)[layout])} arrays): ms (fraction of the bandwidth floor)")
            rows = []
            for impl in IMPLEMENTATIONS:
                cells = []
                for name in OPTIMIZERS:
                    hit = record.get((name, n, layout, impl))
                    cells.append(f"{hit['median_ms']:.2f} ({hit['fraction_of_floor']:.0%})"
                                 if hit else "n/a")
                rows.append([impl] + cells)
            for key, label in (("optbook_over_foreach", "optbook / foreach"),
                               ("optbook_over_fused", "optbook / fused")):
                values = [ratio[name, n, layout][key] for name in OPTIMIZERS]
                rows.append([label] + [f"{v:.2f}" if v else "n/a" for v in values])
            headers = [f"{o} ({4 * ARRAYS_MOVED[o]} B)" for o in OPTIMIZERS]
            print(table(rows, ["implementation"] + headers))

    print("\nPage faults and allocations per Adam step (each size in a fresh process)")
    results["faults_and_allocations"] = {str(n): fresh_process("faults_and_allocations", n)
                                         for n in sizes}
    print(table([[impl, f"{n:.0e}", f"{r['minor_faults_per_step']:.0f}",
                  f"{r['peak_allocated_bytes_per_step'] / 2**20:.2f}"]
                 for n in sizes for impl, r in results["faults_and_allocations"][str(n)].items()],
                ["implementation", "n", "minor faults", "peak allocated (MiB)"]))

    if torch.cuda.is_available():
        cuda_sizes = sizes if args.quick else CUDA_SIZES
        results["cuda"] = cuda_section(cuda_sizes, max(5, repeats), compile_adam=not args.quick)
    else:
        results["cuda"] = None
        print("\nCUDA: no device here, skipped")

    print("\nOne slider frame (momentum page): ms")
    results["slider_frame_ms"] = slider_frame(1 if args.quick else 5)
    print(table([[k, f"{v:.1f}"] for k, v in results["slider_frame_ms"].items()], ["part", "ms"]))

    return write_results(results, out, started)


if __name__ == "__main__":
    main(sys.argv[1:])
