"""Observability tests: the registry in uvicorn on 127.0.0.1 in a thread (as in tests/events), the
events app in process calling it over HTTP, every request with a bearer token signed by the key
the services read from the environment."""
from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from services.events.app import create_app as create_events_app
from services.events.settings import EventsSettings
from services.registry.app import create_app as create_registry_app
from shared.auth import CLUSTER_MANAGER, PLATFORM_ADMIN, Tokens
from shared.db import Database
from shared.settings import CommonSettings
from tests.conftest import Store
from tests.events.conftest import ThreadServer, free_socket

SUBJECT = "anne@biowin.example"


def token_headers(cluster: str = "biowin", **headers: str) -> dict[str, str]:
    """A platform admin who also manages `cluster`, so the access log has an actor and a cluster."""
    token = Tokens.from_settings(CommonSettings()).issue(subject=SUBJECT, roles=[PLATFORM_ADMIN, CLUSTER_MANAGER],
                                                         cluster=cluster)
    return {"Authorization": f"Bearer {token}", **headers}


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """`app` in uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    server = ThreadServer(uvicorn.Config(app, log_level="warning", lifespan="off"))
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


@dataclass
class Services:
    registry: httpx.AsyncClient  # over HTTP, to the registry server
    events: httpx.AsyncClient  # in process
    events_app: FastAPI

    async def created(self, client: httpx.AsyncClient, path: str, body: dict[str, Any],
                      **headers: str) -> dict[str, Any]:
        response = await client.post(path, json=body, headers=token_headers(**headers))
        assert response.status_code == 201, response.text
        return response.json()

    async def brokerage(self, **headers: str) -> tuple[str, str]:
        """A cluster, and a published event it organises (the events service asks the registry)."""
        cluster = await self.created(self.registry, "/v1/clusters", {
            "name": "BioWin", "acronym": "BioWin", "country": "BE", "legal_form": "non_profit_association"})
        event = await self.created(self.events, "/v1/events", {
            "title": "RegMed Europe 2026", "kind": "brokerage", "organiser_cluster_ids": [cluster["id"]],
            "time_zone": "Europe/Brussels", "starts_at": "2026-03-10T08:00:00+01:00",
            "ends_at": "2026-03-11T18:00:00+01:00", "venue": "Liège Expo"}, **headers)
        published = await self.events.post(f"/v1/events/{event['id']}/publish", headers=token_headers())
        assert published.status_code == 200, published.text
        return cluster["id"], event["id"]

    async def organisation(self, legal_name: str) -> str:
        """Registered by the registry alone (four events for two: enough to make a consumer lag)."""
        organisation = await self.created(self.registry, "/v1/organisations",
                                          {"legal_name": legal_name, "kind": "company", "country": "BE"})
        return organisation["id"]


@asynccontextmanager
async def services(store: Store) -> AsyncIterator[Services]:
    """Apps are built inside, so a test can first choose how they trace."""
    db = Database(store.db.url, pool_size=2)
    try:
        with serving(create_registry_app(db=db)) as registry_url:
            async with httpx.AsyncClient(base_url=registry_url, timeout=5) as to_registry, \
                    httpx.AsyncClient(base_url=registry_url, timeout=5) as registry:
                app = create_events_app(EventsSettings(registry_backoff=0.01), db=store.db, registry=to_registry)
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                             base_url="http://events.test") as events:
                    yield Services(registry, events, app)
    finally:
        db.dispose()


@pytest.fixture
async def running(store: Store) -> AsyncIterator[Services]:
    async with services(store) as made:
        yield made
