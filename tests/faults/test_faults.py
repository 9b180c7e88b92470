"""Fault tests on real processes: a registry killed with SIGKILL in the middle of a write load, and
a store that refuses writes, and PostgreSQL restarted under load. What a client was told succeeded must be in the log and its read
model, and the hash chain must stay intact.

The registry-down case (events answers 503 with Retry-After and writes nothing) is covered in
tests/events/test_registrations.py.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from shared.db import Database
from shared.eventlog import verify_chain
from shared.migrate import upgrade
from tests.conftest import Store, _postgres_store, _sqlite_store, auth_headers
from tests.support.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[2]
_names = itertools.count()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _organisation() -> dict[str, object]:
    return {"legal_name": f"Fault Test Organisation {os.getpid()}-{next(_names)}", "kind": "company",
            "country": "BE", "nuts_region": "BE31"}


class Registry:
    """`python -m uvicorn` on the registry factory, as production runs it."""

    def __init__(self, database_url: str, cwd: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = (cwd / f"registry-{self.port}.log").open("wb")
        env = {**os.environ, "CLUSTERHUB_DATABASE_URL": database_url, "CLUSTERHUB_RATE_LIMIT_PER_MINUTE": "0",
               "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "services.registry.app:create_app",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the registry exited while starting"
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.base}/healthz did not answer within {timeout} s")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def registry_processes() -> Iterator[list[Registry]]:
    started: list[Registry] = []
    try:
        yield started
    finally:
        for registry in started:
            registry.kill()


@pytest.fixture(params=["sqlite", "postgres"])
def fault_store(request, tmp_path) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    made = (_sqlite_store(tmp_path) if request.param == "sqlite"
            else _postgres_store(request.getfixturevalue("postgres_server")))
    made.db.dispose()  # only the subprocess and the checks below touch the store
    yield made


async def _write_load(base: str, accepted: list[str], stop: asyncio.Event, workers: int = 4) -> None:
    async def worker() -> None:
        async with httpx.AsyncClient(base_url=base, headers=auth_headers(), timeout=10) as client:
            while not stop.is_set():
                try:
                    response = await client.post("/v1/organisations", json=_organisation())
                except httpx.TransportError:
                    return  # the process is gone: whatever was in flight was never acknowledged
                if 200 <= response.status_code < 300:
                    accepted.append(response.json()["id"])
                else:
                    assert response.status_code < 500, response.text

    await asyncio.gather(*(worker() for _ in range(workers)))


def _check_store(admin_url: str, accepted: list[str]) -> int:
    db = Database(admin_url)
    try:
        with db.reading() as conn:
            logged = {row[0].removeprefix("organisation-") for row in conn.execute(text(
                "SELECT stream_id FROM events WHERE event_type = 'registry.OrganisationRegistered'"))}
            projected = {row[0] for row in conn.execute(text("SELECT id FROM registry_organisations"))}
            report = verify_chain(conn)
    finally:
        db.dispose()
    assert report.ok, report
    # Every acknowledged write is in the log and in its read model...
    assert set(accepted) <= logged
    assert set(accepted) <= projected
    # ...and no event lost its read-model row (projections commit with the event, or not at all).
    assert logged == projected
    return len(projected)


def test_sigkill_under_write_load_loses_no_acknowledged_write(
        fault_store: Store, tmp_path: Path, registry_processes: list[Registry]) -> None:
    url = fault_store.db.url
    registry = Registry(url, tmp_path)
    registry_processes.append(registry)
    registry.wait_healthy()
    accepted: list[str] = []

    async def scenario() -> None:
        stop = asyncio.Event()
        load = asyncio.create_task(_write_load(registry.base, accepted, stop))
        # Mid-load, however slow the machine: once some writes were acknowledged (a fixed 0.5 s
        # saw none on a loaded CI machine, whose first PostgreSQL connections take ~0.4 s).
        async with asyncio.timeout(20):
            while len(accepted) < 10:
                await asyncio.sleep(0.01)
        registry.process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(load, timeout=30)
        stop.set()

    asyncio.run(scenario())
    registry.kill()
    print(f"{len(accepted)} writes acknowledged before SIGKILL")
    assert accepted, "no write was acknowledged before the kill: the load did not run"
    count = _check_store(fault_store.admin_url, accepted)
    assert count >= len(accepted)

    # The same store serves again after a restart, reads and writes.
    again = Registry(url, tmp_path)
    registry_processes.append(again)
    again.wait_healthy()
    with httpx.Client(base_url=again.base, headers=auth_headers(), timeout=10) as client:
        assert client.get("/readyz").status_code == 200
        assert client.post("/v1/organisations", json=_organisation()).status_code == 201
        page = client.get("/v1/organisations", params={"limit": 1})
        assert page.status_code == 200 and page.json()["data"]
    _check_store(fault_store.admin_url, accepted)


def test_a_read_only_store_refuses_writes_with_503_and_stays_intact(
        tmp_path: Path, registry_processes: list[Registry]) -> None:
    store = _sqlite_store(tmp_path)
    store.db.dispose()
    writable = Registry(store.admin_url, tmp_path)
    registry_processes.append(writable)
    writable.wait_healthy()
    with httpx.Client(base_url=writable.base, headers=auth_headers(), timeout=10) as client:
        accepted = [client.post("/v1/organisations", json=_organisation()).json()["id"] for _ in range(3)]
    writable.kill()

    # Root ignores file modes, so the store is opened read-only by SQLite itself.
    path = store.admin_url.removeprefix("sqlite:///")
    read_only = Registry(f"sqlite:///file:{path}?mode=ro&uri=true", tmp_path)
    registry_processes.append(read_only)
    read_only.wait_healthy()
    with httpx.Client(base_url=read_only.base, headers=auth_headers(), timeout=10) as client:
        assert len(client.get("/v1/organisations").json()["data"]) == 3  # reads still work
        refused = client.post("/v1/organisations", json=_organisation())
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "5"
    assert refused.json()["title"] == "Service unavailable"
    read_only.kill()

    assert _check_store(store.admin_url, accepted) == 3


def test_a_postgres_restart_under_load_gives_503_then_the_registry_recovers_by_itself(
        tmp_path: Path, registry_processes: list[Registry]) -> None:
    # A server of its own: stopping the session's server would fail the other tests' stores.
    server = PostgresServer.start()
    try:
        url = server.url()
        db = Database(url)
        upgrade(db.engine)
        db.dispose()
        registry = Registry(url, tmp_path)
        registry_processes.append(registry)
        registry.wait_healthy()
        accepted: list[str] = []
        statuses: list[int] = []

        async def load(stop: asyncio.Event) -> None:
            async with httpx.AsyncClient(base_url=registry.base, headers=auth_headers(), timeout=30) as client:
                while not stop.is_set():
                    response = await client.post("/v1/organisations", json=_organisation())
                    statuses.append(response.status_code)
                    if response.status_code == 201:
                        accepted.append(response.json()["id"])
                    elif response.status_code == 503:
                        assert response.headers["content-type"] == "application/problem+json"
                        assert "retry-after" in response.headers
                        await asyncio.sleep(0.05)

        async def scenario() -> None:
            stop = asyncio.Event()
            workers = [asyncio.create_task(load(stop)) for _ in range(3)]
            await asyncio.sleep(0.5)
            await asyncio.to_thread(_pg_ctl, server, "stop", "-m", "fast")
            down_at = len(statuses)
            await asyncio.sleep(1.0)
            assert 503 in statuses[down_at:], "no request failed while PostgreSQL was down"
            await asyncio.to_thread(_pg_ctl, server, "start")
            # The pool's pre-ping replaces the dead connections: no restart of the registry.
            deadline = time.monotonic() + 20
            while statuses[-1] != 201 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            stop.set()
            await asyncio.gather(*workers)

        asyncio.run(scenario())
        assert set(statuses) <= {201, 503}, sorted(set(statuses))
        assert statuses[-1] == 201
        with httpx.Client(base_url=registry.base, headers=auth_headers(), timeout=10) as client:
            assert client.get("/readyz").status_code == 200
        registry.kill()
        _check_store(url, accepted)
    finally:
        server.stop()


def _pg_ctl(server: PostgresServer, action: str, *args: str) -> None:
    data = server.directory / "data"
    options = (f"-p {server.port} -k {server.directory} -c listen_addresses=127.0.0.1 "
               "-c fsync=on -c synchronous_commit=on -c max_connections=200")
    argv = [str(server.bindir / "pg_ctl"), "-D", str(data), *args, "-w", "-t", "30"]
    if action == "start":
        argv += ["-o", options, "-l", str(server.directory / "server.log")]
    server._run([*argv, action])
