"""The receiving side: a peer's signed deliveries are recorded once, in the sender's order even when
they arrive out of order, and only the cluster that configured the peer sees what they share."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.registry.app import create_app
from services.registry.federation import signing
from services.registry.federation.feed import sequence
from services.registry.settings import RegistrySettings
from tests.conftest import Store, auth_headers
from tests.registry.conftest import MEDICEN

SOURCE = "https://hub.biowin.test"
SECRET = "whsec_inbox-test-0123456789abcdefghij"
EVENT_ID = "7d1c2a4e-0000-4000-8000-000000000001"


def item(position: int, kind: str, **data: Any) -> bytes:
    return json.dumps({"specversion": "1.0", "id": f"{position}-0", "source": SOURCE,
                       "type": f"eu.clusterhub.{kind}", "subject": f"events/{EVENT_ID}",
                       "time": "2026-11-23T10:00:00Z", "datacontenttype": "application/json",
                       "sequence": sequence(position, 0), "data": {"event_id": EVENT_ID, **data}}).encode()


@pytest.fixture
async def medicen(store: Store) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    app = create_app(RegistrySettings(rate_limit_per_minute=0), db=store.db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://medicen.test",
                                 headers=auth_headers()) as http:
        cluster = (await http.post("/v1/clusters", json=MEDICEN)).json()["id"]
        other = (await http.post("/v1/clusters", json={**MEDICEN, "name": "Other", "acronym": "Other"})).json()["id"]
        response = await http.post("/v1/federation/peers", json={
            "local_cluster_id": cluster, "remote_cluster_id": "biowin", "source": SOURCE, "secret": SECRET},
            headers=auth_headers("cluster_manager", cluster=cluster))
        assert response.status_code == 201 and "secret" not in response.text, response.text
        yield http, {"cluster": cluster, "other": other}


async def deliver(http: httpx.AsyncClient, body: bytes, secret: str = SECRET) -> httpx.Response:
    return await http.post("/v1/federation/inbox", content=body, headers={
        "Content-Type": "application/cloudevents+json", signing.HEADER: signing.sign(secret, body)})


async def joint_events(http: httpx.AsyncClient, cluster: str) -> list[dict[str, Any]]:
    response = await http.get("/v1/federation/events", headers=auth_headers("member", cluster=cluster,
                                                                               organisation="org-1"))
    assert response.status_code == 200, response.text
    return response.json()


async def test_deliveries_out_of_order_keep_the_newest(medicen: tuple[httpx.AsyncClient, dict[str, str]]) -> None:
    http, ids = medicen
    updated = item(12, "events.EventUpdated", title="Joint brokerage", venue="Namur", status="published")
    shared = item(10, "events.EventShared", title="Joint brokerage", venue="Wavre", status="published")
    assert (await deliver(http, updated)).json() == {"status": "recorded"}
    assert (await deliver(http, shared)).json() == {"status": "recorded"}  # older, recorded but not applied
    assert [e["details"]["venue"] for e in await joint_events(http, ids["cluster"])] == ["Namur"]
    assert await joint_events(http, ids["other"]) == []  # another cluster of this instance sees nothing

    # A repeat is acknowledged once; history holds each received item once.
    assert (await deliver(http, updated)).json() == {"status": "duplicate"}
    audit = await http.get("/v1/audit", params={"event_type": "federation.FederatedItemReceived"})
    assert audit.status_code == 200, audit.text
    assert len(audit.json()["data"]) == 2

    # Withdrawn, then a stale update cannot bring it back.
    assert (await deliver(http, item(13, "events.EventWithdrawn"))).status_code == 200
    assert (await deliver(http, item(11, "events.EventUpdated", venue="Liège"))).status_code == 200
    assert await joint_events(http, ids["cluster"]) == []


async def test_unsigned_foreign_and_malformed_deliveries_are_refused(
        medicen: tuple[httpx.AsyncClient, dict[str, str]]) -> None:
    http, ids = medicen
    body = item(10, "events.EventShared", title="Joint brokerage")
    assert (await http.post("/v1/federation/inbox", content=body)).status_code == 401
    assert (await deliver(http, body, secret="whsec_someone-else-0123456789abcdef")).status_code == 401
    foreign = body.replace(SOURCE.encode(), b"https://evil.test")
    assert (await deliver(http, foreign)).status_code == 401  # no peer has that source
    assert (await deliver(http, b"not json")).status_code == 422
    not_an_event = json.dumps({"source": SOURCE, "hello": "world"}).encode()
    assert (await deliver(http, not_an_event)).status_code == 422
    assert await joint_events(http, ids["cluster"]) == []
