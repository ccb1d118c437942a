"""The pytest plugin loaded in nbval's process (``-p optbook.grade.plugin``).

nbval runs the notebook; this plugin, in the same (trusted) process, outside the sandbox:

* starts the kernel in the sandbox (``--optbook-sandbox=CONFIG``): nbval's
  ``start_new_kernel`` is replaced by one that uses an IPC kernel whose command is the
  sandbox's launcher;
* records, for each cell, the kernel's ``execute_reply`` status (nbval ignores it: a
  cell whose traceback display was silenced still replies ``error``), the error's type
  and message (never the traceback, which could show code), the values probe cells sent
  (:mod:`optbook.grade.probe`), a dead kernel's exit code, and a flood of output;
* caps what it keeps of the output, whatever the kernel sends, and notices a dead
  kernel at once instead of waiting for nbval's timeouts;
* writes everything to ``--optbook-report=PATH`` (JSON, written atomically) at the end.

The report is the grader's only source: nothing of it comes from the kernel except the
recorded messages, and the sandbox cannot reach the file.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from queue import Empty

import pytest

from optbook.grade.merge import OUTPUT_LIMIT, TRUNCATION_MARK
from optbook.grade.probe import MIME, VALUE_LIMIT

TEXT_LIMIT = 2000  # characters of an error message kept
VALUES_LIMIT = 2 * VALUE_LIMIT  # characters of probe values kept in all (the report stays small)
REPORT: dict = {"cells": {}, "kernel_start": None}
_VALUES_KEPT = [0]


def pytest_addoption(parser) -> None:
    group = parser.getgroup("optbook", "optbook grader")
    group.addoption("--optbook-report", help="write what happened in each cell to this JSON file")
    group.addoption("--optbook-sandbox", help="start the kernel in the sandbox this JSON config describes")


def pytest_configure(config) -> None:
    """Patch nbval's kernel wrapper (nbval 0.11): watch the kernel, record replies, cap
    outputs; and start the kernel in the sandbox when one is configured."""
    from nbval import kernel as nbval_kernel

    running = nbval_kernel.RunningKernel
    if getattr(running.get_message, "_optbook", False):
        return
    original_get_message = running.get_message

    def get_message(self, stream, timeout=None):
        if getattr(self, "_optbook_exit", None) is not None and (timeout is None or timeout > 0.2):
            timeout = 0.2  # a dead kernel sends nothing more: do not wait for it
        msg = original_get_message(self, stream, timeout=timeout)
        if stream == "iopub":
            _cap(self, msg)
        return msg

    get_message._optbook = True
    running.get_message = get_message
    running.await_reply = _await_reply
    if config.getoption("optbook_sandbox"):
        nbval_kernel.start_new_kernel = _sandboxed_kernel_starter(config.getoption("optbook_sandbox"))
    else:
        nbval_kernel.start_new_kernel = _timed(nbval_kernel.start_new_kernel)


def _timed(start_new_kernel):
    """nbval's own start_new_kernel (a plain kernel), timed like the sandboxed one."""
    def timed(*args, **kwargs):
        started = time.monotonic()
        km, kc = start_new_kernel(*args, **kwargs)
        REPORT["kernel_start"] = time.monotonic() - started
        return km, kc

    return timed


def _cell_state(kernel) -> dict:
    state = getattr(kernel, "_optbook_cell", None)
    if state is None:
        state = kernel._optbook_cell = {"printed": 0, "truncated": False, "reply": None}
    return state


def _cap(kernel, msg: dict) -> None:
    """Keep at most OUTPUT_LIMIT characters of a cell's output, and probe values only up to
    their own limit; drop tracebacks (the grader never uses them)."""
    state, content = _cell_state(kernel), msg.get("content", {})
    kind = msg.get("msg_type")
    if kind == "stream":
        text = str(content.get("text", ""))
        room = max(0, OUTPUT_LIMIT - state["printed"])
        state["printed"] += len(text)
        if len(text) > room or TRUNCATION_MARK in text:
            state["truncated"] = True
            content["text"] = text[:room]
    elif kind in ("display_data", "execute_result"):
        data = content.get("data") if isinstance(content.get("data"), dict) else {}
        probe = data.get(MIME)
        if isinstance(probe, dict):
            size = len(str(probe.get("json", "")))
            _VALUES_KEPT[0] += size
            if size > VALUE_LIMIT + 1000 or _VALUES_KEPT[0] > VALUES_LIMIT:
                probe = {"nonce": str(probe.get("nonce", ""))[:100], "json": "", "too_large": True}
        size = sum(len(str(v)) for k, v in data.items() if k != MIME)
        state["printed"] += size
        if state["printed"] > OUTPUT_LIMIT:
            state["truncated"] = True
            data = {}
        content["data"] = {**data, **({MIME: probe} if probe is not None else {})}
    elif kind == "error":
        content["traceback"] = []
        content["ename"] = str(content.get("ename", ""))[:200]
        content["evalue"] = str(content.get("evalue", ""))[:TEXT_LIMIT]


def _await_reply(self, msg_id, timeout=None):
    """nbval's await_reply, polling in short steps so that a kernel death ends the wait,
    and remembering the reply's status, error type and message."""
    deadline = None if timeout is None else time.monotonic() + float(timeout)
    while True:
        step = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
        if step <= 0:
            raise Empty
        try:
            msg = self.get_message(stream="shell", timeout=step)
        except Empty:
            if not self.is_alive():
                process = getattr(getattr(self.km, "provisioner", None), "process", None)
                code = getattr(process, "returncode", None)
                self._optbook_exit = "?" if code is None else code
                raise
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            content = msg.get("content", {})
            if content.get("status") == "aborted":
                raise RuntimeError("Kernel aborted execution request")
            _cell_state(self)["reply"] = {"status": str(content.get("status", ""))[:20],
                                          "ename": str(content.get("ename", ""))[:200],
                                          "evalue": str(content.get("evalue", ""))[:TEXT_LIMIT]}
            return


_SOCKET_FDS: list[int] = []  # the kernel's socket files, held open for the run


def _sandboxed_kernel_starter(config_path: str):
    def start_new_kernel(startup_timeout=60, kernel_name=None, **kwargs):
        """nbval's start_new_kernel, for a kernel in the sandbox (``kernel_name`` unused).

        The kernel makes its socket files in the sandbox, where its code could later
        replace them by links to sockets of the host, which ZeroMQ would follow when it
        reconnects.  So, once the kernel has made them and before any student code runs,
        this process opens each socket file itself (``O_PATH``) and connects, then and
        whenever it reconnects, through links of its own to those open files
        (``/proc/<pid>/fd/<n>``), in a private folder with a short name (a socket's path
        has at most 107 characters)."""
        import stat

        import zmq
        from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
        from jupyter_client.manager import KernelManager

        from optbook.grade import sandbox

        class SandboxSpec(KernelSpecManager):
            def get_kernel_spec(self, name):
                return KernelSpec(argv=sandbox.kernel_argv(config_path), display_name="optbook sandbox",
                                  language="python", interrupt_mode="message", env={})

        started = time.monotonic()
        ip = sandbox.new_socket_prefix()
        sandbox.note_link(Path.cwd(), os.path.dirname(ip))  # removed by the grader after the run
        context = zmq.Context()
        context.setsockopt(zmq.MAXMSGSIZE, 2 * VALUE_LIMIT)  # a larger message disconnects the kernel
        context.setsockopt(zmq.SNDTIMEO, 2000)  # no send blocks on a kernel that is gone
        km = KernelManager(kernel_name="optbook-sandbox", kernel_spec_manager=SandboxSpec(), transport="ipc",
                           ip=ip, connection_file=os.path.abspath("kernel.json"), context=context)
        km.start_kernel(**kwargs)
        ports = (km.shell_port, km.iopub_port, km.stdin_port, km.control_port, km.hb_port)
        while not all(os.path.exists(f"{ip}-{port}") for port in ports):
            if not km.is_alive() or time.monotonic() - started > startup_timeout:
                km.shutdown_kernel(now=True)
                raise RuntimeError(f"the sandboxed kernel did not start in {startup_timeout} s")
            time.sleep(0.02)
        private = Path(tempfile.mkdtemp(prefix="optbook-sockets-", dir="/tmp"))
        sandbox.note_link(Path.cwd(), str(private))
        for port in ports:
            fd = os.open(f"{ip}-{port}", os.O_PATH | os.O_NOFOLLOW)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                raise RuntimeError("the sandboxed kernel did not make its sockets")
            _SOCKET_FDS.append(fd)
            os.symlink(f"/proc/{os.getpid()}/fd/{fd}", private / f"k-{port}")
        km._close_control_socket()  # made on the sandbox's path: connect again through ours
        km.ip = str(private / "k")
        kc = km.client(context=context)
        kc.start_channels(hb=False)
        try:
            kc.wait_for_ready(timeout=startup_timeout)
        except RuntimeError:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
            raise
        REPORT["kernel_start"] = time.monotonic() - started
        return km, kc

    return start_new_kernel


def pytest_runtest_setup(item) -> None:
    kernel = getattr(item.parent, "kernel", None)
    if kernel is not None:
        kernel._optbook_cell = None  # a fresh record for this cell


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    if call.when == "call":
        _record_cell(item, call)
    elif call.when == "setup" and call.excinfo is not None:  # e.g. the kernel did not start
        REPORT["cells"].setdefault(str(getattr(item, "cell_num", -1)), {
            "ran": False, "failed": True, "nbval": _first_line(f"{call.excinfo.typename}: {call.excinfo.value}")})
    report = yield
    if report.longrepr is not None:
        report.longrepr = str(report.longrepr)[:4000]
    return report


def _record_cell(item, call) -> None:
    kernel = getattr(item.parent, "kernel", None)
    state = _cell_state(kernel) if kernel is not None else {"reply": None, "truncated": False}
    outputs = getattr(item, "test_outputs", None) or []
    error = next((o for o in outputs if o.get("output_type") == "error"), None)
    reply = state.get("reply") or {}
    record = {
        "ran": True,
        "failed": call.excinfo is not None,
        "nbval": _first_line(str(call.excinfo.value)) if call.excinfo is not None else "",
        "reply_status": reply.get("status"),
        "ename": str(error.get("ename", "")) if error else reply.get("ename", ""),
        "evalue": str(error.get("evalue", "")) if error else reply.get("evalue", ""),
        "payloads": [o["data"][MIME] for o in outputs if o.get("output_type") in ("display_data", "execute_result")
                     and isinstance(o.get("data"), dict) and isinstance(o["data"].get(MIME), dict)],
        "output_truncated": bool(state.get("truncated")),
    }
    died = getattr(kernel, "_optbook_exit", None)
    if died is not None and not getattr(kernel, "_optbook_exit_reported", False):
        record["kernel_exit"] = str(died)
        kernel._optbook_exit_reported = True
    REPORT["cells"][str(item.cell_num)] = record
    if isinstance(outputs, list):
        outputs.clear()  # nbval keeps them for nothing in lax mode


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]


def pytest_sessionfinish(session, exitstatus) -> None:
    path = session.config.getoption("optbook_report")
    if path:
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(REPORT, f)
        os.replace(tmp, path)
