"""Events API tests: the events app over a real store, asking a real registry service over HTTP.

The registry runs in uvicorn on 127.0.0.1 in a thread (httpx's `serve_in_thread` pattern) on
the same store as the events app, as in production where both share one database and log.
"""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from services.events.app import create_app
from services.events.settings import EventsSettings
from services.registry.app import create_app as create_registry_app
from shared.db import Database
from tests.conftest import Store, auth_headers

BIOWIN = {"name": "BioWin", "acronym": "BioWin", "country": "BE", "legal_form": "non_profit_association"}
MEDICEN = {"name": "Medicen Paris Region", "acronym": "Medicen", "country": "FR",
           "legal_form": "non_profit_association"}


class ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # only the main thread may; the test runner owns them
        pass


@dataclass
class Registry:
    url: str
    http: httpx.AsyncClient  # for tests to set up organisations, contacts, memberships

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(path, json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    async def cluster(self, body: dict[str, Any]) -> str:
        return (await self.post("/v1/clusters", body))["id"]

    async def organisation(self, legal_name: str, *, member_of: str | None = None, **fields: Any) -> str:
        organisation = await self.post("/v1/organisations", {
            "legal_name": legal_name, "kind": "company", "country": "BE", **fields})
        if member_of:
            membership = await self.post("/v1/memberships", {
                "organisation_id": organisation["id"], "cluster_id": member_of, "fee_category": "sme",
                "yearly_fee": "500"})
            await self.post(f"/v1/memberships/{membership['id']}/activate", {})
        return organisation["id"]

    async def contact(self, organisation_id: str, name: str, email: str | None = None) -> str:
        body = {"name": name, **({"email": email} if email else {})}
        return (await self.post(f"/v1/organisations/{organisation_id}/contacts", body))["id"]


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
async def registry(store: Store) -> AsyncIterator[Registry]:
    """The registry service in uvicorn, on its own connection pool over the test's store."""
    db = Database(store.db.url, pool_size=2)
    server = ThreadServer(uvicorn.Config(create_registry_app(db=db), log_level="warning", lifespan="off"))
    sock = free_socket()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the registry server did not start"
            time.sleep(0.005)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        async with httpx.AsyncClient(base_url=url, headers=auth_headers()) as http:
            yield Registry(url, http)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        db.dispose()


@pytest.fixture
async def client(store: Store, registry: Registry) -> AsyncIterator[httpx.AsyncClient]:
    """The events app (in process) calling the registry server over HTTP."""
    async with httpx.AsyncClient(base_url=registry.url, timeout=5) as to_registry:
        app = create_app(EventsSettings(registry_backoff=0.01), db=store.db, registry=to_registry)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://events.test",
                                     headers=auth_headers()) as http:
            yield http


async def created(client: httpx.AsyncClient, path: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def ok(response_coroutine: Any) -> dict[str, Any]:
    response = await response_coroutine
    assert response.status_code == 200, response.text
    return response.json()


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


def fields_named(response: httpx.Response) -> list[str]:
    return [error["field"] for error in problem(response, 422)["errors"]]


def event_body(clusters: list[str], **fields: Any) -> dict[str, Any]:
    return {"title": "RegMed Europe 2026", "kind": "brokerage", "organiser_cluster_ids": clusters,
            "time_zone": "Europe/Brussels", "starts_at": "2026-03-10T08:00:00+01:00",
            "ends_at": "2026-03-11T18:00:00+01:00", "venue": "Liège Expo", **fields}


def count_events(store: Store, stream_type: str | None = None) -> int:
    sql = "SELECT count(*) FROM events" + (f" WHERE stream_type = '{stream_type}'" if stream_type else "")
    with store.db.reading() as conn:
        return conn.exec_driver_sql(sql).scalar_one()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on (bound, never listening: connections are refused)."""
    sock = free_socket()
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@dataclass
class Brokerage:
    """A published brokerage event with B2B participants, by first name."""

    event_id: str
    people: dict[str, str]  # first name -> participant id

    @property
    def path(self) -> str:
        return f"/v1/events/{self.event_id}"


async def brokerage(client: httpx.AsyncClient, registry: Registry, people: dict[str, str], *,
                    b2b: dict[str, Any], session: dict[str, Any]) -> Brokerage:
    """`people`: first name -> organisation name; each becomes a registered B2B participant."""
    biowin = await registry.cluster(BIOWIN)
    event = await created(client, "/v1/events", event_body([biowin], b2b=b2b))
    path = f"/v1/events/{event['id']}"
    await created(client, f"{path}/b2b-sessions", session)
    await ok(client.post(f"{path}/publish"))
    ids = {}
    for first_name, organisation in people.items():
        organisation_id = await registry.organisation(organisation)
        contact_id = await registry.contact(organisation_id, f"{first_name} Tester",
                                            f"{first_name.lower()}@example.org")
        registration = await created(client, f"{path}/registrations",
                                     {"organisation_id": organisation_id, "contact_id": contact_id})
        ids[first_name] = registration["id"]
    return Brokerage(event["id"], ids)
