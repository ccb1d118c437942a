"""Run one notebook with nbval (``pytest --nbval-lax``) in a child process, and read what
it reports.

The child runs in the notebook's own private folder, in a process group of its own, with
a wall-clock limit after which it and every process it started are killed, and with
resource limits of its own (``preexec_fn``).  Its kernel is sandboxed
(:mod:`optbook.grade.sandbox`, which gives the kernel its own limits) unless no sandbox
config is passed: then the kernel is a plain one from this environment and shares the
child's limits (as ``python -m optbook.check`` and ``--no-sandbox`` run it).  The
child loads :mod:`optbook.grade.plugin`, which writes one JSON report per run:
what happened in every code cell (``Cell k`` in nbval's numbering).

**Limits.**  Memory is limited with ``RLIMIT_DATA`` (heap and private writable
mappings), not ``RLIMIT_AS``: NumPy/OpenBLAS and PyTorch reserve large address ranges
and every thread has its own arena and stack, so an address-space limit fails imports
long before real memory use is high, while ``RLIMIT_DATA`` makes a too-large allocation
raise ``MemoryError`` in the student's cell.  ``RLIMIT_CPU`` is twice the wall-clock
limit (a backstop for processes that escape it), ``RLIMIT_FSIZE`` bounds each file
written, ``RLIMIT_NPROC`` (sandbox only) the processes and threads, core dumps are off;
``RLIMIT_STACK`` and ``RLIMIT_NOFILE`` (sandbox only) bound the memory that
``RLIMIT_DATA`` does not count (the main thread's stack, sockets' buffers), and the
sandbox's seccomp filter refuses the rest (shared and in-memory-file memory, user
namespaces: :data:`optbook.grade.sandbox.SECCOMP_RULES`).
BLAS/OpenMP thread counts are 1 in the kernel: parallelism comes from ``--jobs``.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from optbook.grade.exercise import valid_text
from optbook.grade.sandbox import clean_up


@dataclass
class Limits:
    """Per-notebook limits."""

    cell_timeout: float = 120.0  # seconds per cell (then the kernel is interrupted)
    timeout: float = 600.0  # seconds in all (then everything is killed)
    memory_mb: int | None = 4096  # RLIMIT_DATA per process
    processes: int = 128  # RLIMIT_NPROC in the sandbox (processes and threads)
    file_mb: int = 256  # RLIMIT_FSIZE
    scratch_mb: int = 512  # size of the sandbox's /tmp and of its /dev/shm

    def rlimits(self) -> dict[str, int]:
        """The kernel's resource limits, by ``resource`` constant name."""
        limits = {"RLIMIT_CPU": int(2 * self.timeout) + 1, "RLIMIT_FSIZE": self.file_mb * 2**20,
                  "RLIMIT_NPROC": self.processes, "RLIMIT_CORE": 0,
                  # What RLIMIT_DATA does not count.  The main thread's stack: fixed at Linux's usual
                  # 8 MiB (its hard limit is usually unlimited, and a process could raise its own).
                  # Open files, at the usual default: a pair of sockets can hold about 0.22 MiB of
                  # the kernel's buffers (measured), so about 0.1 GiB a process.
                  "RLIMIT_STACK": 8 * 2**20, "RLIMIT_NOFILE": 1024}
        if self.memory_mb:
            limits["RLIMIT_DATA"] = int(self.memory_mb) * 2**20
        return limits


def kernel_env(grading: bool) -> dict[str, str]:
    """Environment variables a sandboxed kernel gets (its environment is otherwise empty)."""
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if grading:
        env["OPTBOOK_GRADING"] = "1"
    if os.environ.get("OPTBOOK_MNIST_DIR"):
        env["OPTBOOK_MNIST_DIR"] = os.environ["OPTBOOK_MNIST_DIR"]
    return env


@dataclass
class CellRun:
    """What happened in one code cell, as the plugin saw it (defaults: the cell did not run)."""

    ran: bool = False
    failed: bool = True  # nbval's verdict: the cell raised (error output, timeout, dead kernel)
    nbval: str = "not run"  # first line of nbval's failure
    reply_status: str | None = None  # the kernel's execute_reply status (the kernel controls it)
    ename: str = ""
    evalue: str = ""
    payloads: list[dict] = field(default_factory=list)  # probe values: {"nonce": ..., "json": ...}
    kernel_exit: str | None = None
    output_truncated: bool = False

    @property
    def passed(self) -> bool:
        """Ran to its end without an error by any sign: nbval's, the reply's, an error output."""
        return self.ran and not self.failed and self.reply_status == "ok" and not self.ename

    @property
    def timed_out(self) -> bool:
        return self.nbval.startswith("Timeout")

    @property
    def kernel_was_dead(self) -> bool:
        return "Kernel dead" in self.nbval

    @classmethod
    def from_record(cls, record: dict) -> CellRun:
        def text(key: str) -> str:  # the kernel's words: no lone surrogates (no report could hold them)
            value = record.get(key)
            return valid_text(value) if isinstance(value, str) else ""

        payloads = [{"nonce": p["nonce"], "json": p["json"], "too_large": p.get("too_large") is True}
                    for p in record.get("payloads", []) if isinstance(p, dict)
                    and isinstance(p.get("nonce"), str) and isinstance(p.get("json"), str)]
        reply = record.get("reply_status")
        reply = valid_text(reply) if isinstance(reply, str) else None
        exit_code = record.get("kernel_exit")
        return cls(bool(record.get("ran")), record.get("failed") is not False, text("nbval"),
                   reply, text("ename"), text("evalue"), payloads,
                   None if exit_code is None else str(exit_code), bool(record.get("output_truncated")))


@dataclass
class NotebookRun:
    cells: dict[int, CellRun] | None  # None: no report (timeout, or the child failed)
    returncode: int | None
    timed_out: bool
    log_tail: str
    kernel_start: float | None = None  # seconds from starting the kernel to its first reply


_SPAWN_LOCK = threading.Lock()  # one fork at a time: preexec_fn runs between fork and exec
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: no imports after fork


def _child_setup(limits: Limits) -> None:  # pragma: no cover - runs in the child after fork
    """preexec_fn: die with the grader (SIGKILL when the thread that started us ends, which
    is after the child, unless the grader is killed); resource limits for nbval's process
    (and a plain kernel it starts)."""
    _PRCTL(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if limits.memory_mb:
        data = int(limits.memory_mb) * 2**20
        resource.setrlimit(resource.RLIMIT_DATA, (data, data))
    cpu = int(2 * limits.timeout) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    size = limits.file_mb * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def child_env(token: str, workdir: Path, grading: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "OPTBOOK_GRADING"))}
    # temporary files (a plain kernel's connection file among them) in the run's own
    # folder, which goes with it even when the run is killed at its timeout
    scratch = workdir / ".tmp"
    scratch.mkdir(exist_ok=True)
    env.update(OPTBOOK_RUN_TOKEN=token, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
               PYTHONDONTWRITEBYTECODE="1", IPYTHONDIR=str(workdir / ".ipython"),
               TMPDIR=str(scratch))
    if grading:
        env["OPTBOOK_GRADING"] = "1"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    return env


def nbval_command(notebook: Path, report: Path, limits: Limits, sandbox: Path | None) -> list[str]:
    kernel = [f"--optbook-sandbox={sandbox}"] if sandbox else ["--nbval-current-env"]
    return [
        sys.executable, "-m", "pytest", notebook.name,
        "-p", "nbval.plugin", "-p", "optbook.grade.plugin", "-p", "no:cacheprovider",
        "--nbval-lax", *kernel, f"--nbval-cell-timeout={limits.cell_timeout:g}",
        f"--optbook-report={report}", "-c", "pytest.ini", "--rootdir", ".", "--noconftest", "-q", "--tb=no",
    ]


def run_notebook(notebook: Path, limits: Limits, sandbox: Path | None = None, grading: bool = True) -> NotebookRun:
    """Run ``pytest --nbval-lax`` on ``notebook`` inside its (private) folder; ``sandbox``
    is the path of a :class:`~optbook.grade.sandbox.SandboxConfig` (None: a plain kernel)."""
    workdir = notebook.parent
    report, log = workdir / "report.json", workdir / "pytest.log"
    (workdir / "pytest.ini").write_text("[pytest]\n")
    token = secrets.token_hex(12)
    with open(log, "wb") as out, _SPAWN_LOCK:
        proc = subprocess.Popen(
            nbval_command(notebook, report, limits, sandbox), cwd=workdir, env=child_env(token, workdir, grading),
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=partial(_child_setup, limits),
        )
    timed_out = False
    try:
        proc.wait(timeout=limits.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        kill_run(proc, token)
        clean_up(workdir)
    tail = _tail(log) + _tail(workdir / "kernel.log", 800)
    data = read_report(report) if not timed_out and proc.returncode in (0, 1) else None
    cells = None if data is None else {int(k): CellRun.from_record(v) for k, v in data["cells"].items()
                                       if re.fullmatch(r"\d+", str(k)) and isinstance(v, dict)}
    start = data.get("kernel_start") if data else None
    return NotebookRun(cells or None, proc.returncode, timed_out, tail,
                       start if isinstance(start, (int, float)) else None)


def read_report(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("cells"), dict) else None


def kill_run(proc: subprocess.Popen, token: str) -> None:
    """Kill the child's process group and every process that carries the run's token.

    The kernel's launcher runs in a session of its own (jupyter_client starts it so) and
    carries ``OPTBOOK_RUN_TOKEN``; it takes the sandbox with it.  A plain kernel, and the
    processes it starts, carry the token too (unless they clear their environment: only
    the sandbox holds those)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for _ in range(5):
        pids = processes_with_token(token)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not pids:
            break
        time.sleep(0.05)
    proc.wait()


def processes_with_token(token: str) -> list[int]:
    """Live processes whose environment has ``OPTBOOK_RUN_TOKEN=<token>`` (Linux /proc)."""
    needle = f"OPTBOOK_RUN_TOKEN={token}".encode()
    pids = []
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                environ = f.read()
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                zombie = f.read().rsplit(b")", 1)[-1].split()[0] == b"Z"
        except OSError:
            continue
        if needle in environ.split(b"\0") and not zombie:
            pids.append(int(entry.name))
    return pids


def _tail(path: Path, size: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
