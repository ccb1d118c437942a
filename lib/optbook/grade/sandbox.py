"""The kernel's sandbox: bubblewrap around ipykernel.

Student code runs in a Jupyter kernel started through this module, in a sandbox built by
bubblewrap (``bwrap``, Debian package ``bubblewrap``; the tool Flatpak uses), never by
code of our own.  What the kernel gets:

* **A read-only view of only what it needs**: ``/usr`` (the system's libraries and
  programs), a few files of ``/etc`` (the loader cache, time zone, user names), the Python
  interpreter (``sys.base_prefix``), the virtual environment (``sys.prefix``), the folders
  ``sys.path`` adds outside them (``lib/``, where ``optbook`` lives), and the exercise's
  data folders.  Nothing else exists in it: not the repository, not ``solutions/``, not
  the submissions, the gradebook or the cache.  :func:`plan` refuses a view that would
  contain one of those (say, a ``sys.path`` entry that is the repository's root).
* **Private writable space**: ``/tmp`` (which holds ``HOME`` and the working folder) and
  ``/dev/shm``, each a memory file system of at most ``scratch_mb`` MiB inside the
  sandbox, gone when it ends.
* **No network**: its own network namespace, whose loopback reaches nothing outside.
* **No view of other processes**: its own PID namespace, in which the kernel is PID 1.
  When PID 1 ends, Linux kills every process in the namespace, whatever its session or
  environment; the launcher below and the grader (after every notebook) kill it from
  outside with SIGKILL, which it cannot refuse, and bwrap's ``--die-with-parent`` kills
  it if the launcher dies (as an ordinary user only: as root the kernel's user id of its
  own is out of bwrap's reach, and the grader kills it by the PID the launcher recorded).
* **Limits** (set inside, before ipykernel starts): ``RLIMIT_DATA`` (memory),
  ``RLIMIT_CPU``, ``RLIMIT_NPROC`` (processes and threads), ``RLIMIT_FSIZE``, no core
  files.  The process limit counts per user: as an ordinary user the sandbox has a user
  namespace of its own; as root (where Linux exempts root from it) the kernel drops to
  a user id of its own, a random one no other process has.  ``RLIMIT_STACK`` and
  ``RLIMIT_NOFILE`` bound the main thread's stack and the sockets' buffers.
* **A seccomp filter** for the memory that ``RLIMIT_DATA`` does not count
  (:data:`SECCOMP_RULES`, compiled by libseccomp, loaded by bwrap): shared anonymous
  memory, files in memory (``memfd_create``), System V shared memory, and user
  namespaces (in one, a process could mount a file system in memory of any size) are
  refused with ``EPERM``.  Without it one process could fill the machine's memory.
  It also refuses ``setsid``: the sandbox is one session (bwrap's ``--new-session``), so
  where Linux's scheduler has autogroups all its processes share one fair part of the
  CPU, however many there are (otherwise each busy process of one submission would
  weigh as much as the whole kernel graded next to it: ``benchmarks/sandbox_cpu.py``).

The kernel talks to nbval over ZeroMQ IPC sockets.  They live in the sandbox's own
``/tmp`` (``/tmp/optbook-kernel-<token>/kernel-<n>``); outside, that same path is a
symbolic link into the sandbox (``/proc/<pid>/root/...``), made by the launcher once
bwrap has reported the sandbox's PID and before the kernel starts.  So the sandbox
shares no writable folder with the host.

This file is also the **launcher** that the kernel spec runs (with ``python -I -S``, so it
imports only the standard library): ``sandbox.py CONFIG.json CONNECTION_FILE``.  It dies
with its parent (nbval's process), starts bwrap, makes the socket link, lets the kernel
start, and waits.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`, Fedora: `dnf install "
                "bubblewrap`), or pass --no-sandbox to grade without one (unsafe for untrusted submissions)")
LINK_RE = re.compile(r"/tmp/optbook-kernel-[0-9a-f]{16}")
PRIVATE_RE = re.compile(r"/tmp/optbook-sockets-\w{8}")  # the grader's links to a kernel's open socket files
ETC_FILES = ("ld.so.cache", "localtime", "passwd", "group", "nsswitch.conf", "fonts")
TOP_LEVEL = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")  # /usr-merged links or folders
PIDS_FILE = "sandbox-pids.jsonl"  # in the run folder: each sandbox's first process and PID namespace
LINKS_FILE = "sandbox-links"  # in the run folder: the socket links and folders made for its kernels


class SandboxUnavailable(Exception):
    """No sandbox can start here; the message says what to install or change."""


@dataclass
class SandboxConfig:
    """What the launcher needs to start one sandboxed kernel (written as JSON)."""

    bwrap: str
    python: str
    read_only: list[str]  # host paths bound read-only at the same place
    links: list[tuple[str, str]]  # (target, path): /lib -> usr/lib on /usr-merged systems
    env: dict[str, str]
    scratch_mb: int = 512
    rlimits: dict[str, int] = field(default_factory=dict)  # RLIMIT_<name>: value (soft = hard)
    seccomp: str = ""  # the seccomp program (compiled BPF, base64) bwrap loads; see seccomp_program()

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: str | Path) -> SandboxConfig:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        data["links"] = [tuple(x) for x in data["links"]]
        return cls(**data)


def find_bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable(f"no sandbox: the program bwrap was not found; {INSTALL_HINT}")
    return path


def plan(python: str = sys.executable, data: list[Path] = (), protected: list[Path] = (),
         env: dict[str, str] | None = None, scratch_mb: int = 512, rlimits: dict[str, int] | None = None,
         bwrap: str | None = None) -> SandboxConfig:
    """The sandbox for kernels of ``python``: what they see, their environment and limits.

    ``protected`` are folders the kernel must not see (the hidden checks, the
    submissions, the gradebook, the cache); a read-only bind that contains one of them
    is refused with SandboxUnavailable.
    """
    bwrap = bwrap or find_bwrap()
    paths = ["/usr"] + [f"/etc/{name}" for name in ETC_FILES] + python_paths(python) + [str(d) for d in data]
    links: list[tuple[str, str]] = []
    for name in TOP_LEVEL:
        top = Path("/") / name
        if top.is_symlink():
            links.append((os.readlink(top), str(top)))
        elif top.is_dir():
            paths.append(str(top))
    read_only = _outermost([os.path.realpath(p) for p in paths if os.path.exists(p)] +
                           [os.path.abspath(p) for p in paths if os.path.exists(p)])
    for path in read_only:
        for secret in protected:
            secret = os.path.realpath(secret)
            if secret == path or secret.startswith(path.rstrip("/") + "/"):
                raise SandboxUnavailable(
                    f"the sandbox would show {secret} to student code through {path}; make sure that "
                    f"{path} is not on the kernel's sys.path and is not a data folder")
    # RLIMIT_NICE 0: no process of it may lower a nice below 0, its autogroup's included
    # (see SECCOMP_RULES on setsid), even where the grader's user was allowed to
    rlimits = {**(rlimits or {}), "RLIMIT_NICE": 0}
    return SandboxConfig(bwrap, python, read_only, links, dict(env or {}), scratch_mb, rlimits,
                         base64.b64encode(seccomp_program()).decode("ascii"))


# ------------------------------------------------------------------ the seccomp filter

# What RLIMIT_DATA does not count, and a process could otherwise fill memory with, alone:
# memory shared between processes and files that live only in memory (outside the
# size-limited /tmp and /dev/shm), and a user namespace of its own, in which it could
# mount a file system in memory of any size; and a session of its own, which would take
# CPU from the sandboxes next to it.  The filter refuses exactly these, with an error the
# program sees (EPERM); every other system call is allowed.
CLONE_NEWUSER = 0x10000000
MAP_SHARED, MAP_SHARED_VALIDATE, MAP_ANONYMOUS, MAP_TYPE = 0x01, 0x03, 0x20, 0x0F
SECCOMP_RULES = (  # (system call, errno, [(argument, mask, value)]: refused when (arg & mask) == value)
    ("memfd_create", "EPERM", []),  # a file in memory, of any size, outside /tmp and /dev/shm
    ("shmget", "EPERM", []),  # System V shared memory
    ("mmap", "EPERM", [(3, MAP_TYPE | MAP_ANONYMOUS, MAP_SHARED | MAP_ANONYMOUS)]),  # shared anonymous memory
    ("mmap", "EPERM", [(3, MAP_TYPE | MAP_ANONYMOUS, MAP_SHARED_VALIDATE | MAP_ANONYMOUS)]),
    ("unshare", "EPERM", [(0, CLONE_NEWUSER, CLONE_NEWUSER)]),  # a user namespace of its own
    ("clone", "EPERM", [(0, CLONE_NEWUSER, CLONE_NEWUSER)]),
    ("clone3", "ENOSYS", []),  # its flags are in memory a filter cannot read: the C library falls back to clone
    # CPU: Linux's scheduler (with autogroups, CONFIG_SCHED_AUTOGROUP) shares the CPU fairly
    # between sessions, and bwrap's --new-session makes the sandbox one session before this
    # filter is loaded.  A process that cannot start a session of its own stays in that
    # autogroup with every other process of the sandbox, so 16 busy processes get the share
    # of one sandbox, not 16 shares taken from the kernel graded next to it (see
    # benchmarks/sandbox_cpu.py).  Nothing else leaves the group: it is inherited on fork
    # and changed only by setsid (setpgid makes a process group, not a session), and
    # /proc/self/autogroup sets only its nice, which an unprivileged process may raise
    # (less CPU) but not lower below 0 (can_nice: RLIMIT_NICE is 0, no CAP_SYS_NICE).
    # Refused: os.setsid, Popen(start_new_session=True), daemons, pty.fork.
    ("setsid", "EPERM", []),
)
SECCOMP_HINT = ("install libseccomp (Debian/Ubuntu: `apt-get install libseccomp2`, Fedora: `dnf install "
                "libseccomp`), or pass --no-sandbox to grade without one (unsafe for untrusted submissions)")


def seccomp_program(rules: tuple = SECCOMP_RULES) -> bytes:
    """The sandbox's seccomp filter (``rules``, :data:`SECCOMP_RULES`) as the compiled BPF program
    that ``bwrap --seccomp`` loads, made by libseccomp (the library Flatpak and systemd
    use; Debian ``libseccomp2``) for this machine's architecture.  SandboxUnavailable if
    libseccomp is missing."""
    import ctypes
    import ctypes.util
    import errno
    import tempfile

    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        raise SandboxUnavailable(f"no sandbox: the library libseccomp was not found; {SECCOMP_HINT}") from None

    class ArgCmp(ctypes.Structure):  # struct scmp_arg_cmp
        _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                    ("datum_b", ctypes.c_uint64)]

    scmp_act_allow, scmp_cmp_masked_eq = 0x7FFF0000, 7
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(ArgCmp)]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(scmp_act_allow)
    if not ctx:
        raise SandboxUnavailable(f"no sandbox: libseccomp could not start a filter; {SECCOMP_HINT}")
    try:
        for syscall, error, conditions in rules:
            number = lib.seccomp_syscall_resolve_name(syscall.encode())
            if number < 0:
                continue  # not a system call of this architecture
            args = (ArgCmp * max(1, len(conditions)))(*[ArgCmp(arg, scmp_cmp_masked_eq, mask, value)
                                                        for arg, mask, value in conditions])
            action = 0x00050000 | getattr(errno, error)  # SCMP_ACT_ERRNO(error)
            if lib.seccomp_rule_add_array(ctx, action, number, len(conditions), args) != 0:
                raise SandboxUnavailable(f"no sandbox: libseccomp refused the rule for {syscall}; {SECCOMP_HINT}")
        with tempfile.TemporaryFile() as f:
            if lib.seccomp_export_bpf(ctx, f.fileno()) != 0:
                raise SandboxUnavailable(f"no sandbox: libseccomp could not export the filter; {SECCOMP_HINT}")
            f.seek(0)
            return f.read()
    finally:
        lib.seccomp_release(ctx)


def _seccomp_fd(config: SandboxConfig) -> int:
    """A pipe's read end holding the config's seccomp program, for ``bwrap --seccomp``."""
    program = base64.b64decode(config.seccomp)
    read, write = os.pipe()
    os.write(write, program)  # far below a pipe's capacity
    os.close(write)
    return read


def python_paths(python: str) -> list[str]:
    """The interpreter's prefixes and the folders on its ``sys.path`` (as ``-I`` sees it)."""
    out = subprocess.run([python, "-I", "-c", "import json, sys; print(json.dumps([sys.base_prefix, "
                          "sys.prefix, sys.executable] + sys.path))"],
                         capture_output=True, text=True, check=True, timeout=60)
    paths = json.loads(out.stdout)
    executable = paths[2]
    return [p for p in paths[:2] + paths[3:] if p] + [os.path.dirname(os.path.realpath(executable))]


def _outermost(paths: list[str]) -> list[str]:
    """The paths, without those inside another one, in a stable order."""
    keep: list[str] = []
    for path in sorted(set(paths), key=lambda p: (p.count("/"), p)):
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in keep):
            keep.append(path)
    return sorted(keep)


def kernel_argv(config_path: Path) -> list[str]:
    """The kernel spec's command: this file as the launcher, standard library only."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), str(config_path), "{connection_file}"]


def new_socket_prefix() -> str:
    """A fresh ``ip`` for an IPC kernel: ``/tmp/optbook-kernel-<token>/kernel``."""
    return f"/tmp/optbook-kernel-{secrets.token_hex(8)}/kernel"


# ------------------------------------------------------------------ the launcher

# Runs first in the sandbox, as the kernel's own process: limits, then (as root) a user id
# of its own, then ipykernel.  Nothing of the student's has run yet.
BOOTSTRAP = """\
import json, os, resource, runpy, sys
setup = json.loads(sys.argv[1])
for name, value in setup["rlimits"].items():
    resource.setrlimit(getattr(resource, name), (value, value))
if setup["uid"] is not None:
    os.setgroups([])
    os.setgid(setup["uid"])
    os.setuid(setup["uid"])
    __import__("ctypes").CDLL(None).prctl(1, 9, 0, 0, 0)  # the user switch cleared die-with-bwrap
os.chdir(setup["home"])
if setup["run"]:
    sys.argv = [setup["run"]] + sys.argv[2:]
    runpy.run_module(setup["run"], run_name="__main__", alter_sys=True)
else:
    exec(compile(setup["code"], "<sandboxed>", "exec"), {"__name__": "__main__"})
"""


def bwrap_argv(config: SandboxConfig, link: str, *, uid: int | None, seccomp_fd: int | None, extra: list[str] = (),
               args: list[str] = (), run: str | None = "ipykernel_launcher", code: str = "") -> list[str]:
    """bwrap's command line: the sandbox, ``extra`` bwrap options, then the bootstrap, which
    runs module ``run`` with ``args`` (or, if ``run`` is None, the Python ``code``).
    ``uid`` is the user id the kernel drops to (as root); ``seccomp_fd`` the file
    descriptor that holds the seccomp program (from :func:`_seccomp_fd`), passed to bwrap."""
    scratch = str(config.scratch_mb * 2**20)
    home = f"{link}/work"
    if uid is None:  # an ordinary user: a user namespace of its own
        argv = [config.bwrap, "--unshare-all"]
    else:  # root: no user namespace (the kernel then drops to ``uid``, which needs these two)
        argv = [config.bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                "--unshare-cgroup-try", "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    argv += ["--die-with-parent", "--as-pid-1", "--new-session",
             # the private /tmp first: a read-only folder below it (a checkout in a
             # temporary folder) is then bound on top of it instead of hidden by it
             "--size", scratch, "--tmpfs", "/tmp", "--chmod", "1777", "/tmp"]
    for folder in _ancestors(config.read_only):  # bwrap would make them 0700
        argv += ["--perms", "0755", "--dir", folder]
    for path in config.read_only:
        argv += ["--ro-bind", path, path]
    for target, path in config.links:
        argv += ["--symlink", target, path]
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--size", scratch, "--tmpfs", "/dev/shm", "--chmod", "1777", "/dev/shm",
             "--dir", link, "--chmod", "1777", link, "--dir", home, "--chmod", "1777", home,
             "--remount-ro", "/", "--remount-ro", "/dev",  # bwrap's own (unbounded) file systems
             "--chdir", "/", "--clearenv"]
    env = {"HOME": home, "TMPDIR": "/tmp", "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8",
           "PATH": f"{os.path.dirname(config.python)}:/usr/local/bin:/usr/bin:/bin", **config.env}
    for key, value in env.items():
        argv += ["--setenv", key, value]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    setup = json.dumps({"rlimits": config.rlimits, "uid": uid, "home": home, "run": run, "code": code})
    return argv + list(extra) + ["--", config.python, "-I", "-B", "-c", BOOTSTRAP, setup, *args]


def _ancestors(paths: list[str]) -> list[str]:
    """The folders above ``paths`` (outermost first), which the sandbox must create."""
    folders = {str(parent) for path in paths for parent in Path(path).parents if str(parent) != "/"}
    return sorted(folders - set(paths), key=lambda f: (f.count("/"), f))


def _new_uid() -> int | None:
    """As root: a random user id of the kernel's own (no other process has it)."""
    return 1_000_000 + secrets.randbelow(1_000_000_000) if os.geteuid() == 0 else None


def _die_with_parent(sig: int) -> None:
    """Ask Linux to send ``sig`` to this process when its parent (nbval's process) dies."""
    import ctypes

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, sig, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request
        os.kill(os.getpid(), sig)


def _read_info(fd: int, timeout: float = 30.0) -> dict:
    """bwrap's ``--info-fd`` JSON (it holds ``child-pid``)."""
    import select

    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            break
        data += chunk
        try:
            return json.loads(data)
        except ValueError:
            continue
    raise RuntimeError("bwrap reported no sandbox (see the kernel's log)")


def launch(config_path: str, connection_file: str) -> int:
    """Start one sandboxed kernel for ``connection_file``; return its exit status.

    When this launcher is stopped (by a signal, or because nbval's process died), it
    kills bwrap, which takes every process of the sandbox with it, and removes the link."""
    state: dict = {"proc": None, "link": None, "pid": None}

    def stop(*_args):
        kill_sandbox(state["pid"])
        if state["proc"] is not None and state["proc"].poll() is None:
            state["proc"].kill()
        if state["link"]:
            _remove(state["link"])
        os._exit(1)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    _die_with_parent(signal.SIGTERM)
    config = SandboxConfig.read(config_path)
    with open(connection_file, "rb") as f:
        connection = f.read()
    link = os.path.dirname(json.loads(connection)["ip"])
    if not LINK_RE.fullmatch(link) or os.path.lexists(link):
        raise RuntimeError(f"unexpected kernel socket folder {link!r}")
    conn_r, conn_w = os.pipe()
    info_r, info_w = os.pipe()
    block_r, block_w = os.pipe()
    os.write(conn_w, connection)
    os.close(conn_w)
    filter_r = _seccomp_fd(config) if config.seccomp else None
    argv = bwrap_argv(config, link, uid=_new_uid(), seccomp_fd=filter_r,
                      extra=["--perms", "0444", "--ro-bind-data", str(conn_r), f"{link}/connection.json",
                             "--info-fd", str(info_w), "--block-fd", str(block_r)],
                      args=["--transport=ipc", "-f", f"{link}/connection.json"])
    with open(os.path.join(os.path.dirname(connection_file), "kernel.log"), "ab") as log:
        passed = tuple(fd for fd in (conn_r, info_w, block_r, filter_r) if fd is not None)
        proc = state["proc"] = subprocess.Popen(argv, pass_fds=passed, stdin=subprocess.DEVNULL,
                                                stdout=log, stderr=log, cwd="/")
    for fd in passed:
        os.close(fd)
    try:
        info = _read_info(info_r)
        pid = state["pid"] = int(info["child-pid"])
        with open(os.path.join(os.path.dirname(connection_file), PIDS_FILE), "a") as f:
            f.write(json.dumps({"pid": pid, "pid-namespace": info.get("pid-namespace")}) + "\n")
        state["link"] = link
        os.symlink(f"/proc/{pid}/root{link}", link)
        os.write(block_w, b"1")  # the kernel may start
        os.close(block_w)
        return proc.wait()
    finally:
        kill_sandbox(state["pid"])
        if proc.poll() is None:
            proc.kill()
        _remove(link)


def kill_sandbox(pid: int | None, namespace: int | None = None) -> None:
    """SIGKILL a sandbox's first process, which ends every process in its PID namespace
    (the student's code can ignore no signal then, nor stop it).  With ``namespace``, only
    if ``pid`` is still in that PID namespace (a finished sandbox's PID may be reused)."""
    if not pid:
        return
    try:
        if namespace is not None and os.readlink(f"/proc/{pid}/ns/pid") != f"pid:[{namespace}]":
            return
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def note_link(folder: Path, link: str) -> None:
    """Record a socket link (or a folder of them) made for a kernel of the run in ``folder``."""
    with open(folder / LINKS_FILE, "a", encoding="utf-8") as f:
        f.write(link + "\n")


def clean_up(folder: Path) -> None:
    """After a run in ``folder``: kill every sandbox its launchers started (even a launcher
    that was killed first) and remove the socket links of its kernels."""
    for name, action in ((PIDS_FILE, _kill_entry), (LINKS_FILE, _remove)):
        try:
            lines = (folder / name).read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for line in lines:
            action(line)


def _kill_entry(line: str) -> None:
    try:
        entry = json.loads(line)
        kill_sandbox(int(entry["pid"]), int(entry["pid-namespace"]))
    except (ValueError, KeyError, TypeError):
        pass


def _remove(link: str) -> None:
    try:
        if LINK_RE.fullmatch(link) and os.path.islink(link):
            os.unlink(link)
        elif PRIVATE_RE.fullmatch(link) and os.path.isdir(link) and not os.path.islink(link):
            shutil.rmtree(link, ignore_errors=True)
    except OSError:
        pass


def run_code(config: SandboxConfig, code: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run Python ``code`` in a sandbox like a kernel's (same view, user, limits).

    Past ``timeout``: the sandbox is killed (its first process, by SIGKILL from here, as
    the launcher does; as root, bwrap's ``--die-with-parent`` no longer reaches a process
    that has dropped to a user id of its own) and TimeoutExpired is raised."""
    link = new_socket_prefix().rsplit("/", 1)[0]
    filter_r = _seccomp_fd(config) if config.seccomp else None
    info_r, info_w = os.pipe()
    passed = tuple(fd for fd in (filter_r, info_w) if fd is not None)
    try:
        argv = bwrap_argv(config, link, uid=_new_uid(), seccomp_fd=filter_r, run=None, code=code,
                          extra=["--info-fd", str(info_w)])
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
                                stdin=subprocess.DEVNULL, pass_fds=passed)
    finally:
        for fd in passed:
            os.close(fd)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            kill_sandbox(int(_read_info(info_r, timeout=5)["child-pid"]))
        except (RuntimeError, KeyError, ValueError):
            pass
        proc.kill()
        proc.communicate()
        raise
    finally:
        os.close(info_r)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def try_start(config: SandboxConfig, timeout: float = 60.0) -> float:
    """Start the sandbox once, limits and user switch included; return its start cost in
    seconds (over the same interpreter started without it).  SandboxUnavailable, with
    bwrap's message and what to do, if it does not start."""
    started = time.perf_counter()
    out = run_code(config, "pass", timeout)
    sandboxed = time.perf_counter() - started
    if out.returncode != 0:
        message = " ".join(out.stderr.split())[-500:] or f"exit code {out.returncode}"
        raise SandboxUnavailable(
            f"no sandbox: bubblewrap could not start ({message}); where unprivileged user namespaces are "
            "off (sysctl kernel.unprivileged_userns_clone=0 or user.max_user_namespaces=0), turn them on "
            "or grade as root, or pass --no-sandbox (unsafe for untrusted submissions)")
    started = time.perf_counter()
    subprocess.run([config.python, "-I", "-B", "-c", "pass"], capture_output=True, timeout=timeout)
    return max(0.0, sandboxed - (time.perf_counter() - started))


if __name__ == "__main__":
    sys.exit(launch(*sys.argv[1:3]))
