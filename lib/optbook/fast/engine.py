r"""The optimizers' fast path: every step of :meth:`optbook.optimizers.Optimizer.update`
runs here (:func:`update`), with the same arithmetic as the readable step functions.


**Fast steps: the same arithmetic, without temporaries.**  Those functions are written
to be read, and they pay for it: every ``(1 - beta1) * g`` or ``m / (1 - beta1**t)``
creates a new array the size of the parameters, so an Adam step on :math:`10^7`
parameters allocates (and page-faults in) several 40 MB temporaries and sweeps main
memory a dozen times.  An optimizer step does almost no arithmetic per byte it moves
(Adam reads :math:`\theta, g, m, v` and writes :math:`\theta, m, v`: 28 bytes per float32
parameter for about a dozen flops), so its speed is set by memory traffic.  The classes
therefore run each step function's operations *in the same order*, but as ufuncs with
``out=`` into a scratch buffer that the optimizer owns and whose size is fixed
(:data:`CHUNK_BYTES` per buffer), one cache-sized chunk of the flattened arrays at a
time: a chunk is read from memory once, the dozen operations run on it while it sits in
the CPU's cache, and it is written back once.  On NumPy arrays with many parameters the
chunks are shared between :func:`get_num_threads` threads (NumPy releases the GIL inside
a ufunc); on torch tensors the same operations run as torch's ``out=`` ops, which
PyTorch parallelises itself.  Because the operations and their order are those of the
readable functions, the classes' results are *bitwise identical* to them (the tests
check it); arrays the fast path cannot take (0-d, non-contiguous, mixed dtypes or
devices) and, on these paths, arrays too small to gain from them (under
:data:`SMALL_ARRAY` numbers) simply use the readable function.


**One pass: the same kernels, as one C loop.**  Even from the cache, a dozen passes cost
a dozen times one, and a network's fifty small arrays cost fifty Python calls per
operation.  So NumPy steps (float32 and float64) run the same kernel functions traced
into C (:mod:`optbook.fast.onepass`): each operation becomes one line of a loop over the
numbers of *every* array of the step, which reads each number once and writes it once,
in one call for the whole step (one per thread on large steps), as ``torch.optim``'s
``fused`` steps do.  It performs the same IEEE operations on the same values in the same
order (scalars rounded to the array's type as NumPy rounds them, the correctly rounded
square root, no fused multiply-adds), so the results are still bitwise those of the
readable functions: the tests check this too.  The first step builds the loop (a
fraction of a second, kept in a disk cache) and needs a C compiler; where that fails,
the classes fall back to the chunked NumPy path with one warning
(:func:`compiled_status` says why).  :func:`set_compiled` turns the loop on or off
(``OPTBOOK_COMPILE=0`` in the environment turns it off).  Torch tensors keep the
``out=`` path: eager PyTorch's float32 square root on the CPU is not always correctly
rounded, so no loop could match the readable functions there bit for bit.

The page "How fast can an optimizer step be?" measures all of this against
``torch.optim``'s ``foreach`` and ``fused`` steps (``benchmarks/optimizer_step.py``).
"""

from __future__ import annotations

import os
import threading
import warnings

import numpy as np

from optbook._checks import is_int as _is_int, is_real as _is_real
from optbook.fast import onepass
from optbook.fast.kernels import NUMPY_OPS, torch_ops

__all__ = ["update", "CHUNK_BYTES", "TORCH_CHUNK_BYTES", "SMALL_ARRAY", "THREAD_MIN_CHUNKS",
           "get_num_threads", "set_num_threads", "set_compiled", "compiled_status"]

#: Bytes per chunk (and per scratch buffer) on the NumPy path: 512 KiB, i.e. 131,072
#: float32 numbers.  A chunk of θ, g, the state and the two scratch buffers (six arrays,
#: 3 MB) then stays in the CPU's caches while all of a step's operations run over it.
CHUNK_BYTES = 512 * 1024
#: Bytes per chunk for torch tensors, by device type.  On a CPU, torch splits each
#: operation over its own threads, so a chunk can be twice as large; on a GPU the cost
#: to avoid is launching kernels (each operation on each chunk is one launch), so
#: chunks are large there.
TORCH_CHUNK_BYTES = {"cpu": 1024 * 1024, "cuda": 64 * 1024 * 1024}
#: On the chunked and torch paths, arrays with fewer numbers than this take the readable
#: step function: their temporaries are small, and the bookkeeping (views, chunks,
#: scratch) would cost more than the allocations it saves.  (The C loop takes arrays of
#: every size: each costs it one more row of pointers.)
SMALL_ARRAY = 4096
#: A NumPy step is split between threads only if it covers at least this many chunks:
#: waking a thread costs tens of microseconds, more than a small step takes.
THREAD_MIN_CHUNKS = 4


def update(opt, params: dict, grads: dict, alpha: float) -> None:
    """One update of ``opt`` (its ``params`` and ``grads`` already checked, its state
    created): each array through ``opt.apply`` (the readable step function), or, where
    the fast path can take it, through ``opt.kernel`` chunk by chunk or as one C loop."""
    fast = opt.kernel is not None and type(opt).apply is type(opt)._kernel_mirrors
    loop = _compiled_on()  # NumPy arrays of any size then go into one C loop
    jobs = []
    for key, theta in params.items():
        g, state = grads["d" + key], opt.state[key]
        small = _size(theta) < SMALL_ARRAY and not (loop and type(theta) is np.ndarray)
        views = (_flat_views(theta, g, [state[n] for n in opt.buffers])
                 if fast and not small else None)
        if views is None:
            opt.apply(theta, g, state, alpha)  # the readable step function
        else:
            jobs.append((views, opt.constants(state, alpha)))
    if jobs:
        _run_kernel(opt, jobs)


def _size(x) -> int:
    return x.size if type(x) is np.ndarray else x.numel()


def _flat_views(theta, g, buffers):
    """1-d views of ``theta``, ``g`` and the state buffers for the fast path, or None
    when it cannot take them: 0-d arrays, non-contiguous ones, mixed dtypes or devices,
    overlapping ``theta`` and ``g``, or torch tensors while autograd is recording."""
    arrays = (theta, g, *buffers)
    if type(theta) is np.ndarray:
        if theta.ndim == 0:
            return None
        dtype = theta.dtype
        for a in arrays:  # (a plain loop: this runs for every array of every step)
            if type(a) is not np.ndarray or a.dtype != dtype or not a.flags.c_contiguous:
                return None
            if not a.flags.writeable and a is not g:  # θ and the state are written
                return None
        if np.may_share_memory(theta, g):
            return None
        return [a.ravel() for a in arrays]  # contiguous: views, not copies
    import torch  # theta passed _check, so it is a torch tensor and torch is loaded

    if (theta.dim() == 0 or theta.layout != torch.strided
            or g.untyped_storage().data_ptr() == theta.untyped_storage().data_ptr()):
        return None
    for a in arrays:
        if (not isinstance(a, torch.Tensor) or a.dtype != theta.dtype
                or a.device != theta.device or a.layout != torch.strided
                or not a.is_contiguous()
                or (a.requires_grad and torch.is_grad_enabled())):
            return None
    return [a.view(-1) for a in arrays]


def _run_range(kernel, xp, jobs, lo, hi, chunk, s, r):
    """Run ``kernel`` on numbers ``lo`` to ``hi`` of the jobs' arrays laid end to end,
    ``chunk`` numbers at a time (a job: 1-d views of θ, g, the state; the scalars)."""
    start = 0
    for views, c in jobs:
        n = views[0].shape[0]
        for a in range(max(lo - start, 0), min(hi - start, n), chunk):
            b = min(a + chunk, hi - start, n)
            arrays = views if b - a == n else [v[a:b] for v in views]
            kernel(xp, c, *arrays, s[:b - a], r[:b - a])
        start += n
        if start >= hi:
            break


# ------------------------------------------------------------- the same kernels, compiled
_compile_setting = None          # set_compiled: None automatic, True/False forced
_compile_failure = None          # why building failed here (then: never tried again)


def set_compiled(enabled: bool | None) -> None:
    """``True``: update NumPy arrays with the kernels built as C loops (if a C compiler
    is there); ``False``: never (the chunked NumPy path); ``None``: the default, on
    unless ``OPTBOOK_COMPILE=0`` is set."""
    global _compile_setting
    if enabled is not None and not isinstance(enabled, bool):
        raise ValueError(f"Invalid compiled setting: {enabled!r} (must be True, False or None)")
    _compile_setting = enabled


def compiled_status() -> str:
    """Whether NumPy steps run as C loops here, and if not, why."""
    if _compile_failure is not None:
        return f"off: building the C loop failed here ({_compile_failure})"
    if not _compiled_on():
        return "off: set_compiled(False)" if _compile_setting is False else "off: OPTBOOK_COMPILE=0"
    return (f"on: float32/float64 NumPy steps run as one C loop "
            f"({len(onepass._kernels)} loop(s) built so far)")


def _compiled_on() -> bool:
    if _compile_failure is not None or _compile_setting is False:
        return False
    return _compile_setting or os.environ.get("OPTBOOK_COMPILE", "1") != "0"


def _threads_for(jobs, dtype) -> int:
    """How many threads a NumPy step over these jobs is split between: 1 unless it
    covers at least THREAD_MIN_CHUNKS chunks."""
    total = sum(views[0].shape[0] for views, _ in jobs)
    enough = total >= THREAD_MIN_CHUNKS * max(1, CHUNK_BYTES // dtype.itemsize)
    return get_num_threads() if enough else 1


def _split(jobs, parts):
    """The jobs cut into ``parts`` lists of about the same number of numbers (a job cut
    in two becomes two jobs on views of its arrays)."""
    total = sum(views[0].shape[0] for views, _ in jobs)
    share = -(-total // parts)
    out, room = [[]], share
    for views, c in jobs:
        a, n = 0, views[0].shape[0]
        while a < n:
            if room == 0:
                out.append([])
                room = share if len(out) < parts else total
            b = min(n, a + room)
            out[-1].append((views if b - a == n else [v[a:b] for v in views], c))
            room -= b - a
            a = b
    return out


def _run_compiled(kernel, buffers, jobs, dtype) -> bool:
    """Run the jobs through ``kernel`` built as a C loop (:mod:`optbook.fast.onepass`): one
    call for all of them, or one per thread.  False if the loop cannot be built here
    (then nothing has been touched, and the caller takes the chunked path)."""
    global _compile_failure
    # one loop per value of the kernel's fixed (non-numeric) scalars, e.g. Nesterov's flag
    fixed = [i for i, x in enumerate(jobs[0][1]) if not _is_real(x)]
    groups = {(): jobs} if not fixed else {}
    for job in jobs if fixed else ():
        groups.setdefault(tuple([job[1][i] for i in fixed]), []).append(job)
    try:
        steps = [(onepass.compile_kernel(kernel, group[0][1], buffers, dtype), group)
                 for group in groups.values()]
    except onepass.CompileError as error:  # no C compiler, or the compiler failed
        _compile_failure = str(error).strip()[:300]
        warnings.warn("optbook.optimizers: building the optimizer step's C loop failed; "
                      f"using the chunked NumPy path instead ({_compile_failure})",
                      RuntimeWarning, stacklevel=4)
        return False
    for step, group in steps:
        threads = _threads_for(group, dtype)
        parts = _split(group, threads) if threads > 1 else [group]
        waiting = []
        for part in parts[1:]:
            try:
                waiting.append(_thread_pool(threads - 1).submit(step, part, False))
            except RuntimeError:  # no thread to be had: run it here
                step(part, False)
        try:
            step(parts[0], False)  # the arrays passed _check and _flat_views
        finally:  # never return while another thread still writes the arrays
            for future in waiting:
                future.result()
    return True


class _Shares:
    """The chunks of one step, handed out one at a time to whichever thread asks next.
    A thread that the operating system is slow to run (on a busy machine) just takes
    fewer chunks, and the step waits only for the chunks taken."""

    def __init__(self, jobs, chunk):
        self.jobs, self.chunk = jobs, chunk
        self.job, self.start, self.busy, self.error = 0, 0, 0, None  # the next chunk
        self.cond = threading.Condition()

    def _claim(self):
        """(job, start, stop) of the next chunk, or None when all are taken."""
        with self.cond:
            while self.job < len(self.jobs) and self.error is None:
                n = self.jobs[self.job][0][0].shape[0]
                if self.start < n:
                    a = self.start
                    self.start = b = min(a + self.chunk, n)
                    self.busy += 1
                    return self.job, a, b
                self.job, self.start = self.job + 1, 0
            return None

    def work(self, kernel, s, r):
        while (claim := self._claim()) is not None:
            j, a, b = claim
            views, c = self.jobs[j]
            try:
                arrays = views if b - a == views[0].shape[0] else [v[a:b] for v in views]
                kernel(NUMPY_OPS, c, *arrays, s[:b - a], r[:b - a])
            except BaseException as error:  # re-raised by wait(), in the calling thread
                with self.cond:
                    self.error = self.error or error
            finally:
                with self.cond:
                    self.busy -= 1
                    self.cond.notify_all()

    def wait(self):
        """Until no chunk is being worked on; then raise what a thread raised."""
        with self.cond:
            while self.busy:
                self.cond.wait()
        if self.error is not None:
            raise self.error


_threads = None                  # set by set_num_threads; None means the default
_pool = None                     # (process id, workers, ThreadPoolExecutor)
_pool_lock = threading.Lock()


def get_num_threads() -> int:
    """How many threads a large chunked NumPy step is split between: what
    :func:`set_num_threads` set, by default 2 (or 1 on a single-CPU machine)."""
    if _threads is not None:
        return _threads
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus))


def set_num_threads(n: int) -> None:
    """Split the chunked path's large NumPy steps between ``n`` threads (1: no
    threads; the compiled kernels run on PyTorch's threads, ``torch.set_num_threads``).
    The result does not depend on it: every number is computed by exactly the same
    operations."""
    global _threads
    if not (_is_int(n) and n >= 1):
        raise ValueError(f"Invalid number of threads: {n!r} (must be an integer >= 1)")
    _threads = int(n)


def _thread_pool(workers):
    """A shared pool of at least ``workers`` threads (a new one after a fork)."""
    global _pool
    from concurrent.futures import ThreadPoolExecutor

    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid() or _pool[1] < workers:
            if _pool is not None and _pool[0] == os.getpid():
                _pool[2].shutdown(wait=False)  # too small: its idle threads may go
            _pool = (os.getpid(), workers, ThreadPoolExecutor(workers, "optbook-step"))
        return _pool[2]



def _scratch_pair(opt, key, n, make):
    """Two scratch buffers of ``n`` numbers, reused from step to step."""
    buf = opt._scratch.get(key)
    if buf is None or buf.shape[0] < 2 * n:
        buf = opt._scratch[key] = make(2 * n)
    return buf[:n], buf[n:2 * n]

def _run_kernel(opt, jobs):
    """Run ``opt.kernel`` over every chunk of every job, a job being (1-d views of θ,
    g and the state buffers, the scalars), grouped by library, dtype and device."""
    groups = {}
    for job in jobs:
        theta = job[0][0]
        lib = "numpy" if type(theta) is np.ndarray else "torch"
        groups.setdefault((lib, theta.dtype, getattr(theta, "device", None)), []).append(job)
    for (lib, dtype, device), group in groups.items():
        if lib == "numpy":
            _run_numpy(opt, group, dtype)
        else:
            _run_torch(opt, group, dtype, device)

def _run_numpy(opt, jobs, dtype):
    if (_compiled_on() and dtype in onepass.C_TYPES
            and _run_compiled(opt.kernel, opt.buffers, jobs, dtype)):
        return
    total = sum(views[0].shape[0] for views, _ in jobs)
    chunk = max(1, CHUNK_BYTES // dtype.itemsize)
    threads = _threads_for(jobs, dtype)
    size = min(chunk, max(views[0].shape[0] for views, _ in jobs))
    scratch = [_scratch_pair(opt, ("numpy", dtype, None, k), size,
                                  lambda n: np.empty(n, dtype)) for k in range(threads)]
    if threads == 1:
        _run_range(opt.kernel, NUMPY_OPS, jobs, 0, total, chunk, *scratch[0])
        return
    shares = _Shares(jobs, chunk)
    pool = _thread_pool(threads - 1)
    for s, r in scratch[1:]:
        try:
            pool.submit(shares.work, opt.kernel, s, r)
        except RuntimeError:  # no thread to be had: this thread does more chunks
            break
    shares.work(opt.kernel, *scratch[0])
    shares.wait()

def _run_torch(opt, jobs, dtype, device):
    import torch

    chunk_bytes = TORCH_CHUNK_BYTES.get(device.type, TORCH_CHUNK_BYTES["cuda"])
    chunk = max(1, chunk_bytes // dtype.itemsize)
    total = sum(views[0].shape[0] for views, _ in jobs)
    size = min(chunk, max(views[0].shape[0] for views, _ in jobs))
    s, r = _scratch_pair(opt, ("torch", dtype, device, 0), size,
                              lambda n: torch.empty(n, dtype=dtype, device=device))
    _run_range(opt.kernel, torch_ops(), jobs, 0, total, chunk, s, r)
