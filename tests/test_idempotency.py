"""Idempotency-Key on writes, through the real registry app on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI
from sqlalchemy import Connection, MetaData, select

from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from shared.errors import ServiceUnavailable
from shared.idempotency import LEASE, IdempotencyKeys, Reservation, holding, idempotency_keys
from shared.tables import subscription_checkpoints
from shared.limits import client_of
from shared.auth import Tokens
from tests.conftest import Store, auth_headers
from tests.registry.conftest import GUERBET, IBA

ORGANISATIONS = "/v1/organisations"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def app(store: Store) -> FastAPI:
    app = create_app(db=store.db)
    app.state.idempotency.clock = Clock()
    return app


@pytest.fixture
def admin() -> dict[str, str]:
    return auth_headers(subject="anne@clusterhub.test")


def client_for(app: FastAPI, credentials: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test",
                             headers=credentials)


def client_id(credentials: dict[str, str]) -> str:
    """The key's client, as the middleware derives it from the credential."""
    return client_of({"type": "http", "headers": [(b"authorization", credentials["Authorization"].encode())]})[0]


@pytest.fixture
async def client(app: FastAPI, admin: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, admin) as http:
        yield http


async def event_count(store: Store) -> int:
    return await store.db.read(lambda conn: conn.exec_driver_sql("SELECT count(*) FROM events").scalar())


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def test_a_retry_gets_the_first_response_and_writes_nothing(client: httpx.AsyncClient, store: Store) -> None:
    first = await client.post(ORGANISATIONS, json=IBA, headers=keyed("k-1"))
    retry = await client.post(ORGANISATIONS, json=IBA, headers=keyed("k-1"))

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert (retry.headers["location"], retry.headers["etag"]) == (first.headers["location"], first.headers["etag"])
    assert retry.headers["idempotency-replayed"] == "true" and "idempotency-replayed" not in first.headers
    assert retry.headers["x-request-id"] != first.headers["x-request-id"]
    assert await event_count(store) == 1
    other = await client.post(ORGANISATIONS, json=IBA, headers=keyed("k-2"))
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


async def test_the_same_key_with_another_body_is_a_422(client: httpx.AsyncClient, store: Store) -> None:
    await client.post(ORGANISATIONS, json=IBA, headers=keyed("k-1"))
    response = await client.post(ORGANISATIONS, json=GUERBET, headers=keyed("k-1"))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["header.idempotency-key"]
    assert await event_count(store) == 1


async def test_a_malformed_key_is_a_422(client: httpx.AsyncClient, store: Store) -> None:
    for key in ("x" * 256, "two words"):
        response = await client.post(ORGANISATIONS, json=IBA, headers=keyed(key))
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "header.idempotency-key"
    assert await event_count(store) == 0


async def test_concurrent_requests_with_one_key_write_once(client: httpx.AsyncClient, store: Store) -> None:
    responses = await asyncio.gather(*(client.post(ORGANISATIONS, json=IBA, headers=keyed("k-race"))
                                       for _ in range(6)))

    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409} and 201 in statuses, statuses
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    for busy in (r for r in responses if r.status_code == 409):
        assert busy.headers["retry-after"] == "1"
    assert await event_count(store) == 1


async def test_a_key_in_use_is_a_409_until_its_lease_runs_out(app: FastAPI, client: httpx.AsyncClient,
                                                              admin: dict[str, str], store: Store) -> None:
    keys: IdempotencyKeys = app.state.idempotency
    body = httpx.Request("POST", "http://t", json=IBA).content
    # A first request that took the key and then stopped (a crash) before writing anything.
    stalled = await keys.reserve(client=client_id(admin), method="POST", path=ORGANISATIONS, key="k-1",
                                 fingerprint=_fingerprint(body))
    assert isinstance(stalled, Reservation)

    busy = await client.post(ORGANISATIONS, content=body, headers={**keyed("k-1"), "content-type": "application/json"})
    assert busy.status_code == 409 and busy.headers["retry-after"] == "1"
    assert busy.json()["type"].endswith("/idempotency-key-in-use")

    keys.clock.now += LEASE + timedelta(seconds=1)  # type: ignore[attr-defined]
    taken_over = await client.post(ORGANISATIONS, content=body,
                                   headers={**keyed("k-1"), "content-type": "application/json"})
    assert taken_over.status_code == 201
    # Should the stalled request wake up and write now, its transaction would not commit.
    with pytest.raises(Exception, match="took over"), holding(stalled):
        await store.db.write(_write_something)
    assert await event_count(store) == 1
    assert await store.db.read(lambda conn: conn.execute(select(subscription_checkpoints)).all()) == []


async def test_the_key_is_recorded_in_the_writing_transaction(app: FastAPI, client: httpx.AsyncClient,
                                                              admin: dict[str, str], store: Store) -> None:
    keys: IdempotencyKeys = app.state.idempotency

    async def crashed_after(write: bool, key: str) -> None:
        reservation = await keys.reserve(client=client_id(admin), method="POST", path=ORGANISATIONS, key=key,
                                         fingerprint=_fingerprint(b""))
        assert isinstance(reservation, Reservation)
        with holding(reservation):
            await store.db.read(lambda conn: conn.execute(select(idempotency_keys)).all())
            if write:
                await store.db.write(_write_something)
            else:
                with pytest.raises(RuntimeError):
                    await store.db.write(_write_then_fail)
        # ...and the process dies here, before the response is stored.

    await crashed_after(True, "wrote")
    await crashed_after(False, "rolled-back")

    assert await _statuses(store) == {"wrote": "committed", "rolled-back": "in_progress"}
    keys.clock.now += LEASE + timedelta(seconds=1)  # type: ignore[attr-defined]
    lost = await client.post(ORGANISATIONS, headers=keyed("wrote"))
    assert lost.status_code == 409 and "response was lost" in lost.json()["detail"]


async def test_keys_are_kept_24_hours(app: FastAPI, client: httpx.AsyncClient, store: Store) -> None:
    clock: Clock = app.state.idempotency.clock
    first = await client.post(ORGANISATIONS, json=IBA, headers=keyed("k-1"))

    clock.now += timedelta(hours=23, minutes=59)
    replayed = await client.post(ORGANISATIONS, json=IBA, headers=keyed("k-1"))
    assert replayed.headers.get("idempotency-replayed") == "true"
    assert replayed.json()["id"] == first.json()["id"]

    clock.now += timedelta(minutes=10)  # expired keys of all clients go every few minutes
    fresh = await client.post(ORGANISATIONS, json={**IBA, "vat": None}, headers=keyed("k-2"))
    assert fresh.status_code == 201
    assert set(await _statuses(store)) == {"k-2"}  # the expired key was purged on the way
    again = await client.post(ORGANISATIONS, json=IBA, headers=keyed("k-1"))
    assert "idempotency-replayed" not in again.headers and again.json()["id"] != first.json()["id"]


async def test_clients_have_their_own_keys(app: FastAPI, admin: dict[str, str], store: Store) -> None:
    other = auth_headers(subject="bert@clusterhub.test")
    async with client_for(app, admin) as one, client_for(app, other) as two:
        first = await one.post(ORGANISATIONS, json=IBA, headers=keyed("k-1"))
        second = await two.post(ORGANISATIONS, json={**IBA, "legal_name": "IBA Dosimetry"}, headers=keyed("k-1"))

    assert first.status_code == second.status_code == 201
    assert "idempotency-replayed" not in second.headers
    assert await event_count(store) == 2


async def test_4xx_answers_are_kept_and_5xx_are_not(app: FastAPI, client: httpx.AsyncClient, store: Store) -> None:
    calls = {"down": 0, "half": 0}

    @app.post("/test/down")
    async def down() -> None:
        calls["down"] += 1
        raise ServiceUnavailable("try later")

    @app.post("/test/half")
    async def half() -> None:
        calls["half"] += 1
        await store.db.write(_write_something)
        raise ServiceUnavailable("written, then failed")

    invalid = await client.post(ORGANISATIONS, json={"legal_name": ""}, headers=keyed("k-bad"))
    replayed = await client.post(ORGANISATIONS, json={"legal_name": ""}, headers=keyed("k-bad"))
    assert invalid.status_code == replayed.status_code == 422
    assert replayed.headers["idempotency-replayed"] == "true" and replayed.json() == invalid.json()

    for _ in range(2):
        assert (await client.post("/test/down", headers=keyed("k-down"))).status_code == 503
    assert calls["down"] == 2

    assert (await client.post("/test/half", headers=keyed("k-half"))).status_code == 503
    assert (await client.post("/test/half", headers=keyed("k-half"))).status_code == 409
    assert calls["half"] == 1


async def test_updates_take_keys_too(client: httpx.AsyncClient, store: Store) -> None:
    iba = (await client.post(ORGANISATIONS, json=IBA)).json()
    change = {"headers": {**keyed("k-rename"), "If-Match": '"1"'}, "json": {"short_name": "IBA SA"}}

    first = await client.patch(f"{ORGANISATIONS}/{iba['id']}", **change)
    retry = await client.patch(f"{ORGANISATIONS}/{iba['id']}", **change)

    assert first.status_code == retry.status_code == 200
    assert first.headers["etag"] == retry.headers["etag"] == '"2"'
    assert await event_count(store) == 2


async def test_oversized_keyed_bodies_are_413_and_free_the_key(store: Store, admin: dict[str, str]) -> None:
    app = create_app(RegistrySettings(max_body_bytes=4096), db=store.db)
    big = b'{"legal_name": "' + b"x" * 5000 + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 1000):
            yield big[start:start + 1000]

    json_key = {**keyed("k-1"), "content-type": "application/json"}
    async with client_for(app, admin) as http:
        declared = await http.post(ORGANISATIONS, content=big, headers=json_key)
        streamed = await http.post(ORGANISATIONS, content=chunks(), headers=json_key)
        small = await http.post(ORGANISATIONS, json=IBA, headers=keyed("k-1"))

    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "x-request-id" in response.headers
    assert small.status_code == 201


def test_the_table_matches_its_migration(store: Store) -> None:
    registry = MetaData()
    idempotency_keys.to_metadata(registry)
    with store.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, registry)
                       if not (d[0] == "remove_table" and d[1].name != "idempotency_keys")
                       and not (d[0] == "remove_index" and d[1].table.name != "idempotency_keys")]
    assert differences == []


def _fingerprint(body: bytes) -> str:
    return hashlib.sha256(b"?" + body).hexdigest()


def _write_something(conn: Connection) -> None:
    conn.execute(subscription_checkpoints.insert().values(subscription=uuid.uuid4().hex, position=1,
                                                          updated_at="now"))


def _write_then_fail(conn: Connection) -> None:
    _write_something(conn)
    raise RuntimeError("the write fails")


async def _statuses(store: Store) -> dict[str, str]:
    rows = await store.db.read(lambda conn: conn.execute(
        select(idempotency_keys.c.idempotency_key, idempotency_keys.c.status)).all())
    return dict(rows)


async def test_a_replay_needs_credentials_that_still_verify(app: FastAPI, client: httpx.AsyncClient,
                                                            store: Store) -> None:
    first = await client.post(ORGANISATIONS, json=IBA, headers=keyed("k-1"))
    assert first.status_code == 201
    # The signing key that issued the caller's token is retired: the stored answer is not handed out.
    app.state.tokens = Tokens({"test-2": "a-newer-signing-key-0123456789abcdef0123"}, issuer=app.state.tokens.issuer,
                              ttl=app.state.tokens.ttl)
    retry = await client.post(ORGANISATIONS, json=IBA, headers=keyed("k-1"))
    assert retry.status_code == 401 and "idempotency-replayed" not in retry.headers
    assert retry.headers["www-authenticate"].startswith("Bearer")
    assert await event_count(store) == 1
