"""The shared HTTP plumbing as the registry uses it: ids, metadata, body limit, health, docs."""
from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from shared.db import Database
from tests.conftest import Store, auth_headers
from tests.registry.conftest import IBA, created


async def test_request_and_correlation_ids_are_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "req-1", "X-Correlation-ID": "flow-9"})
    assert (given.headers["x-request-id"], given.headers["x-correlation-id"]) == ("req-1", "flow-9")

    made = await client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32
    assert made.headers["x-correlation-id"] == made.headers["x-request-id"]

    unsafe = await client.get("/healthz", headers={"X-Request-ID": "a b\tc"})
    assert unsafe.headers["x-request-id"] != "a b\tc"


async def test_request_metadata_is_stored_with_the_events(client: httpx.AsyncClient) -> None:
    anne = auth_headers("cluster_manager", cluster="biowin", subject="anne@biowin.org")
    iba = await created(client, "/v1/organisations", IBA, **{
        **anne, "X-Actor": "mallory@example.org", "X-Cluster": "medicen", "X-Request-ID": "req-7",
        "X-Correlation-ID": "import-3", "X-Causation-ID": "evt-41"})

    event = (await client.get(f"/v1/organisations/{iba['id']}/history", headers=anne)).json()["data"][0]

    # Who acted and for which cluster come from the token; headers claiming otherwise are ignored.
    assert event["metadata"] == {"actor": "anne@biowin.org", "tenant": "biowin", "service": "registry",
                                 "request_id": "req-7", "correlation_id": "import-3", "causation_id": "evt-41"}
    by_admin = await created(client, "/v1/organisations", {**IBA, "legal_name": "Other"})
    event = (await client.get(f"/v1/organisations/{by_admin['id']}/history")).json()["data"][0]
    assert event["metadata"]["actor"] == "platform_admin@test" and "tenant" not in event["metadata"]


async def test_bodies_over_the_limit_are_413_problems(store: Store) -> None:
    app = create_app(RegistrySettings(max_body_bytes=4096), db=store.db)
    big = b'{"legal_name": "' + b"x" * 5000 + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 1000):
            yield big[start:start + 1000]

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                 headers=auth_headers()) as http:
        declared = await http.post("/v1/organisations", content=big, headers={"content-type": "application/json"})
        streamed = await http.post("/v1/organisations", content=chunks(), headers={"content-type": "application/json"})
        small = await http.post("/v1/organisations", json=IBA)

    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "x-request-id" in response.headers
    assert small.status_code == 201


async def test_malformed_json_is_a_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/organisations", content=b"{nope", headers={"content-type": "application/json"})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_health_readiness_and_docs(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    assert spec["info"]["title"] == "clusterhub registry"
    assert "/v1/organisations/{organisation_id}/history" in spec["paths"]


async def test_not_ready_while_migrations_are_pending(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(db=db)), base_url="http://t") as http:
            response = await http.get("/readyz")
    finally:
        db.dispose()

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "0002" in response.json()["pending"]
