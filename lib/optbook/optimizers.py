r"""8.4–8.6 The optimizers: SGD, momentum, RMSprop, AdaGrad, Adam and AdamW.

The chapter builds each optimizer from the one before, in the book's notation
(:mod:`optbook.notation`): :math:`\theta` the parameters, :math:`g_t` the gradient at
step :math:`t = 1, 2, \dots`, :math:`\alpha` the learning rate.

1. **SGD** steps against the gradient: :math:`\theta \leftarrow \theta - \alpha g`.
2. **Momentum** steps along :math:`m`, an exponentially weighted average (8.3) of the
   gradients, so oscillating components cancel and steady ones build up.
3. **RMSprop** divides by :math:`\sqrt{v}`, where :math:`v` averages the *squared*
   gradients: every coordinate gets its own step size.  **AdaGrad** does the same with
   the plain sum :math:`G`, so its steps only ever shrink.
4. **Adam** combines both moments, :math:`m` and :math:`v`, and divides out their bias
   toward the zero start (:math:`\hat m_t`, :math:`\hat v_t`).
5. **AdamW** adds weight decay *decoupled* from the gradient.

Every class has the chapter's API: ``opt.update(params, grads)`` updates the dict
``params`` (``{'W': ..., 'b': ...}``) in place, using ``grads['dW']``, ``grads['db']``,
and returns it.  The arrays may be NumPy arrays or PyTorch tensors (CPU or GPU; pass
``p.detach()``, or call under ``torch.no_grad()``, for tensors that require grad).
``lr`` is a number or a *schedule*: any callable ``lr(k)`` of the number ``k`` of
updates already applied (``k = 0`` on the first call), for instance one from
:mod:`optbook.schedules`.

As in ``torch.optim`` and ``optax``, a class only checks its inputs and keeps state;
the maths for one array is a small in-place function (:func:`adam_step`, ...) that you
can call on its own, written with operators that mean the same for NumPy and torch.

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
into C (:mod:`optbook.onepass`): each operation becomes one line of a loop over the
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

import copy
import math
import os
import threading
import warnings

import numpy as np

from . import onepass
from ._checks import is_int as _is_int, is_real as _is_real

__all__ = ["GradientError", "Optimizer", "SGD", "MomentumSGD", "RMSprop", "AdaGrad",
           "Adam", "AdamW", "OPTIMIZERS", "sgd_step", "momentum_step", "rmsprop_step",
           "adagrad_step", "adam_step", "adamw_step", "zeros_like", "CHUNK_BYTES",
           "get_num_threads", "set_num_threads", "set_compiled",
           "compiled_status"]


class GradientError(ValueError):
    """A gradient is missing, has no parameter, or does not fit its parameter."""


# ----------------------------------------------------------- the maths, one array at a time
def sgd_step(theta, g, lr):
    r""":math:`\theta \leftarrow \theta - \alpha g`, in place."""
    theta -= lr * g


def momentum_step(theta, g, m, lr, beta, nesterov=False):
    r""":math:`m \leftarrow \beta m + (1-\beta) g`, then step along :math:`m` (or, with
    ``nesterov``, along :math:`\beta m + (1-\beta) g`), in place."""
    m *= beta
    m += (1 - beta) * g
    if nesterov:
        theta -= lr * (beta * m + (1 - beta) * g)
    else:
        theta -= lr * m


def rmsprop_step(theta, g, v, lr, beta, epsilon):
    r""":math:`v \leftarrow \beta v + (1-\beta) g^2`;
    :math:`\theta \leftarrow \theta - \alpha g / (\sqrt v + \varepsilon)`, in place."""
    v *= beta
    v += (1 - beta) * g * g
    theta -= lr * g / (v**0.5 + epsilon)


def adagrad_step(theta, g, G, lr, epsilon):
    r""":math:`G \leftarrow G + g^2`;
    :math:`\theta \leftarrow \theta - \alpha g / (\sqrt G + \varepsilon)`, in place."""
    G += g * g
    theta -= lr * g / (G**0.5 + epsilon)


def adam_step(theta, g, m, v, t, lr, beta1, beta2, epsilon):
    r"""One Adam step at step ``t`` (starting at 1), in place.  Returns
    :math:`(\hat m_t, \hat v_t)`, which the chapter's worked example prints."""
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    theta -= lr * m_hat / (v_hat**0.5 + epsilon)
    return m_hat, v_hat


def adamw_step(theta, g, m, v, t, lr, beta1, beta2, epsilon, weight_decay):
    r""":math:`\theta \leftarrow \theta - \alpha\lambda\theta`, then :func:`adam_step`."""
    theta *= 1 - lr * weight_decay
    return adam_step(theta, g, m, v, t, lr, beta1, beta2, epsilon)


def zeros_like(x):
    """A zero buffer with ``x``'s shape and dtype (and device, for a torch tensor)."""
    return x.new_zeros(x.shape) if _is_torch(x) else np.zeros_like(x)


# ------------------------------------------------------------------ the same maths, fast
# Each kernel below is its step function above, operation for operation and in the same
# order, rewritten with ``out=``: the first buffer argument is updated in place, and the
# two scratch buffers ``s`` and ``r`` hold what the readable function would have put in
# new arrays.  ``xp`` supplies the operations: NumPy's ufuncs, or torch's functions of
# the same names (see _NUMPY_OPS / _torch_ops).  Same operations in the same order means
# the same rounding, so the result is bitwise that of the readable function.

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


def _sgd_kernel(xp, c, theta, g, s, r):
    (lr,) = c
    xp.multiply(g, lr, out=s)                   # lr * g
    xp.subtract(theta, s, out=theta)            # theta -= lr * g


def _momentum_kernel(xp, c, theta, g, m, s, r):
    lr, beta, nesterov = c
    xp.multiply(m, beta, out=m)                 # m *= beta
    xp.multiply(g, 1 - beta, out=s)             # (1 - beta) * g
    xp.add(m, s, out=m)                         # m += (1 - beta) * g
    if nesterov:
        xp.multiply(m, beta, out=r)             # beta * m
        xp.add(r, s, out=r)                     # beta * m + (1 - beta) * g
        xp.multiply(r, lr, out=r)               # lr * (...)
        xp.subtract(theta, r, out=theta)
    else:
        xp.multiply(m, lr, out=s)               # lr * m
        xp.subtract(theta, s, out=theta)


def _scaled_step(xp, theta, g, acc, s, r, lr, epsilon):
    """theta -= lr * g / (acc**0.5 + epsilon): the last line of RMSprop and AdaGrad."""
    xp.multiply(g, lr, out=s)                   # lr * g
    xp.root(acc, out=r)                         # acc**0.5
    xp.add(r, epsilon, out=r)                   # acc**0.5 + epsilon
    xp.divide(s, r, out=s)
    xp.subtract(theta, s, out=theta)


def _rmsprop_kernel(xp, c, theta, g, v, s, r):
    lr, beta, epsilon = c
    xp.multiply(v, beta, out=v)                 # v *= beta
    xp.multiply(g, 1 - beta, out=s)             # (1 - beta) * g
    xp.multiply(s, g, out=s)                    # (1 - beta) * g * g
    xp.add(v, s, out=v)                         # v += (1 - beta) * g * g
    _scaled_step(xp, theta, g, v, s, r, lr, epsilon)


def _adagrad_kernel(xp, c, theta, g, G, s, r):
    lr, epsilon = c
    xp.multiply(g, g, out=s)                    # g * g
    xp.add(G, s, out=G)                         # G += g * g
    _scaled_step(xp, theta, g, G, s, r, lr, epsilon)


def _adam_kernel(xp, c, theta, g, m, v, s, r):
    lr, beta1, beta2, epsilon, bias1, bias2 = c  # bias_i = 1 - beta_i**t
    xp.multiply(m, beta1, out=m)                # m *= beta1
    xp.multiply(g, 1 - beta1, out=s)            # (1 - beta1) * g
    xp.add(m, s, out=m)                         # m += (1 - beta1) * g
    xp.multiply(v, beta2, out=v)                # v *= beta2
    xp.multiply(g, 1 - beta2, out=s)            # (1 - beta2) * g
    xp.multiply(s, g, out=s)                    # (1 - beta2) * g * g
    xp.add(v, s, out=v)                         # v += (1 - beta2) * g * g
    xp.divide(m, bias1, out=s)                  # m_hat
    xp.divide(v, bias2, out=r)                  # v_hat
    xp.root(r, out=r)                           # v_hat**0.5
    xp.add(r, epsilon, out=r)                   # v_hat**0.5 + epsilon
    xp.multiply(s, lr, out=s)                   # lr * m_hat
    xp.divide(s, r, out=s)                      # lr * m_hat / (v_hat**0.5 + epsilon)
    xp.subtract(theta, s, out=theta)


def _adamw_kernel(xp, c, theta, g, m, v, s, r):
    xp.multiply(theta, c[0], out=theta)         # theta *= 1 - lr * weight_decay
    _adam_kernel(xp, c[1:], theta, g, m, v, s, r)


class _Ops:
    """The five operations the kernels use, for one array library."""

    def __init__(self, multiply, add, subtract, divide, root):
        self.multiply, self.add, self.subtract, self.divide = multiply, add, subtract, divide
        self.root = root  # x**0.5, computed the way the ``**`` operator computes it


# NumPy's ``x**0.5`` is np.sqrt (the ``**`` operator special-cases the exponent 0.5).
_NUMPY_OPS = _Ops(np.multiply, np.add, np.subtract, np.divide, np.sqrt)
_TORCH_OPS = None


def _torch_ops():
    global _TORCH_OPS
    if _TORCH_OPS is None:
        import torch

        _TORCH_OPS = _Ops(torch.mul, torch.add, torch.sub, torch.div,
                          lambda x, out: torch.pow(x, 0.5, out=out))  # what x**0.5 calls
    return _TORCH_OPS


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
    """Run the jobs through ``kernel`` built as a C loop (:mod:`optbook.onepass`): one
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
                kernel(_NUMPY_OPS, c, *arrays, s[:b - a], r[:b - a])
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


# ------------------------------------------------------------------------------ validation
def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _check_lr(lr):
    if callable(lr):
        return lr
    if not (_is_real(lr) and 0 < lr < math.inf):
        raise ValueError(f"Invalid lr: {lr} (must satisfy 0 < lr < inf, or be a schedule)")
    return float(lr)


def _check_beta(name, beta):
    if not (_is_real(beta) and 0 <= beta < 1):
        raise ValueError(f"Invalid {name}: {beta} (must satisfy 0 <= {name} < 1)")
    return float(beta)


def _check_nonnegative(name, value):
    if not (_is_real(value) and 0 <= value < math.inf):
        raise ValueError(f"Invalid {name}: {value} (must satisfy 0 <= {name} < inf)")
    return float(value)


def _adam_hyperparameters(beta1, beta2, epsilon):
    return {"beta1": _check_beta("beta1", beta1), "beta2": _check_beta("beta2", beta2),
            "epsilon": _check_nonnegative("epsilon", epsilon)}


class Optimizer:
    """What every optimizer shares: the learning rate or schedule, checking ``grads``
    against ``params``, lazily created per-key state and ``state_dict`` plumbing.

    A subclass passes its checked hyperparameters to ``__init__``, names its per-key
    buffers in ``buffers`` and calls its step function in ``apply``.  That is all a new
    optimizer needs.  For speed it may also give a ``kernel`` (its step function
    rewritten with ``out=``, see ``_adam_kernel``) and ``constants(state, lr)``, the
    scalars the kernel takes for one key; :meth:`update` then runs the kernel chunk by
    chunk through the optimizer's scratch buffers, and ``apply`` only where the kernel
    cannot go.  (A subclass that overrides ``apply`` but not ``kernel`` gets ``apply``.)
    """

    buffers: tuple[str, ...] = ()  #: per-parameter state arrays, e.g. ("m", "v")
    kernel = None  #: the fast version of ``apply``'s step function, or None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kernel" in cls.__dict__:  # the kernel mirrors this class's apply
            cls._kernel_mirrors = cls.apply

    def __init__(self, lr, **hyperparameters):
        self.lr = _check_lr(lr)
        self._names = ("lr", *hyperparameters)
        self.__dict__.update(hyperparameters)
        self.t = 0  #: updates applied so far; the schedule is called as lr(t)
        self.state = {}  #: key -> that parameter's buffers, created on its first update
        self._scratch = {}  # (library, dtype, device, thread) -> scratch buffer

    def current_lr(self) -> float:
        """The :math:`\\alpha` of the next update: ``lr``, or ``lr(k)`` with ``k = self.t``."""
        if not callable(self.lr):
            return self.lr
        alpha = self.lr(self.t)
        if not (_is_real(alpha) and 0 <= alpha < math.inf):
            raise ValueError(f"lr schedule returned {alpha} at k={self.t} "
                             "(must be a finite number >= 0)")
        return float(alpha)

    def init_state(self, theta) -> dict:
        return {name: zeros_like(theta) for name in self.buffers}

    def apply(self, theta, g, state, lr) -> None:
        raise NotImplementedError

    def constants(self, state, lr) -> tuple:
        """The scalars ``kernel`` takes for one parameter (advancing its state, as
        ``apply`` would)."""
        raise NotImplementedError

    def update(self, params: dict, grads: dict) -> dict:
        """Update every array in ``params`` in place and return ``params``.  All checks
        come first, so a call that raises leaves ``params`` and the state unchanged."""
        self._check(params, grads)
        alpha = self.current_lr()
        fast = self.kernel is not None and type(self).apply is type(self)._kernel_mirrors
        loop = _compiled_on()  # NumPy arrays of any size then go into one C loop
        jobs = []
        for key, theta in params.items():
            if key not in self.state:
                self.state[key] = self.init_state(theta)
            g, state = grads["d" + key], self.state[key]
            small = _size(theta) < SMALL_ARRAY and not (loop and type(theta) is np.ndarray)
            views = (_flat_views(theta, g, [state[n] for n in self.buffers])
                     if fast and not small else None)
            if views is None:
                self.apply(theta, g, state, alpha)  # the readable step function
            else:
                jobs.append((views, self.constants(state, alpha)))
        if jobs:
            self._run_kernel(jobs)
        self.t += 1
        return params

    def _scratch_pair(self, key, n, make):
        """Two scratch buffers of ``n`` numbers, reused from step to step."""
        buf = self._scratch.get(key)
        if buf is None or buf.shape[0] < 2 * n:
            buf = self._scratch[key] = make(2 * n)
        return buf[:n], buf[n:2 * n]

    def _run_kernel(self, jobs):
        """Run ``kernel`` over every chunk of every job, a job being (1-d views of θ,
        g and the state buffers, the scalars), grouped by library, dtype and device."""
        groups = {}
        for job in jobs:
            theta = job[0][0]
            lib = "numpy" if type(theta) is np.ndarray else "torch"
            groups.setdefault((lib, theta.dtype, getattr(theta, "device", None)), []).append(job)
        for (lib, dtype, device), group in groups.items():
            if lib == "numpy":
                self._run_numpy(group, dtype)
            else:
                self._run_torch(group, dtype, device)

    def _run_numpy(self, jobs, dtype):
        if (_compiled_on() and dtype in onepass.C_TYPES
                and _run_compiled(self.kernel, self.buffers, jobs, dtype)):
            return
        total = sum(views[0].shape[0] for views, _ in jobs)
        chunk = max(1, CHUNK_BYTES // dtype.itemsize)
        threads = _threads_for(jobs, dtype)
        size = min(chunk, max(views[0].shape[0] for views, _ in jobs))
        scratch = [self._scratch_pair(("numpy", dtype, None, k), size,
                                      lambda n: np.empty(n, dtype)) for k in range(threads)]
        if threads == 1:
            _run_range(self.kernel, _NUMPY_OPS, jobs, 0, total, chunk, *scratch[0])
            return
        shares = _Shares(jobs, chunk)
        pool = _thread_pool(threads - 1)
        for s, r in scratch[1:]:
            try:
                pool.submit(shares.work, self.kernel, s, r)
            except RuntimeError:  # no thread to be had: this thread does more chunks
                break
        shares.work(self.kernel, *scratch[0])
        shares.wait()

    def _run_torch(self, jobs, dtype, device):
        import torch

        chunk_bytes = TORCH_CHUNK_BYTES.get(device.type, TORCH_CHUNK_BYTES["cuda"])
        chunk = max(1, chunk_bytes // dtype.itemsize)
        total = sum(views[0].shape[0] for views, _ in jobs)
        size = min(chunk, max(views[0].shape[0] for views, _ in jobs))
        s, r = self._scratch_pair(("torch", dtype, device, 0), size,
                                  lambda n: torch.empty(n, dtype=dtype, device=device))
        _run_range(self.kernel, _torch_ops(), jobs, 0, total, chunk, s, r)

    def _check(self, params, grads):
        state, buffers = self.state, self.buffers
        for key, theta in params.items():
            # the common case first, quickly: float NumPy arrays whose shapes all match
            g = grads.get("d" + key) if hasattr(grads, "get") else None
            if (type(theta) is np.ndarray and type(g) is np.ndarray
                    and theta.dtype.kind == "f" and g.shape == theta.shape
                    and (key not in state or all(
                        type(b := state[key].get(name)) is np.ndarray and b.shape == theta.shape
                        for name in buffers))):
                continue
            self._check_one(key, theta, grads)
        for gkey in grads:
            if not (isinstance(gkey, str) and gkey[:1] == "d" and gkey[1:] in params):
                raise GradientError(f"gradient {gkey!r} has no parameter (gradients are "
                                    f"named 'd' + key: {sorted('d' + k for k in params)})")

    def _check_one(self, key, theta, grads):
        """Every check of one parameter, with the error that names what is wrong."""
        kind = type(theta).__name__
        if not (isinstance(theta, np.ndarray) or _is_torch(theta)):
            raise ValueError(f"parameter {key!r} is a {kind}; it must be a NumPy "
                             "array or torch tensor, which can be updated in place")
        if not (theta.is_floating_point() if _is_torch(theta)
                else np.issubdtype(theta.dtype, np.floating)):
            raise ValueError(f"parameter {key!r} has dtype {theta.dtype}; the in-place "
                             "update needs a floating-point dtype")
        if getattr(theta, "requires_grad", False):
            import torch  # only reached for a torch tensor, so torch is loaded

            if torch.is_grad_enabled():
                raise ValueError(f"parameter {key!r} requires grad: update it under "
                                 f"torch.no_grad(), or pass {key}.detach()")
        if "d" + key not in grads:
            raise GradientError(f"no gradient {'d' + key!r} for parameter {key!r}")
        g = grads["d" + key]
        if _is_torch(g) != _is_torch(theta) or not hasattr(g, "shape"):
            raise GradientError(f"gradient {'d' + key!r} is a {type(g).__name__} but "
                                f"parameter {key!r} is a {kind}")
        if tuple(g.shape) != tuple(theta.shape):
            raise GradientError(f"gradient {'d' + key!r} has shape {tuple(g.shape)} but "
                                f"parameter {key!r} has shape {tuple(theta.shape)}")
        for name in self.buffers:  # e.g. after loading another model's state dict
            buf = self.state.get(key, {}).get(name, theta)
            if tuple(buf.shape) != tuple(theta.shape) or _is_torch(buf) != _is_torch(theta):
                raise ValueError(f"state {name!r} of parameter {key!r} does not fit it: "
                                 f"{type(buf).__name__} {tuple(buf.shape)} vs "
                                 f"{kind} {tuple(theta.shape)}")

    def state_dict(self) -> dict:
        """A deep copy of everything needed to resume: hyperparameters, ``t``, buffers."""
        return copy.deepcopy({"optimizer": type(self).__name__,
                              "hyperparameters": {n: getattr(self, n) for n in self._names},
                              "t": self.t, "state": self.state})

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` saved, so the next update continues exactly."""
        name = state_dict.get("optimizer") if isinstance(state_dict, dict) else None
        if name != type(self).__name__:
            raise ValueError(f"cannot load a state dict of optimizer {name!r} "
                             f"into {type(self).__name__}")
        fresh = type(self)(**state_dict["hyperparameters"])  # validates them again
        self.__dict__.update(fresh.__dict__)
        self.t = int(state_dict["t"])
        self.state = copy.deepcopy(state_dict["state"])

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._names)
        return f"{type(self).__name__}({args})"


# ------------------------------------------------------------------------------ optimizers
class SGD(Optimizer):
    r"""Plain (mini-batch) gradient descent.  Let :math:`\alpha` be ``lr``.

    .. math::

        \theta_t = \theta_{t-1} - \alpha\, g_t

    >>> params = {'w': np.array([1.0, -2.0])}
    >>> SGD(lr=0.1).update(params, {'dw': 2 * params['w']})['w']   # f(w) = |w|^2
    array([ 0.8, -1.6])

    PyTorch: ``torch.optim.SGD(params, lr=α)``.
    """

    def __init__(self, lr=0.01):
        super().__init__(lr)

    def apply(self, theta, g, state, lr):
        sgd_step(theta, g, lr)

    kernel = staticmethod(_sgd_kernel)

    def constants(self, state, lr):
        return (lr,)


class MomentumSGD(Optimizer):
    r"""Gradient descent with momentum, in the chapter's averaged form.  Let
    :math:`\alpha` be ``lr`` and :math:`\beta` the argument ``beta``.

    .. math::

        m_0 = 0, \qquad m_t = \beta m_{t-1} + (1-\beta)\, g_t, \qquad
        \theta_t = \theta_{t-1} - \alpha\, m_t

    With ``nesterov=True`` the step looks ahead along the updated average:
    :math:`\theta_t = \theta_{t-1} - \alpha(\beta m_t + (1-\beta) g_t)`.

    >>> opt, params = MomentumSGD(lr=0.1, beta=0.9), {'w': np.array([1.0])}
    >>> for _ in range(2):
    ...     params = opt.update(params, {'dw': np.array([1.0])})
    >>> opt.state['w']['m'], params['w']    # m = 0.1, then 0.19
    (array([0.19]), array([0.971]))

    PyTorch: ``torch.optim.SGD(params, lr=α*(1-β), momentum=β)`` (``dampening=0``), and
    ``nesterov=True`` likewise.  Torch's buffer :math:`b` starts as :math:`b_1 = g_1`
    and accumulates undamped, :math:`b_t = \beta b_{t-1} + g_t`, so by induction
    :math:`b_t = m_t/(1-\beta)`; its step :math:`\alpha(1-\beta) b_t` is
    :math:`\alpha m_t`.  Its Nesterov step :math:`\alpha(1-\beta)(g_t + \beta b_t)` is
    :math:`\alpha((1-\beta) g_t + \beta m_t)`.  With a schedule, give torch
    :math:`\alpha_k(1-\beta)` at every step.

    Note: ``torch.optim.SGD(lr=α, momentum=β)`` takes steps :math:`1/(1-\beta)` times
    larger (10 times for β = 0.9) than the chapter's; and ``dampening=β`` does not fix
    it, because torch never dampens the first gradient (:math:`b_1 = g_1`).
    """

    buffers = ("m",)

    def __init__(self, lr=0.01, beta=0.9, nesterov=False):
        if not isinstance(nesterov, bool):
            raise ValueError(f"Invalid nesterov: {nesterov!r} (must be True or False)")
        super().__init__(lr, beta=_check_beta("beta", beta), nesterov=nesterov)

    def apply(self, theta, g, state, lr):
        momentum_step(theta, g, state["m"], lr, self.beta, self.nesterov)

    kernel = staticmethod(_momentum_kernel)

    def constants(self, state, lr):
        return lr, self.beta, self.nesterov


class RMSprop(Optimizer):
    r"""RMSprop: divide each coordinate's step by the root mean square of its recent
    gradients.  Let :math:`\alpha` be ``lr`` and :math:`\beta, \varepsilon` the
    arguments ``beta``, ``epsilon``.

    .. math::

        v_0 = 0, \qquad v_t = \beta v_{t-1} + (1-\beta)\, g_t^2, \qquad
        \theta_t = \theta_{t-1} - \alpha \frac{g_t}{\sqrt{v_t} + \varepsilon}

    Once :math:`v \approx g^2` the step is about :math:`\alpha\,\mathrm{sign}(g)`: a
    coordinate whose gradients stay near 10 has effective rate :math:`\alpha/10`, one
    near 0.01 has :math:`100\alpha`.

    >>> opt, params = RMSprop(lr=0.01), {'w': np.array([1.0])}
    >>> opt.update(params, {'dw': np.array([10.0])})['w'].round(6)  # v = 0.1
    array([0.683772])

    PyTorch: ``torch.optim.RMSprop(params, lr=α, alpha=β, eps=ε)`` (``momentum=0``,
    ``centered=False``); torch's ``alpha`` is our :math:`\beta`, and it too adds
    :math:`\varepsilon` outside the square root.

    Note: torch's defaults are ``lr=0.01, alpha=0.99``; the chapter's are
    :math:`\alpha = 0.001, \beta = 0.999`.
    """

    buffers = ("v",)

    def __init__(self, lr=0.001, beta=0.999, epsilon=1e-8):
        super().__init__(lr, beta=_check_beta("beta", beta),
                         epsilon=_check_nonnegative("epsilon", epsilon))

    def apply(self, theta, g, state, lr):
        rmsprop_step(theta, g, state["v"], lr, self.beta, self.epsilon)

    kernel = staticmethod(_rmsprop_kernel)

    def constants(self, state, lr):
        return lr, self.beta, self.epsilon


class AdaGrad(Optimizer):
    r"""AdaGrad: divide by the root of the *sum* of all squared gradients so far.  Let
    :math:`\alpha` be ``lr`` and :math:`\varepsilon` the argument ``epsilon``.

    .. math::

        G_0 = 0, \qquad G_t = G_{t-1} + g_t^2, \qquad
        \theta_t = \theta_{t-1} - \alpha \frac{g_t}{\sqrt{G_t} + \varepsilon}

    :math:`G` never shrinks, so the steps decay like :math:`1/\sqrt t`: good for sparse
    features, often too cautious late in training (RMSprop's fix is to average).

    >>> opt, params = AdaGrad(lr=0.5), {'w': np.array([1.0])}
    >>> for _ in range(2):
    ...     params = opt.update(params, {'dw': np.array([3.0])})
    >>> opt.state['w']['G'], params['w'].round(6)   # steps 0.5, then 0.5/sqrt(2)
    (array([18.]), array([0.146447]))

    PyTorch: ``torch.optim.Adagrad(params, lr=α, eps=ε)`` with its defaults
    ``lr_decay=0`` and ``initial_accumulator_value=0``.

    Note: torch's default is ``eps=1e-10``, the chapter's :math:`10^{-8}`; pass it.
    """

    buffers = ("G",)

    def __init__(self, lr=0.01, epsilon=1e-8):
        super().__init__(lr, epsilon=_check_nonnegative("epsilon", epsilon))

    def apply(self, theta, g, state, lr):
        adagrad_step(theta, g, state["G"], lr, self.epsilon)

    kernel = staticmethod(_adagrad_kernel)

    def constants(self, state, lr):
        return lr, self.epsilon


class Adam(Optimizer):
    r"""Adam: momentum's :math:`m` over RMSprop's :math:`\sqrt v`, both bias-corrected.
    Let :math:`\alpha` be ``lr`` and :math:`\beta_1, \beta_2, \varepsilon` the arguments
    ``beta1``, ``beta2``, ``epsilon``.

    .. math::

        m_0 = v_0 = 0, \qquad
        m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2,

        \hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^t},
        \qquad \theta_t = \theta_{t-1} - \alpha \frac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon}

    The chapter's worked example, :math:`f(w) = w^2` from :math:`w = 5`, :math:`\alpha = 0.1`:

    >>> opt, params = Adam(lr=0.1), {'w': np.array(5.0)}
    >>> for _ in range(3):
    ...     params = opt.update(params, {'dw': 2 * params['w']})
    ...     print(round(float(params['w']), 4))
    4.9
    4.8001
    4.7002

    Each key keeps its own step counter ``state[key]['t']`` (torch's ``'step'``), so a
    parameter added later still starts its bias correction at :math:`t = 1`.

    PyTorch: ``torch.optim.Adam(params, lr=α, betas=(β₁, β₂), eps=ε)``, same defaults.
    Torch evaluates :math:`\theta - \frac{\alpha}{1-\beta_1^t}\,
    m_t / (\sqrt{v_t}/\sqrt{1-\beta_2^t} + \varepsilon)`, the same number rearranged;
    the two agree to rounding error.

    Note: Keras/TensorFlow add :math:`\varepsilon` to the *uncorrected*
    :math:`\sqrt{v_t}` (the paper's :math:`\hat\varepsilon`), which differs in the
    first steps.  ``torch.optim.Adam(weight_decay=λ)`` is L2 regularisation: it feeds
    :math:`g_t + \lambda\theta_{t-1}` to the moments; for decoupled decay see :class:`AdamW`.
    """

    buffers = ("m", "v")

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
        super().__init__(lr, **_adam_hyperparameters(beta1, beta2, epsilon))

    def init_state(self, theta):
        return {"t": 0, **super().init_state(theta)}

    def apply(self, theta, g, state, lr):
        state["t"] += 1
        adam_step(theta, g, state["m"], state["v"], state["t"], lr,
                  self.beta1, self.beta2, self.epsilon)

    kernel = staticmethod(_adam_kernel)

    def constants(self, state, lr):
        state["t"] += 1
        t = state["t"]
        return lr, self.beta1, self.beta2, self.epsilon, 1 - self.beta1**t, 1 - self.beta2**t


class AdamW(Adam):
    r"""Adam with decoupled weight decay.  Let :math:`\alpha` be ``lr`` and
    :math:`\beta_1, \beta_2, \varepsilon, \lambda` the arguments ``beta1``, ``beta2``,
    ``epsilon``, ``weight_decay``.  First shrink the weights, then take Adam's step
    (:math:`m_t, v_t, \hat m_t, \hat v_t` exactly as in :class:`Adam`):

    .. math::

        \theta' = \theta_{t-1} - \alpha\lambda\,\theta_{t-1}, \qquad
        \theta_t = \theta' - \alpha \frac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon}

    >>> opt, params = AdamW(lr=0.1, weight_decay=0.5), {'w': np.array([2.0])}
    >>> opt.update(params, {'dw': np.array([0.0])})['w']   # no gradient: only decay
    array([1.9])

    PyTorch: ``torch.optim.AdamW(params, lr=α, betas=(β₁, β₂), eps=ε, weight_decay=λ)``,
    which multiplies :math:`\theta` by :math:`1-\alpha\lambda` before the Adam step;
    the defaults agree (λ = 0.01).

    Note: L2 regularisation (``torch.optim.Adam(weight_decay=λ)``) adds
    :math:`\lambda\theta` to the *gradient*, so the decay passes through
    :math:`\hat m_t/\sqrt{\hat v_t}` and weights whose gradients are large are
    decayed less.  Decoupled decay shrinks every weight by the same factor.  As in torch the
    decay is scaled by :math:`\alpha` (and so follows a schedule); the AdamW paper
    writes :math:`\eta_t\lambda\theta` with a separate schedule multiplier :math:`\eta_t`.
    """

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.01):
        Optimizer.__init__(self, lr, **_adam_hyperparameters(beta1, beta2, epsilon),
                           weight_decay=_check_nonnegative("weight_decay", weight_decay))

    def apply(self, theta, g, state, lr):
        state["t"] += 1
        adamw_step(theta, g, state["m"], state["v"], state["t"], lr,
                   self.beta1, self.beta2, self.epsilon, self.weight_decay)

    kernel = staticmethod(_adamw_kernel)

    def constants(self, state, lr):
        return (1 - lr * self.weight_decay, *super().constants(state, lr))


OPTIMIZERS = {"SGD": SGD, "Momentum": MomentumSGD, "RMSprop": RMSprop,
              "AdaGrad": AdaGrad, "Adam": Adam, "AdamW": AdamW}
