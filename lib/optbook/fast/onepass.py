r"""One pass over memory: an optimizer kernel traced into a C loop ("How fast can an
optimizer step be?").

The optimizers' fast kernels (:func:`optbook.fast.kernels.adam_kernel`, ...) are written
against an object ``xp`` with five operations (``multiply``, ``add``, ``subtract``,
``divide``, ``root``), each writing into an ``out`` buffer.  Given NumPy's ufuncs they
update whole arrays, one operation (one pass over memory) at a time.  Given an
:class:`Emitter` instead, the same Python code *writes C*: every call becomes one line of
a loop body that works on a single number held in a register, so the loop reads each
number of :math:`\theta, g, m, v` once and writes it once:

>>> from optbook.fast.kernels import momentum_kernel
>>> print(c_code(momentum_kernel, (0.1, 0.9, False), ("m",), "float32").split("{")[-1])
<BLANKLINE>
            float theta = p_theta[i]; float g = p_g[i]; float m = p_m[i]; float s, r;
            m = m * k0;
            s = g * k1;
            m = m + s;
            s = m * k2;
            theta = theta - s;
            p_theta[i] = theta; p_m[i] = m;
        }
    }
}
<BLANKLINE>

(``k0 = (float)c[1]`` is β, ``k1 = (float)(1.0 - c[1])`` is 1 − β, computed in double
as Python computes it and rounded to the array's type as NumPy rounds it.)  The outer
loop runs over *every* array of the step, so a network with fifty weight and bias
arrays takes one call, not fifty calls per operation: what ``torch.optim``'s
``foreach`` and ``fused`` steps do, from the same few lines of Python.

The results are bitwise those of the readable step functions: the loop performs the
same IEEE operations, in the same order, on the same float32 or float64 values
(``-ffp-contract=off``: no fused multiply-adds; ``sqrtf`` is correctly rounded, like
NumPy's).  The tests compare every optimizer bit for bit.

Building needs a C compiler (``$CC``, ``cc``, ``gcc`` or ``clang``); it takes a fraction
of a second, and the library is kept in a cache directory (``$OPTBOOK_CACHE``, else
``~/.cache/optbook``), keyed by the source and the compiler flags.  Without a compiler
:func:`compile_kernel` raises :class:`CompileError`, and the optimizers fall back to
their chunked NumPy path (see :mod:`optbook.optimizers`).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from optbook._checks import is_real

__all__ = ["Emitter", "CKernel", "CompileError", "c_code", "compile_kernel", "FLAGS"]

#: Compiler flags.  ``-O3`` lets the compiler vectorize the loop for the baseline of the
#: architecture (SSE2 on x86-64), so a cached library runs on any CPU of it; with gcc on
#: x86-64 Linux the source also asks for AVX2 and AVX-512 versions, picked when the
#: library is loaded.  ``-ffp-contract=off`` keeps every multiply and add a separately
#: rounded operation, as in NumPy.
FLAGS = ("-O3", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared")
C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


class CompileError(RuntimeError):
    """The C loop could not be built here (no C compiler, or the compiler failed)."""


class Scalar:
    """A number of the step that is known only when it runs (α, β, 1 − β, ...): the C
    expression that computes it, in double, from the step's scalars ``c[...]``."""

    def __init__(self, expr: str):
        self.expr = expr

    def _apply(self, op, other, reflected=False):
        if isinstance(other, Scalar):
            other = other.expr
        elif is_real(other):
            other = repr(float(other))  # repr round-trips: the C literal is the same double
        else:
            return NotImplemented
        a, b = (other, self.expr) if reflected else (self.expr, other)
        return Scalar(f"({a} {op} {b})")

    def _operator(op, reflected=False):  # noqa: N805 (makes the methods below)
        return lambda self, other: self._apply(op, other, reflected)

    __add__, __radd__ = _operator("+"), _operator("+", True)
    __sub__, __rsub__ = _operator("-"), _operator("-", True)
    __mul__, __rmul__ = _operator("*"), _operator("*", True)
    __truediv__, __rtruediv__ = _operator("/"), _operator("/", True)
    del _operator


class Emitter:
    """The ``xp`` that writes C: each operation appends a line to :attr:`body`, with
    array arguments named by strings (one number of that array) and scalars hoisted
    out of the loop as constants of the array's type (:attr:`constants`)."""

    def __init__(self, ctype: str):
        self.ctype = ctype
        self.body: list[str] = []
        self.constants: dict[str, str] = {}  # C expression -> its constant's name

    def _value(self, x) -> str:
        if isinstance(x, str):
            return x
        if is_real(x):
            x = Scalar(repr(float(x)))
        if not isinstance(x, Scalar):
            raise TypeError(f"cannot use {x!r} in a C kernel")
        return self.constants.setdefault(x.expr, f"k{len(self.constants)}")

    def _binary(self, a, op, b, out):
        self.body.append(f"{out} = {self._value(a)} {op} {self._value(b)};")

    def multiply(self, a, b, out):
        self._binary(a, "*", b, out)

    def add(self, a, b, out):
        self._binary(a, "+", b, out)

    def subtract(self, a, b, out):
        self._binary(a, "-", b, out)

    def divide(self, a, b, out):
        self._binary(a, "/", b, out)

    def root(self, a, out):  # NumPy's x**0.5 is sqrt: correctly rounded, as is C's
        self.body.append(f"{out} = {'sqrtf' if self.ctype == 'float' else 'sqrt'}({a});")


_RESERVED = {"theta", "g", "s", "r", "c", "p", "n", "i", "j", "count", "pointers", "sizes",
             "scalars", "stride", "step", "sqrt", "sqrtf", "VERSIONS", *"""auto break case
             char const continue default do double else enum extern float for goto if
             inline int long register restrict return short signed sizeof static struct
             switch typedef union unsigned void volatile while""".split()}


def _check_buffers(buffers) -> tuple:
    """The state buffers' names, which name the loop's variables: C identifiers."""
    buffers = tuple(buffers)
    for name in buffers:
        if (not isinstance(name, str) or not name.isidentifier() or not name.isascii()
                or name in _RESERVED or name[:1] == "k" or name[:2] == "p_"):
            raise ValueError(f"state buffer name {name!r} cannot name a C variable")
    return buffers


def c_code(kernel, scalars: tuple, buffers, dtype) -> str:
    """The C code of ``kernel`` as one loop over the numbers of every array of a
    step.  ``scalars`` is an example of the kernel's scalars (``optimizer.constants``):
    real numbers become the step's inputs ``c[i]``; anything else (Nesterov's flag) is
    fixed in the code, as the kernel's ``if`` on it is.  ``buffers`` names the state
    arrays (``optimizer.buffers``, e.g. ``("m", "v")``)."""
    ctype = C_TYPES.get(np.dtype(dtype))
    if ctype is None:
        raise ValueError(f"no C loop for dtype {np.dtype(dtype)} (float32 or float64)")
    emit = Emitter(ctype)
    c = tuple(Scalar(f"c[{i}]") if is_real(x) else x for i, x in enumerate(scalars))
    names = ["theta", "g", *_check_buffers(buffers)]
    kernel(emit, c, *names, "s", "r")
    written = [n for n in names if any(line.startswith(f"{n} = ") for line in emit.body)]
    k = len(names)
    lines = ["#include <math.h>", "#include <stdint.h>", "",
             "/* x86-64 Linux with gcc: also build AVX2 and AVX-512 versions of the loop;",
             "   the loader picks the best one for the CPU it runs on (same results: the",
             "   same operations, just more numbers per instruction) */",
             "#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) \\",
             "    && !defined(__clang__) && !defined(BASELINE_ONLY)",
             '#define VERSIONS __attribute__((target_clones("avx512f", "avx2", "default")))',
             "#else", "#define VERSIONS", "#endif", "",
             f"/* count arrays: {k} pointers each (theta, g, state...), their sizes, and",
             "   their scalars: one row each, or one row for all (stride 0) */",
             "VERSIONS void step(int64_t count, void **pointers, const int64_t *sizes,",
             "          const double *scalars, int64_t stride)", "{",
             "    for (int64_t j = 0; j < count; j++) {",
             f"        void **p = pointers + j * {k};",
             "        const double *c = scalars + j * stride;",
             "        const int64_t n = sizes[j];"]
    lines += [f"        const {ctype} {name} = ({ctype})({expr});"
              for expr, name in emit.constants.items()]
    lines += [f"        {'' if n in written else 'const '}{ctype} *restrict p_{n} = "
              f"({ctype} *)p[{i}];" for i, n in enumerate(names)]
    lines += ["        for (int64_t i = 0; i < n; i++) {",
              "            " + " ".join(f"{ctype} {n} = p_{n}[i];" for n in names)
              + f" {ctype} s, r;"]
    lines += ["            " + line for line in emit.body]
    lines += ["            " + " ".join(f"p_{n}[i] = {n};" for n in written),
              "        }", "    }", "}", ""]
    return "\n".join(lines)


def _compiler() -> str:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    raise CompileError("no C compiler found (set CC, or install gcc or clang)")


def cache_dir() -> Path:
    """Where built loops are kept: ``$OPTBOOK_CACHE``, else ``~/.cache/optbook``
    (``$XDG_CACHE_HOME/optbook``), else a directory in the system's temporary one."""
    if os.environ.get("OPTBOOK_CACHE"):
        return Path(os.environ["OPTBOOK_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "optbook"


def _directories():
    """Where to keep built loops, in order of preference: the cache directory, then a
    private directory of this user's in the system's temporary one."""
    yield cache_dir()
    user = os.getuid() if hasattr(os, "getuid") else None
    private = Path(tempfile.gettempdir()) / f"optbook-{user if user is not None else 'user'}"
    try:
        private.mkdir(mode=0o700, exist_ok=True)
        info = private.stat()
    except OSError:
        return
    # a shared temporary directory: use it only if it is ours and closed to others, so
    # that nobody else can put a library there for us to load
    if user is None or (info.st_uid == user and not info.st_mode & 0o022):
        yield private


def _build(source: str) -> Path:
    """The shared library built from ``source``, from the cache when it is there."""
    compiler = _compiler()
    key = hashlib.sha256("\0".join([source, compiler, *FLAGS]).encode()).hexdigest()[:24]
    failures = []
    for directory in _directories():
        library = directory / f"step-{key}.so"
        if library.exists():
            return library
        c_file = library.with_suffix(".c")  # kept next to the library, to be read
        partial = [str(c_file) + f".{os.getpid()}.c", str(library) + f".{os.getpid()}.so"]
        try:
            directory.mkdir(parents=True, exist_ok=True)
            Path(partial[0]).write_text(source)
        except OSError as error:  # not writable: try the next directory
            failures.append(f"{directory}: {error}")
            continue
        try:
            done = subprocess.run([compiler, *FLAGS, "-o", partial[1], partial[0]],
                                  capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise CompileError(f"{compiler} failed: {done.stderr.strip()[:500]}")
            # atomic renames: another process may be building the same loop right now
            os.replace(partial[1], library)
            os.replace(partial[0], c_file)
        except (OSError, subprocess.SubprocessError) as error:  # e.g. a compiler that hangs
            raise CompileError(f"{compiler} failed: {error}") from error
        finally:
            for leftover in partial:
                if os.path.exists(leftover):
                    os.remove(leftover)
        return library
    raise CompileError("no writable cache directory for the C loop: " + "; ".join(failures))


def _address(a: np.ndarray) -> int:
    """The address of ``a``'s first number."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))  # the fast way, if writable
    except (TypeError, ValueError):  # read-only (a gradient may be) or empty
        return a.__array_interface__["data"][0]


class CKernel:
    """A kernel built as a C loop; ``kernel(jobs)`` updates the jobs' arrays in place,
    a job being ``(views, scalars)``: 1-d contiguous arrays (θ, g, the state buffers)
    of this kernel's dtype, and the scalars from ``optimizer.constants``."""

    def __init__(self, library: Path, n_arrays: int, dtype):
        self.library, self.n_arrays, self.dtype = library, n_arrays, np.dtype(dtype)
        self._step = ctypes.CDLL(str(library)).step  # ctypes lets go of the GIL in it
        self._step.argtypes = [ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p,
                               ctypes.c_void_p, ctypes.c_int64]
        self._step.restype = None

    def __call__(self, jobs, check: bool = True) -> None:
        """Run the loop over the jobs (``check=False``: the caller has checked them)."""
        if not jobs:
            return
        if check:
            self._check(jobs)
        address = _address
        pointers = np.array([address(a) for views, _ in jobs for a in views], np.uintp)
        sizes = np.array([views[0].shape[0] for views, _ in jobs], np.int64)
        first = jobs[0][1]
        if all(c == first for _, c in jobs):  # the usual case: one row for all (stride 0)
            scalars, stride = np.array([float(x) for x in first], np.float64), 0
        else:  # e.g. Adam's bias corrections for a parameter added later
            scalars = np.array([[float(x) for x in c] for _, c in jobs], np.float64)
            stride = scalars.shape[1]
        self._step(len(jobs), pointers.ctypes.data, sizes.ctypes.data,
                   scalars.ctypes.data, stride)

    def _check(self, jobs):
        """A clear error for a job the loop cannot take (it would write anywhere)."""
        for views, _ in jobs:
            if len(views) != self.n_arrays or any(
                    type(a) is not np.ndarray or a.dtype != self.dtype or a.ndim != 1
                    or not a.flags.c_contiguous for a in views):
                raise ValueError("a C loop job needs 1-d contiguous "
                                 f"{self.dtype} arrays, {self.n_arrays} of them")
            if not all(a.flags.writeable for i, a in enumerate(views) if i != 1):
                raise ValueError("a C loop job writes θ and the state: they must be writeable")
            if any(a.shape != views[0].shape for a in views):
                raise ValueError("the arrays of a C loop job must have the same length: "
                                 f"{[a.shape[0] for a in views]}")


_kernels: dict = {}
_lock = threading.Lock()


def compile_kernel(kernel, scalars: tuple, buffers, dtype) -> CKernel:
    """``kernel`` built as a C loop for ``dtype`` (once per process and specialisation;
    from the disk cache after the first time).  Raises :class:`CompileError` when it
    cannot be built here."""
    fixed = tuple(None if is_real(x) else x for x in scalars)
    key = (kernel, fixed, tuple(buffers), np.dtype(dtype))
    with _lock:
        found = _kernels.get(key)
        if found is None:
            library = _build(c_code(kernel, scalars, buffers, dtype))
            try:
                found = CKernel(library, 2 + len(buffers), dtype)
            except OSError as error:  # a damaged file in the cache
                raise CompileError(f"cannot load {library}: {error}") from error
            _kernels[key] = found
    return found
