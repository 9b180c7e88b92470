"""Fixtures and helpers for the matchmaking service tests (imported by tests/matchmaking/test_service_*.py).

The matchmaking app runs in process over the test's store; organisations are registered through
the registry's own app on the same store, so they reach matchmaking the production way: as
events in the shared log, picked up by the index feeder.
"""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from services.matchmaking.app import create_app
from services.matchmaking.feed import IndexFeed
from services.matchmaking.settings import MatchmakingSettings
from services.registry.app import create_app as create_registry_app
from tests.conftest import Store, auth_headers

TODAY = date(2026, 1, 12)


@dataclass
class Registry:
    """The registry's app, to set the scene: organisations, contacts, clusters, connections."""

    http: httpx.AsyncClient

    async def post(self, path: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
        response = await self.http.post(path, json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        return response.json()

    async def organisation(self, legal_name: str, *, kind: str = "company", country: str = "BE",
                           contact: str | None = None, **fields: Any) -> dict[str, str]:
        """Registers it (and a contact person): {"id", "contact_id"}."""
        organisation = await self.post("/v1/organisations", {"legal_name": legal_name, "kind": kind,
                                                             "country": country, **fields})
        person = await self.post(f"/v1/organisations/{organisation['id']}/contacts",
                                 {"name": contact or f"Contact at {legal_name}"})
        return {"id": organisation["id"], "contact_id": person["id"]}

    async def connect(self, source_id: str, target_id: str, kind: str = "partner_of") -> str:
        return (await self.post("/v1/connections", {"source_id": source_id, "target_id": target_id,
                                                    "kind": kind}))["id"]


@dataclass
class Matchmaking:
    app: FastAPI
    http: httpx.AsyncClient

    @property
    def feed(self) -> IndexFeed:
        return self.app.state.feed

    def travel_to(self, day: date) -> None:
        self.app.state.clock = lambda: day


@pytest.fixture
async def registry(store: Store) -> AsyncIterator[Registry]:
    app = create_registry_app(db=store.db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test",
                                 headers=auth_headers()) as http:
        yield Registry(http)


@pytest.fixture
async def matchmaking(store: Store) -> AsyncIterator[Matchmaking]:
    """The app without its lifespan: tests move the index on with `feed.catch_up()` themselves."""
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9", timeout=2) as events:
        app = create_app(MatchmakingSettings(events_backoff=0.01), db=store.db, events=events)
        app.state.clock = lambda: TODAY
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://matchmaking.test",
                                     headers=auth_headers()) as http:
            yield Matchmaking(app, http)


async def created(client: httpx.AsyncClient, path: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def ok(response_coroutine: Any) -> Any:
    response = await response_coroutine
    assert response.status_code == 200, response.text
    return response.json()


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


def fields_named(response: httpx.Response) -> list[str]:
    return [error["field"] for error in problem(response, 422)["errors"]]


async def eventually(check: Any, *, within: float) -> float:
    """Seconds until `await check()` is true; fails after `within` seconds."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within, f"not within {within} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


# --------------------------------------------------------------------------------------------
# Real servers on loopback (httpx's serve_in_thread pattern)


class ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # only the main thread may; the test runner owns them
        pass


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serving(app: FastAPI, *, lifespan: str = "off") -> Iterator[str]:
    """`app` in uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    server = ThreadServer(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    sock = free_socket()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the server did not start"
            time.sleep(0.005)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
