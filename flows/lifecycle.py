"""Processes that end when they should: a temporary Prefect server that dies with its run, and SIGTERM.

A ``nanoloop run`` or ``demo`` without ``PREFECT_API_URL`` starts its own
temporary Prefect server (``prefect server start --no-services`` on a free
loopback port) as a child that the kernel kills when its parent dies
(``PR_SET_PDEATHSIG``), so even a SIGKILL of the run leaves no server behind.
SIGTERM ends a run within seconds: the ledger is crash-safe, so the process
stops its children and exits at once; the next run resumes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from nanoloop.loop.errors import InputError

_PR_SET_PDEATHSIG = 1
_children: list[subprocess.Popen] = []


def die_with_parent() -> None:
    """``preexec_fn``: the child gets SIGKILL when the process that started it dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})


def start_child(args: list[str], **popen) -> subprocess.Popen:
    """Start a child process that dies with this one; stopped by :func:`stop_children`."""
    child = subprocess.Popen(args, preexec_fn=die_with_parent, **popen)
    _children.append(child)
    return child


def stop_children(grace_s: float = 5.0) -> None:
    """Terminate every child this process started (kill those still alive after ``grace_s``)."""
    for child in _children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + grace_s
    for child in _children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    _children.clear()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_temporary_server(timeout_s: float | None = None) -> str:
    """Start a temporary Prefect server that dies with this process; returns its API URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    prefect = Path(sys.executable).with_name("prefect")
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    child = start_child([str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-services", "--no-ui"],
                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    timeout_s = timeout_s or float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", 90))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise InputError(f"the temporary Prefect server exited at start (code {child.returncode}); "
                             "start one with `nanoloop server` and export PREFECT_API_URL")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return url
        except OSError:
            pass
        time.sleep(0.3)
    stop_children()
    raise InputError(f"the temporary Prefect server did not answer within {timeout_s:.0f} s; "
                     "start one with `nanoloop server` and export PREFECT_API_URL")


def exit_on_sigterm(message: str = "stopped by SIGTERM") -> None:
    """From now on SIGTERM (and SIGHUP) stop this process within seconds, children first.

    A watcher thread takes the signals (blocked in every other thread, so no
    library's handler can swallow them), stops the children and exits with 143.
    """
    import threading

    signals = {signal.SIGTERM, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    os.register_at_fork(after_in_child=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, signals))  # forked children answer SIGTERM

    def watch():
        received = signal.sigwait(signals)
        print(f"nanoloop: {message} (signal {received}); the ledger is consistent: run again to resume", file=sys.stderr, flush=True)
        try:
            stop_children(grace_s=3.0)
        finally:
            os._exit(128 + int(received))

    threading.Thread(target=watch, name="nanoloop-sigterm", daemon=True).start()
