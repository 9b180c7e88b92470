"""The registry's read cache (shared/read_cache.py): the same answers as the routes, never staler
than the store, one view per caller's scope, bounded.

The app runs with its lifespan (on PostgreSQL the listener starts there) and without the
federation workers, whose lease renewals would be writes of their own. Each test first checks
that the cache does answer (a hit counted), so that "a write shows" proves an invalidation.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from shared.eventlog import NO_STREAM, DomainEvent, EventLog
from shared.read_cache import Cached, ReadCache
from tests.conftest import Store, auth_headers
from tests.registry.conftest import BIOWIN, IBA, MEDICEN, ULIEGE, created

FRESH = {"Cache-Control": "no-cache"}
IDS = ("x-request-id", "x-correlation-id")  # new on every response


def outcomes() -> dict[str, float]:
    return {outcome: REGISTRY.get_sample_value("clusterhub_read_cache_requests_total", {"outcome": outcome}) or 0
            for outcome in ("hit", "miss", "bypass")}


class Counted:
    """Read-cache outcomes since it was made."""

    def __init__(self) -> None:
        self.start = outcomes()

    def __getitem__(self, outcome: str) -> float:
        return outcomes()[outcome] - self.start[outcome]


async def until(check, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.02)


async def cached(client: httpx.AsyncClient, path: str) -> None:
    """Read `path` until it is answered from memory. On PostgreSQL the notification of the app's own
    last write arrives a moment after the write answered, and empties the cache once more."""
    async def hit() -> bool:
        counted = Counted()
        await client.get(path)
        return counted["hit"] == 1

    await until(hit, 5)


@pytest.fixture
async def app(store: Store) -> AsyncIterator[Any]:
    app = create_app(RegistrySettings(federation_workers=False), db=store.db)
    async with app.router.lifespan_context(app):
        cache: ReadCache = app.state.read_cache

        async def knows_the_version() -> bool:
            return cache.token() is not None

        await until(knows_the_version)  # PostgreSQL: the listener is listening
        yield app


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test",
                                 headers=auth_headers()) as http:
        yield http


def without_ids(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    return response.status_code, [(k, v) for k, v in response.headers.multi_items() if k not in IDS], response.content


async def test_a_hit_answers_the_same_bytes_and_headers_as_the_route(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)
    await created(client, "/v1/organisations", ULIEGE)
    await cached(client, "/v1/organisations?limit=2")  # the writes' notifications have arrived
    for path in (f"/v1/organisations/{iba['id']}", "/v1/organisations?country=BE&kind=company",
                 "/v1/organisations?q=cyclotron", "/v1/organisations?limit=1"):
        counted = Counted()
        missed, hit = await client.get(path), await client.get(path)
        uncached = await client.get(path, headers=FRESH)
        assert (counted["miss"], counted["hit"], counted["bypass"]) == (1, 1, 1), path
        assert missed.status_code == 200, missed.text
        assert without_ids(missed) == without_ids(hit) == without_ids(uncached)
        assert hit.headers["x-request-id"] != missed.headers["x-request-id"]
    assert (await client.get(f"/v1/organisations/{iba['id']}")).headers["etag"] == '"1"'


async def test_hits_are_logged_and_counted_like_any_request(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)
    path = f"/v1/organisations/{iba['id']}"
    await cached(client, path)
    counted = Counted()
    with capture_logs() as captured:
        hit = await client.get(path, headers={"X-Request-ID": "req-hit-1"})
    assert counted["hit"] == 1
    assert hit.headers["x-request-id"] == hit.headers["x-correlation-id"] == "req-hit-1"
    [line] = [line for line in captured if line["event"] == "http.request"]
    assert (line["route"], line["status"], line["actor"]) == ("/v1/organisations/{organisation_id}", 200,
                                                              "platform_admin@test")
    scraped = (await client.get("/metrics")).text
    assert ('clusterhub_http_requests_total{method="GET",route="/v1/organisations/{organisation_id}",'
            'service="registry",status="200"}') in scraped


async def test_a_write_through_the_api_shows_in_the_next_read(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)
    one, listed = f"/v1/organisations/{iba['id']}", "/v1/organisations?country=BE"
    for path in (one, listed, one, listed):
        await client.get(path)
    counted = Counted()

    changed = await client.patch(one, json={"short_name": "IBA Group"}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200, changed.text
    uliege = await created(client, "/v1/organisations", ULIEGE)

    read = await client.get(one)
    assert (read.json()["short_name"], read.headers["etag"]) == ("IBA Group", '"2"')
    assert uliege["id"] in [item["id"] for item in (await client.get(listed)).json()["data"]]
    assert counted["hit"] == 0 and counted["miss"] == 2


async def test_a_write_of_this_process_shows_before_the_store_says_so(app: Any, client: httpx.AsyncClient,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Read-your-writes on one replica does not wait for the notification (nor data_version)."""
    iba = await created(client, "/v1/organisations", IBA)
    path = f"/v1/organisations/{iba['id']}"
    await cached(client, path)
    cache: ReadCache = app.state.read_cache
    monkeypatch.setattr(cache.version, "current", lambda: 7)  # the store's version stands still
    await client.get(path)
    counted = Counted()
    assert (await client.get(path)).json()["short_name"] == "IBA" and counted["hit"] == 1

    changed = await client.patch(path, json={"short_name": "IBA Group"}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200, changed.text
    assert (await client.get(path)).json()["short_name"] == "IBA Group"


WRITER = """
import sys
from sqlalchemy import create_engine, text
with create_engine(sys.argv[1]).begin() as conn:
    conn.execute(text(sys.argv[2]), dict(zip(("a", "b", "c"), sys.argv[3:])))
"""


def write_in_another_process(store: Store, statement: str, *values: str) -> None:
    """`statement` run by another process (a repair, another replica), with :a, :b… given."""
    subprocess.run([sys.executable, "-c", WRITER, store.admin_url, statement, *values], check=True,
                   env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=60)


def rename_in_another_process(store: Store, organisation_id: str, short_name: str) -> None:
    """A read model changed behind the app's back."""
    write_in_another_process(store, "UPDATE registry_organisations SET short_name = :b WHERE id = :a",
                             organisation_id, short_name)


async def test_a_write_by_another_process_invalidates(store: Store, client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)
    path = f"/v1/organisations/{iba['id']}"
    await cached(client, path)  # only an invalidation can show the change below
    assert (await client.get(path)).json()["short_name"] == "IBA"

    rename_in_another_process(store, iba["id"], "IBA by hand")

    async def shows() -> bool:
        return (await client.get(path)).json()["short_name"] == "IBA by hand"

    if store.backend == "sqlite":
        assert await shows()  # data_version: at once
    else:
        await until(shows, 5)  # NOTIFY: as soon as the listener hears it


class TalkScheduled(DomainEvent):
    """Another service's event: appended to the shared log, no registry read model written."""

    event_type: ClassVar[str] = "test.TalkScheduled"
    schema_version: ClassVar[int] = 1
    title: str


async def test_writes_outside_the_registry_keep_the_cache(store: Store, client: httpx.AsyncClient) -> None:
    """A lease renewed, another service's event appended: nothing a registry read returns (coarse,
    but not that coarse)."""
    iba = await created(client, "/v1/organisations", IBA)
    path = f"/v1/organisations/{iba['id']}"
    await cached(client, path)
    write_in_another_process(store, "INSERT INTO worker_leases (name, holder, acquired_at, expires_at) "
                                    "VALUES (:a, :b, 0, 1)", "read-cache-test", "another process")
    with store.db.writing() as conn:  # a connection of its own: SQLite's data_version moves
        EventLog(store.db.dialect).append(conn, "talk-1", "test.Talk", NO_STREAM, [TalkScheduled(title="PET-MRI")])
    await asyncio.sleep(0.2)  # PostgreSQL: time for a notification, were there one
    counted = Counted()
    await client.get(path)
    assert counted["hit"] == 1


async def test_each_scope_has_its_own_view(client: httpx.AsyncClient) -> None:
    biowin = await created(client, "/v1/clusters", BIOWIN)
    medicen = await created(client, "/v1/clusters", MEDICEN)
    biowin_manager = auth_headers("cluster_manager", cluster=biowin["id"])
    medicen_manager = auth_headers("cluster_manager", cluster=medicen["id"])
    # Registered by BioWin's manager, a member of nothing yet: BioWin's and the admins' to see only.
    iba = await created(client, "/v1/organisations", IBA, **biowin_manager)
    uliege = await created(client, "/v1/organisations", ULIEGE, **biowin_manager)
    iba_member = auth_headers("member", cluster=biowin["id"], organisation=iba["id"])
    one, listed = f"/v1/organisations/{iba['id']}", "/v1/organisations?country=BE"
    callers = {"admin": auth_headers(), "biowin": biowin_manager, "medicen": medicen_manager, "member": iba_member,
               "anonymous": {"Authorization": ""}}
    expected_one = {"admin": 200, "biowin": 200, "medicen": 404, "member": 200, "anonymous": 404}
    expected_list = {"admin": {iba["id"], uliege["id"]}, "biowin": {iba["id"], uliege["id"]}, "medicen": set(),
                     "member": {iba["id"]}, "anonymous": set()}

    counted = Counted()
    for _ in range(3):  # whoever fills first, each caller keeps getting their own view
        for name, headers in callers.items():
            headers = {**headers} if headers["Authorization"] else {}
            async with httpx.AsyncClient(transport=client._transport, base_url="http://registry.test",
                                         headers=headers) as http:
                assert (await http.get(one)).status_code == expected_one[name], name
                page = (await http.get(listed)).json()["data"]
                assert {item["id"] for item in page} == expected_list[name], name
                fresh = await http.get(listed, headers=FRESH)
                assert {item["id"] for item in fresh.json()["data"]} == expected_list[name], name
    assert counted["hit"] > 0


async def test_no_cache_and_unusual_requests_go_to_the_route(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)
    path = f"/v1/organisations/{iba['id']}"
    await cached(client, path)
    counted = Counted()
    assert (await client.get(path, headers=FRESH)).status_code == 200
    assert (await client.get(path, headers={"Cache-Control": "max-age=0"})).status_code == 200
    assert (await client.get(path, headers={"Authorization": "Bearer forged"})).status_code == 401
    assert (await client.get(path, headers={"Authorization": "Bearer "})).status_code == 401
    # A GET with a body is the route's to judge (its NUL check), never answered from memory.
    nul = await client.request("GET", path, content=b'{"a": "\\u0000"}', headers={"content-type": "application/json"})
    assert nul.status_code == 422
    assert counted["hit"] == 0 and counted["bypass"] == 3


async def test_while_the_listener_is_down_every_read_goes_to_the_store(postgres_store: Store) -> None:
    app = create_app(RegistrySettings(federation_workers=False), db=postgres_store.db)
    cache: ReadCache = app.state.read_cache
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://registry.test", headers=auth_headers()) as client:
        async def listening() -> bool:
            return cache.token() is not None

        async def not_listening() -> bool:
            return cache.token() is None

        await until(listening)
        iba = await created(client, "/v1/organisations", IBA)
        path = f"/v1/organisations/{iba['id']}"
        await cached(client, path)

        with psycopg.connect(postgres_store.admin_url.replace("+psycopg", ""), autocommit=True) as admin:
            killed = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE application_name = 'clusterhub-read-cache'").fetchall()
        assert killed == [(True,)]
        await until(not_listening, 5)
        # Were the listener down and the cache still used, this write would go unseen.
        rename_in_another_process(postgres_store, iba["id"], "IBA unheard")
        counted = Counted()
        read = await client.get(path)
        assert read.json()["short_name"] == "IBA unheard" or await listening()  # it may be back already
        if not await listening():
            assert counted["bypass"] == 1

        await until(listening, 10)  # back, from a new version
        assert (await client.get(path)).json()["short_name"] == "IBA unheard"
        await cached(client, path)


class FixedVersion:
    def __init__(self) -> None:
        self.version = 1

    def current(self) -> int:
        return self.version


def test_the_cache_is_bounded_and_keeps_the_most_recently_used() -> None:
    version = FixedVersion()
    cache = ReadCache(version, max_entries=3, max_bytes=400)  # type: ignore[arg-type]
    token = cache.token()
    assert token is not None
    for key in "abc":
        cache.put(key, Cached(200, [], b"x" * 50), token)
    assert cache.get("a", token) is not None  # a is now the most recently used
    cache.put("d", Cached(200, [], b"x" * 50), token)
    assert set(cache.entries) == {"a", "c", "d"}
    cache.put("e", Cached(200, [], b"x" * 90), token)
    cache.put("f", Cached(200, [], b"x" * 90), token)
    assert len(cache.entries) <= 3 and cache.bytes <= 400
    assert cache.bytes == sum(len(entry.body) for entry in cache.entries.values())
    cache.put("huge", Cached(200, [], b"x" * 101), token)  # over a quarter of the bytes: not kept
    assert "huge" not in cache.entries

    version.version = 2  # a commit: everything held is from before it
    assert cache.get("f", cache.token()) is None and not cache.entries and cache.bytes == 0
    stale = token
    cache.put("g", Cached(200, [], b"x"), stale)  # read before the commit: not kept
    assert not cache.entries


def test_an_in_memory_sqlite_store_is_never_cached() -> None:
    from shared.read_cache import SqliteVersion

    assert SqliteVersion(":memory:").current() is None and SqliteVersion("").current() is None
