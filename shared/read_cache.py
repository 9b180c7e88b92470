"""Hot reads answered from this process's memory, never staler than the store (one obvious place).

Why. A GET of one organisation costs ~0.8 ms of CPU here, a filtered list or a search ~3 ms:
routing, dependency resolution, a worker-thread hop, SQL, JSON. The same request answered again
while nothing was written costs a dictionary lookup. So the routes named in `install()` keep
their 200 responses (the exact bytes and headers the route produced) and replay them while the
store has not changed, on a fast path that skips FastAPI's routing and dependencies.

What a hit still does. This sits innermost, inside every middleware `service_app` installs, so a
hit gets the request and correlation ids, rate limits, CORS, the access log line and the request
metrics like any request (shared/http.py, shared/observability.py). The bearer token is verified
by shared/auth.py's own `authenticate` (its verify cache makes that a lookup); a caller whose
token fails, a request with a body, or with `Cache-Control: no-cache` goes to the route as usual.

What a response depends on, the key names. The raw path and query string (bytes: a hit only
ever answers a request byte-for-byte equal to one the route answered, validation included) and
the route's *scope*: a function of the caller giving everything the route's policy and
visibility rules look at (the registry's: roles, cluster, organisation). A member never gets a
manager's entry, nor a manager another cluster's. Only 200s are kept, so a refusal is never
replayed, and only when the request really reached the named route (FastAPI's routing decides).

Freshness, exactly. The cache holds responses for one version of the registry's data,
`ReadCache.token()`: a commit anywhere that changed a registry read model or a person key, the
tables the cached responses are read from (migration 0012 marks those), moves it and empties the
cache (coarse: any registry write invalidates every entry, but nothing stale is ever served within
one machine's view; the other services' writes leave it be).
- SQLite: `PRAGMA data_version` on a connection of our own changes whenever any other connection,
  in this process or another, has committed (https://sqlite.org/pragma.html#pragma_data_version);
  read on every hit (a few µs, no I/O: the WAL index is shared memory), and when it moved, the
  count of registry writes kept by 0012's triggers is read (see SqliteVersion).
- PostgreSQL: a round trip per hit would cost what the hit saves. 0012 has those writes NOTIFY
  `CHANNEL` at commit; a dedicated connection LISTENs and moves a counter. While it is not
  listening (starting, the server restarting) the cache is bypassed. A notification reaches
  other processes a moment after the commit (typically well under a millisecond on one host; a
  network round trip across hosts): a read in another replica within that window can still get
  the response from before. Within this process there is no window: a write request moves the
  token itself before its response is sent (read-your-writes).
A response is kept only if the token read before the route ran is still the token after it:
then nothing committed in between, and the route's snapshot is that version. Right after a
write every client misses at once: requests for a key already being answered at the same token
wait for that answer (single flight) instead of each running the route (without it, search
had a p99 of 160 ms at 32 clients).

Memory: at most `max_entries` responses and `max_bytes` of bodies, least recently used out first.
"""
from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics
from shared.auth import Principal, authenticate
from shared.db import Database
from shared.errors import DomainError

__all__ = ["CHANNEL", "ReadCache", "install"]

log = structlog.get_logger()

CHANNEL = "clusterhub_writes"  # migrations/versions/0012_write_notifications.py
APPLICATION_NAME = "clusterhub-read-cache"  # the listener's session, as pg_stat_activity names it
MAX_ENTRIES = 2048
MAX_BYTES = 32 * 1024 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LISTEN_RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)  # then every 5 s
LISTEN_HEALTH_SECONDS = 5.0  # a silent listener is asked "SELECT 1" this often: a dead socket shows
Scoper = Callable[[Principal], Hashable]


# --------------------------------------------------------------------------------------------
# The store's version


class SqliteVersion:
    """The count of registry writes in `read_model_version` (migration 0012's row triggers), read
    again only when `PRAGMA data_version`, on a connection of our own, says another connection has
    committed something since we last looked.

    data_version changes when any *other* connection commits, so this one never writes. Read on
    the event loop: the pragma reads the WAL index (shared memory, no I/O, no lock a writer holds)
    in a few µs; the count is read only after a commit (also a few µs), so that leases, checkpoints
    and the outbox, written all the time, do not empty the cache. Any error bypasses the cache
    rather than waits (a short busy timeout). Opened on first use, so an app served without a
    lifespan (as in tests) caches too. An in-memory database is private to each connection:
    nothing to see there, no version, no caching.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._seen: int | None = None  # data_version when `_version` was read
        self._version = 0

    def current(self) -> int | None:
        if not self.path or self.path == ":memory:" or self.path.startswith("file::memory:"):
            return None
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(self.path, timeout=0.05, isolation_level=None, check_same_thread=False)
            seen = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if seen != self._seen:
                # Read after the pragma: a commit between the two shows in the count, and moves
                # data_version again for the next look.
                self._version = self._conn.execute("SELECT version FROM read_model_version").fetchone()[0]
                self._seen = seen
            return self._version
        except sqlite3.Error:
            self.close()
            return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._seen = None

    async def run(self) -> None:
        """Nothing to watch in the background: each hit asks the file."""


class PostgresNotifications:
    """A counter moved by every NOTIFY on `CHANNEL` (any commit that changed a registry read model,
    in any process), on a dedicated connection; no version at all while it is not listening."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.generation = 0
        self.listening = False

    def current(self) -> int | None:
        return self.generation if self.listening else None

    def close(self) -> None:
        self._lost()

    def _lost(self) -> None:
        self.listening = False
        self.generation += 1

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after a failure (bypassed meanwhile)."""
        import psycopg

        failures = 0
        while True:
            try:
                # Keepalives: a peer that vanished without closing the socket is noticed in seconds.
                async with await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, application_name=APPLICATION_NAME, keepalives=1,
                        keepalives_idle=5, keepalives_interval=2, keepalives_count=2) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    # Whatever committed while nobody listened is unknown: start from a new version.
                    self.generation += 1
                    self.listening = True
                    failures = 0
                    log.info("read_cache.listening", channel=CHANNEL)
                    while True:
                        async for _ in conn.notifies(timeout=LISTEN_HEALTH_SECONDS):
                            self.generation += 1
                        await asyncio.wait_for(conn.execute("SELECT 1"), LISTEN_HEALTH_SECONDS)
            except asyncio.CancelledError:
                self._lost()
                raise
            except Exception as exc:  # the server went away, or refused us: bypass, then retry
                self._lost()
                wait = LISTEN_RETRY_SECONDS[min(failures, len(LISTEN_RETRY_SECONDS) - 1)]
                failures += 1
                log.warning("read_cache.not_listening", error=str(exc), retry_in_s=wait)
                await asyncio.sleep(wait)


def store_version(db: Database) -> SqliteVersion | PostgresNotifications:
    url = db.engine.url
    if db.dialect == "sqlite":
        return SqliteVersion(url.database or "")
    return PostgresNotifications(url.set(drivername="postgresql").render_as_string(hide_password=False))


# --------------------------------------------------------------------------------------------
# The responses


@dataclass(frozen=True, slots=True)
class Cached:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class ReadCache:
    """Responses by request, for one version of the store; bounded, least recently used out first."""

    def __init__(self, version: SqliteVersion | PostgresNotifications, *, max_entries: int = MAX_ENTRIES,
                 max_bytes: int = MAX_BYTES) -> None:
        self.version = version
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.entries: OrderedDict[Hashable, Cached] = OrderedDict()
        self.bytes = 0
        self.writes = 0  # this process's write requests: see `wrote`
        self._for: tuple[int, int] | None = None  # the token the entries belong to

    def token(self) -> tuple[int, int] | None:
        """The store's version as this process knows it; None: unknown, do not cache."""
        version = self.version.current()
        return None if version is None else (version, self.writes)

    def wrote(self) -> None:
        """A write request of this process is about to answer: what it committed must show at once,
        before any notification arrives."""
        self.writes += 1

    def get(self, key: Hashable, token: tuple[int, int]) -> Cached | None:
        if token != self._for:
            self.clear()
            self._for = token
            return None
        entry = self.entries.get(key)
        if entry is not None:
            self.entries.move_to_end(key)
        return entry

    def put(self, key: Hashable, entry: Cached, token: tuple[int, int]) -> None:
        """Keep `entry`, read by a route that began at `token`, if nothing has committed since."""
        size = len(entry.body)
        if size > self.max_bytes // 4 or self.token() != token:
            return
        if token != self._for:
            self.clear()
            self._for = token
        old = self.entries.pop(key, None)
        if old is not None:
            self.bytes -= len(old.body)
        self.entries[key] = entry
        self.bytes += size
        while len(self.entries) > self.max_entries or self.bytes > self.max_bytes:
            _, dropped = self.entries.popitem(last=False)
            self.bytes -= len(dropped.body)

    def clear(self) -> None:
        self.entries.clear()
        self.bytes = 0


# --------------------------------------------------------------------------------------------
# The fast path


class ReadCacheMiddleware:
    """Innermost middleware: replays cached responses of `routes`, fills on a miss, and counts this
    process's write requests (see `ReadCache.wrote`)."""

    def __init__(self, app: ASGIApp, cache: ReadCache, routes: list[tuple[APIRoute, Scoper]]) -> None:
        self.app = app
        self.cache = cache
        self.routes = routes
        # Requests being answered by their route now, by key: (the token it began at, its answer).
        self.filling: dict[Hashable, tuple[tuple[int, int], asyncio.Future[Cached | None]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method != "GET":
            if method in SAFE_METHODS:
                await self.app(scope, receive, send)
            else:
                await self._write(scope, receive, send)
            return
        path = scope["path"]
        for route, scoper in self.routes:
            if route.path_regex.match(path):
                break
        else:
            await self.app(scope, receive, send)
            return
        await self._read(scope, receive, send, route, scoper)

    async def _write(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.cache.wrote()
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            self.cache.wrote()  # also when it failed midway: it may have committed

    async def _read(self, scope: Scope, receive: Receive, send: Send, route: APIRoute, scoper: Scoper) -> None:
        cache = self.cache
        token = None if _bypass(scope["headers"]) else cache.token()
        if token is None:
            metrics.READ_CACHE_BYPASS.inc()
            await self.app(scope, receive, send)
            return
        try:
            principal = await authenticate(Request(scope))  # sets request.state.principal for the access log
        except DomainError:  # no valid credentials: the route answers that
            await self.app(scope, receive, send)
            return
        key = (route.path, scope["path"], scope["query_string"], scoper(principal))
        entry = cache.get(key, token)
        if entry is not None:
            metrics.READ_CACHE_HITS.inc()
            await self._replay(scope, send, route, entry)
            return
        filling = self.filling.get(key)
        if filling is not None and filling[0] == token:
            # The same request is being answered for this version already (after a write, every
            # client asks at once): wait for that answer rather than run the route again.
            entry = await asyncio.shield(filling[1])
            if entry is not None:
                metrics.READ_CACHE_HITS.inc()
                await self._replay(scope, send, route, entry)
                return
        metrics.READ_CACHE_MISSES.inc()
        answered: asyncio.Future[Cached | None] = asyncio.get_running_loop().create_future()
        if filling is None or filling[0] != token:  # (a failed answer is not waited for twice)
            self.filling[key] = (token, answered)
        entry = None
        try:
            entry = await self._fill(scope, receive, send, route)
            if entry is not None:
                cache.put(key, entry, token)
        finally:
            answered.set_result(entry)
            if self.filling.get(key, (None, None))[1] is answered:
                del self.filling[key]

    async def _replay(self, scope: Scope, send: Send, route: APIRoute, entry: Cached) -> None:
        scope["route"] = route  # the access log and the metrics name the route as if it had run
        # A copy: the middlewares outside add their headers (the ids) to the list they are sent.
        await send({"type": "http.response.start", "status": entry.status, "headers": list(entry.headers)})
        await send({"type": "http.response.body", "body": entry.body})

    async def _fill(self, scope: Scope, receive: Receive, send: Send, route: APIRoute) -> Cached | None:
        """Run the route; its response if it may be kept: a 200 of the route named (FastAPI's routing
        chose it), whole."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = {**message, "headers": list(message["headers"])}
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, keep)
        if start is None or start["status"] != 200 or scope.get("route") is not route:
            return None
        return Cached(200, start["headers"], b"".join(chunks))


def _bypass(headers: list[tuple[bytes, bytes]]) -> bool:
    """A body (its NUL check and parsing are the route's), or the client asks for a fresh answer."""
    for name, value in headers:
        if name == b"cache-control":
            if b"no-cache" in value or b"no-store" in value or b"max-age=0" in value:
                return True
        elif name == b"content-length":
            if value != b"0":
                return True
        elif name == b"transfer-encoding" or name == b"pragma" and b"no-cache" in value:
            return True
    return False


def install(app: FastAPI, db: Database, router: APIRouter, routes: dict[Callable[..., Any], Scoper], *,
            max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> ReadCache:
    """Cache the GET routes of `router` (included in `app` as it is) whose endpoints are the keys of
    `routes`, each keyed by its scope function of the caller; the store's version is watched in the
    app's lifespan."""
    found = [(route, routes[route.endpoint]) for route in router.routes
             if isinstance(route, APIRoute) and route.endpoint in routes and route.methods == {"GET"}]
    if len(found) != len(routes):
        raise ValueError("read cache: each endpoint must be a GET route of the router")
    cache = app.state.read_cache = ReadCache(store_version(db), max_entries=max_entries, max_bytes=max_bytes)
    # Innermost, after every other middleware (Starlette's add_middleware puts each new one outside).
    app.user_middleware.append(Middleware(ReadCacheMiddleware, cache=cache, routes=found))
    metrics.watch_read_cache(cache)
    shared_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[None]:
        async with shared_lifespan(app_):
            watcher = asyncio.create_task(cache.version.run())
            try:
                yield
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                cache.version.close()
                cache.clear()

    app.router.lifespan_context = lifespan
    return cache
