"""`clusterhub serve`: every service in its own uvicorn process, started and stopped together.

The children run in their own session, so a terminal's Ctrl-C reaches only this supervisor,
which then stops them one way, in order (SIGTERM, then SIGKILL after a grace period). Were
they in the terminal's process group, each would get SIGINT and then our SIGTERM, which
uvicorn takes as a second signal and answers with a forced exit.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cli.services import Service
from shared.errors import ServiceUnavailable

PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    service: Service
    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def exited(self) -> int | None:
        return self.process.poll()


def ensure_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        # SO_REUSEADDR as uvicorn sets it: a port in TIME_WAIT is free for our purposes.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ServiceUnavailable(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _die_with_parent() -> None:
    # If the supervisor is killed outright (no chance to stop its children), the kernel sends
    # each child SIGTERM instead of leaving it running on its port.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def uvicorn_argv(app_factory: str, host: str, port: int) -> list[str]:
    """How a service runs: one uvicorn worker (uvloop and httptools, from uvicorn[standard]).
    --no-access-log: the service writes its own access line, with the request's ids (as in deploy/)."""
    return [sys.executable, "-m", "uvicorn", "--factory", app_factory, "--host", host, "--port", str(port),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log"]


def start(service: Service, host: str, port: int, env: dict[str, str]) -> Child:
    argv = uvicorn_argv(service.app_factory, host, port)
    process = subprocess.Popen(argv, env=env, start_new_session=True, preexec_fn=_die_with_parent)
    return Child(service, host, port, process)


def _listening(child: Child) -> bool:
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(child.host, child.host)
    try:
        with socket.create_connection((host, child.port), timeout=0.5):
            return True
    except OSError:
        return False


def _check_alive(children: Sequence[Child], when: str) -> None:
    for child in children:
        code = child.exited()
        if code is not None:
            raise ServiceUnavailable(f"{child.service.name} exited with code {code} {when} (its output is above)")


def wait_until_listening(children: Sequence[Child], stopping: threading.Event, timeout: float) -> bool:
    """True once every child accepts connections (uvicorn binds after the app's startup)."""
    deadline = time.monotonic() + timeout
    waiting = list(children)
    while waiting:
        if stopping.is_set():
            return False
        _check_alive(children, "while starting")
        waiting = [child for child in waiting if not _listening(child)]
        if waiting and time.monotonic() > deadline:
            names = ", ".join(child.service.name for child in waiting)
            raise ServiceUnavailable(f"{names} did not start listening within {timeout:.0f} s")
        if waiting:
            stopping.wait(0.1)
    return True


def stop(children: Sequence[Child], grace: float = 10.0) -> None:
    for child in children:
        if child.exited() is None:
            child.process.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


def run(
    plan: Sequence[tuple[Service, str, int]],
    env: dict[str, str],
    announce: Callable[[Sequence[Child]], None],
    *,
    startup_timeout: float = 60.0,
) -> None:
    """Start every (service, host, port), announce them, and wait for SIGINT/SIGTERM or a crash."""
    stopping = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: list[Child] = []
    try:
        for service, host, port in plan:
            children.append(start(service, host, port, env))
        if not wait_until_listening(children, stopping, startup_timeout):
            return
        announce(children)
        while not stopping.wait(0.2):
            _check_alive(children, "unexpectedly")
    finally:
        stop(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def child_environment(database_url: str) -> dict[str, str]:
    """The children read their settings from the environment: hand them the store we prepared."""
    env = dict(os.environ)
    env["CLUSTERHUB_DATABASE_URL"] = database_url
    return env
