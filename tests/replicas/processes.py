"""A service as production runs it: `python -m uvicorn --factory` in a process of its own on 127.0.0.1,
with JSON logs in a file the test can read, and SIGKILL for a crash."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import auth_headers

ROOT = Path(__file__).resolve().parents[2]
FACTORIES = {"registry": "services.registry.app:create_app", "events": "services.events.app:create_app",
             "matchmaking": "services.matchmaking.app:create_app"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    def __init__(self, service: str, database_url: str, cwd: Path, *, env: dict[str, str] | None = None,
                 preexec_fn: Callable[[], None] | None = None) -> None:
        self.service = service
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / f"{service}-{self.port}.log"
        self._log = self.log_path.open("wb")
        environment = {**os.environ, "CLUSTERHUB_DATABASE_URL": database_url, "CLUSTERHUB_RATE_LIMIT_PER_MINUTE": "0",
                       "CLUSTERHUB_LOG_JSON": "true", "CLUSTERHUB_ACCESS_LOG": "false", "PYTHONPATH": str(ROOT),
                       **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", FACTORIES[service],
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            cwd=cwd, env=environment, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=preexec_fn)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{self.service} exited while starting:\n{self.log_text()[-3000:]}"
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.base}/healthz did not answer within {timeout} s")

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample of this process's /metrics (None: not exposed, or the process does not answer)."""
        try:
            body = httpx.get(f"{self.base}/metrics", headers=auth_headers(), timeout=5).text
        except httpx.TransportError:
            return None
        wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
        for line in body.splitlines():
            sample, _, value = line.rpartition(" ")
            if sample == wanted:
                return float(value)
        return None

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_events(self, event: str) -> list[dict[str, Any]]:
        """This process's JSON log lines whose `event` is `event`."""
        found = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") == event:
                    found.append(record)
        return found

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        if not self._log.closed:
            self._log.close()

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, as an orchestrator does, and wait for the lifespan to finish."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if not self._log.closed:
            self._log.close()
