"""Rate limits per client (429 with Retry-After) and CORS, through the real registry app."""
from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from shared.limits import TokenBuckets
from tests.conftest import Store, auth_headers

CLUSTERS = "/v1/clusters"
FRONT_END = "https://app.biowin.example"


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limited_app(store: Store, per_minute: int, burst: int | None = None) -> FastAPI:
    app = create_app(RegistrySettings(rate_limit_per_minute=per_minute, rate_limit_burst=burst), db=store.db)
    if per_minute:
        app.state.rate_limits.clock = Ticks()
    return app


def client_for(app: FastAPI, address: str = "127.0.0.1", **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 4711)),
                             base_url="http://registry.test", headers=headers)


@pytest.fixture
def admin() -> dict[str, str]:
    return auth_headers(subject="anne@clusterhub.test")


async def test_a_client_over_its_limit_gets_429_with_retry_after(store: Store, admin: dict[str, str]) -> None:
    app = limited_app(store, per_minute=2)
    async with client_for(app, **admin) as http:
        allowed = [(await http.get(CLUSTERS)).status_code for _ in range(2)]
        refused = await http.get(CLUSTERS)
        health = [(await http.get(path)).status_code for path in ("/healthz", "/readyz")]
        app.state.rate_limits.clock.now += 30  # 2 a minute: one token every 30 s
        again = await http.get(CLUSTERS)

    assert allowed == [200, 200]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "30" and refused.json()["retry_after"] == 30
    assert "x-request-id" in refused.headers
    assert health == [200, 200]
    assert again.status_code == 200


async def test_each_client_has_its_own_bucket(store: Store, admin: dict[str, str]) -> None:
    app = limited_app(store, per_minute=60, burst=1)
    other = auth_headers(subject="bert@clusterhub.test")
    async with client_for(app, **admin) as anne, client_for(app, **other) as bert, \
            client_for(app, "10.0.0.1") as visitor, client_for(app, "10.0.0.2") as neighbour:
        first = [(await c.get(CLUSTERS)).status_code for c in (anne, bert, visitor, neighbour)]
        second = [(await c.get(CLUSTERS)).status_code for c in (anne, bert, visitor, neighbour)]

    assert first == [200, 200, 200, 200]
    assert second == [429, 429, 429, 429]


async def test_made_up_credentials_are_limited_by_address(store: Store) -> None:
    app = limited_app(store, per_minute=2)
    statuses = []
    async with client_for(app) as http:
        for attempt in range(4):
            response = await http.get(CLUSTERS, headers={"Authorization": f"Bearer forged-{attempt}"})
            statuses.append(response.status_code)
        async with client_for(app, "10.0.0.9") as elsewhere:
            unaffected = await elsewhere.get(CLUSTERS, headers={"Authorization": "Bearer forged-x"})

    assert statuses == [401, 401, 429, 429]
    assert unaffected.status_code == 401


async def test_zero_switches_rate_limits_off(store: Store, admin: dict[str, str]) -> None:
    app = limited_app(store, per_minute=0)
    async with client_for(app, **admin) as http:
        statuses = {(await http.get(CLUSTERS)).status_code for _ in range(30)}

    assert statuses == {200}
    assert not hasattr(app.state, "rate_limits")


def test_the_default_limit_leaves_room_for_the_test_suite() -> None:
    settings = RegistrySettings()
    buckets = TokenBuckets(settings.rate_limit_per_minute, settings.rate_limit_burst, clock=lambda: 0.0)

    assert settings.rate_limit_per_minute >= 600
    assert [buckets.take("one") for _ in range(600)] == [0.0] * 600


@pytest.fixture
async def cors_client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    settings = RegistrySettings(cors_origins=f"{FRONT_END}, https://app.medicen.example")
    async with client_for(create_app(settings, db=store.db)) as http:
        yield http


async def test_cors_preflight_allows_the_api_headers(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.options(CLUSTERS, headers={
        "Origin": FRONT_END, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, if-match, idempotency-key, x-request-id"})

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == FRONT_END
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "if-match", "idempotency-key", "x-correlation-id"):
        assert header in allowed


async def test_cors_exposes_the_response_headers_to_allowed_origins_only(cors_client: httpx.AsyncClient,
                                                                         admin: dict[str, str]) -> None:
    allowed = await cors_client.get(CLUSTERS, headers={"Origin": FRONT_END, **admin})
    refused = await cors_client.options(CLUSTERS, headers={"Origin": "https://evil.example",
                                                           "Access-Control-Request-Method": "POST"})

    exposed = allowed.headers["access-control-expose-headers"].lower()
    assert {"etag", "location", "retry-after", "x-request-id"} <= {h.strip() for h in exposed.split(",")}
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers


async def test_no_cors_unless_configured(store: Store) -> None:
    async with client_for(create_app(db=store.db)) as http:
        response = await http.options(CLUSTERS, headers={"Origin": FRONT_END, "Access-Control-Request-Method": "GET"})

    assert "access-control-allow-origin" not in response.headers
