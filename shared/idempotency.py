"""Idempotent writes: a retried POST, PUT, PATCH or DELETE with the same `Idempotency-Key` gets
the first response back and writes nothing new; the same key with another body is a 422.

A key belongs to (service, client, method, path): the client is the hash of its credential, or
its address (shared.limits.client_of), so nobody can replay another client's response. A keyed
request goes through three steps:

1. Reserve: one short transaction inserts the key's row `in_progress`, owned by this request,
   with a lease. A row already there answers instead: its stored response (replayed), 422 for
   another body, 409 while the first request still runs.
2. Run: every transaction of the request that writes also marks the row `committed`, inside
   that same transaction (an engine `commit` hook), so the write and the record of it commit
   together or not at all. If the row is no longer this request's (a retry took it over after
   the lease ran out), the transaction fails instead of committing: never two executions.
3. Finish: a 2xx or 4xx response is stored (`completed`) and replayed for the TTL. A 5xx is
   not: if nothing was written the row goes and a retry runs afresh.

After a crash: an `in_progress` row wrote nothing, and a retry after the lease takes it over
and runs; a `committed` row wrote but lost its response, and a retry gets a 409 saying so
(never a second write). Rows hold response bodies, and go once expired (lazily).
"""
from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import orjson
import structlog
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    delete,
    event,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import pii
from shared.auth import tokens_of
from shared.db import Database
from shared.errors import Conflict, DomainError, InvalidInput, problem_response
from shared.limits import client_of
from shared.tables import metadata

__all__ = ["IdempotencyKeys", "IdempotencyMiddleware", "idempotency_keys"]

log = structlog.get_logger()

HEADER = "idempotency-key"
FIELD = "header.idempotency-key"
METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Long enough for the slowest write (a schedule run); a crashed request's key is free after it.
LEASE = timedelta(minutes=2)
# Larger responses are sent but not kept: a retry then gets the 409 for a lost response.
MAX_STORED_BODY = 1024 * 1024
# What belongs to the exchange rather than to the result is not replayed.
_NOT_STORED = {"content-length", "date", "server", "x-request-id", "x-correlation-id"}
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("service", String(50), nullable=False),
    Column("client", String(80), nullable=False),
    Column("method", String(10), nullable=False),
    Column("path", String(500), nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status", String(12), nullable=False),
    Column("owner", String(32), nullable=False),
    Column("locked_until", String(32), nullable=False),
    Column("response_status", Integer),
    Column("response_headers", Text),
    Column("response_body", LargeBinary),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Index("ix_idempotency_keys_expires_at", "expires_at"),
)


def _stamp(moment: datetime) -> str:
    # Fixed width, so that text order is time order.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Reservation:
    """A keyed request that holds its row while it runs."""

    id: str
    owner: str = field(default_factory=lambda: secrets.token_hex(16))
    running: bool = True


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: list[list[str]]
    body: bytes


class KeyInUse(Conflict):
    type_slug = "idempotency-key-in-use"


_reservation: ContextVar[Reservation | None] = ContextVar("idempotency_reservation", default=None)
_CHANGES = "idempotency_total_changes"


def _on_begin(conn: Connection) -> None:
    if _holding() is not None and conn.dialect.name == "sqlite":
        conn.info[_CHANGES] = conn.connection.dbapi_connection.total_changes  # type: ignore[union-attr]


def _on_commit(conn: Connection) -> None:
    """Mark the key `committed` in the transaction that writes, or refuse to commit it."""
    reservation = _holding()
    if reservation is None or not _wrote(conn):
        return
    marked = conn.execute(update(idempotency_keys)
                          .where(idempotency_keys.c.id == reservation.id,
                                 idempotency_keys.c.owner == reservation.owner,
                                 idempotency_keys.c.status.in_(("in_progress", "committed")))
                          .values(status="committed")).rowcount
    if marked != 1:
        raise KeyInUse("a retry with this Idempotency-Key took over after this request ran out of time; "
                              "nothing was written")


@contextlib.contextmanager
def holding(reservation: Reservation) -> Iterator[None]:
    """Run the request's work under `reservation`: its writing transactions mark the key."""
    token = _reservation.set(reservation)
    try:
        yield
    finally:
        reservation.running = False
        _reservation.reset(token)


def _holding() -> Reservation | None:
    reservation = _reservation.get()
    # A task the request started may outlive it: its writes are its own.
    return reservation if reservation is not None and reservation.running else None


def _holds_a_key() -> bool:
    return _holding() is not None


def _wrote(conn: Connection) -> bool:
    if conn.dialect.name == "sqlite":
        # Counts rows changed through this connection, raw cursors included (the event log uses them).
        before = conn.info.get(_CHANGES)
        return before is None or conn.connection.dbapi_connection.total_changes != before  # type: ignore[union-attr]
    # A transaction has an id once it changes (or locks) a row.
    return bool(conn.exec_driver_sql("SELECT pg_current_xact_id_if_assigned() IS NOT NULL").scalar())


def _install_hooks(engine: Engine) -> None:
    if not event.contains(engine, "commit", _on_commit):
        event.listen(engine, "begin", _on_begin)
        event.listen(engine, "commit", _on_commit)


class IdempotencyKeys:
    """The `idempotency_keys` table of one service: reserve, finish, purge."""

    def __init__(self, db: Database, service: str, *, ttl_hours: float = 24,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db = db
        self.service = service
        self.ttl = timedelta(hours=ttl_hours)
        self.clock = clock
        self._purged_at: datetime | None = None
        _install_hooks(db.engine)
        # The hooks act for the request whose context they run in, and only while it holds a key:
        # other writes skip SQLAlchemy's transaction and may share a commit (shared/db.py).
        db.needs_commit_hooks = _holds_a_key

    def key_id(self, client: str, method: str, path: str, key: str) -> str:
        return hashlib.sha256("\x1f".join((self.service, client, method, path, key)).encode()).hexdigest()

    async def reserve(self, *, client: str, method: str, path: str, key: str,
                      fingerprint: str) -> Reservation | StoredResponse:
        """This request's reservation, or the stored response to replay; raises 422/409 problems."""
        now = self.clock()
        purge_all = self._purged_at is None or now - self._purged_at > timedelta(minutes=5)
        if purge_all:
            self._purged_at = now
        reservation = Reservation(self.key_id(client, method, path, key))
        row = {"id": reservation.id, "service": self.service, "client": client[:80], "method": method,
               "path": path[:500], "idempotency_key": key, "fingerprint": fingerprint, "status": "in_progress",
               "owner": reservation.owner, "locked_until": _stamp(now + LEASE), "created_at": _stamp(now),
               "expires_at": _stamp(now + self.ttl)}
        return await self.db.write(lambda conn: self._reserve(conn, reservation, row, _stamp(now), purge_all))

    def _reserve(self, conn: Connection, reservation: Reservation, row: dict[str, Any], now: str,
                 purge_all: bool) -> Reservation | StoredResponse:
        t = idempotency_keys
        expired = t.c.expires_at <= now
        conn.execute(delete(t).where(expired if purge_all else (t.c.id == reservation.id) & expired))
        insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT .. ON CONFLICT.
        inserted = conn.execute(insert(t).values(row).on_conflict_do_nothing(index_elements=[t.c.id])
                                .returning(t.c.id)).first()
        if inserted is not None:
            return reservation
        held = conn.execute(select(t).where(t.c.id == reservation.id)).one()
        if held.fingerprint != row["fingerprint"]:
            raise InvalidInput.field(FIELD, "this key was used for a request with another body; use a new key")
        if held.status == "completed":
            # Personal data in the body is sealed (see finish): opened now, "erased" once erased.
            return StoredResponse(held.response_status, orjson.loads(held.response_headers),
                                  pii.open_json(conn, held.response_body))
        if held.status == "committed":
            raise KeyInUse("the request with this Idempotency-Key was applied but its response was lost; "
                           "read the resource to see the result")
        if held.locked_until > now:
            raise KeyInUse("a request with this Idempotency-Key is in progress", retry_after=1)
        # The first request stopped before writing anything (its writes would have marked the row).
        taken = conn.execute(update(t).where(t.c.id == reservation.id, t.c.owner == held.owner,
                                             t.c.status == "in_progress")
                             .values(owner=reservation.owner, locked_until=row["locked_until"])).rowcount
        if taken != 1:
            raise KeyInUse("a request with this Idempotency-Key is in progress", retry_after=1)
        return reservation

    async def finish(self, reservation: Reservation, response: StoredResponse | None,
                     personal: Mapping[str, frozenset[str]] | None = None) -> None:
        """Keep a final (2xx/4xx) response; otherwise free the key unless the request wrote.

        `personal`: the plaintexts the request sealed or opened, by person (shared/pii.py). They
        are sealed again in the stored body, so that no plaintext is kept and an erased person's
        data replays as "erased"; a body that cannot be sealed so is not kept (a retry gets 409).
        """
        t = idempotency_keys
        mine = (t.c.id == reservation.id) & (t.c.owner == reservation.owner)

        def run(conn: Connection) -> None:
            body = response and pii.reseal_json(conn, response.body, personal or {})
            if response is None or body is None:
                conn.execute(delete(t).where(mine, t.c.status == "in_progress"))
            else:
                conn.execute(update(t).where(mine).values(
                    status="completed", response_status=response.status, response_headers=orjson.dumps(
                        response.headers).decode(), response_body=body))

        await self.db.write(run)


class IdempotencyMiddleware:
    """Applies `Idempotency-Key` to POST, PUT, PATCH and DELETE; requests without one pass through.

    It sits inside the body size limit, so the body it buffers is bounded.
    """

    def __init__(self, app: ASGIApp, keys: IdempotencyKeys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = Headers(scope=scope).get(HEADER) if scope["type"] == "http" and scope["method"] in METHODS else None
        if key is None:
            await self.app(scope, receive, send)
            return
        if not _KEY.match(key):
            await _problem(InvalidInput.field(FIELD, "expected 1 to 255 visible ASCII characters, e.g. a UUID"),
                           scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except HTTPException as exc:  # the body size limit
            await problem_response(exc.status_code, {"type": "https://clusterhub.eu/problems/payload-too-large",
                                                     "title": "Payload too large", "status": exc.status_code,
                                                     "detail": str(exc.detail)})(scope, receive, send)
            return
        if body is None:  # the client went away
            return
        fingerprint = hashlib.sha256(scope.get("query_string", b"") + b"?" + body).hexdigest()
        try:
            outcome = await self.keys.reserve(client=client_of(scope)[0], method=scope["method"],
                                              path=scope["path"], key=key, fingerprint=fingerprint)
        except DomainError as error:
            await _problem(error, scope, receive, send)
            return
        if isinstance(outcome, StoredResponse):
            try:
                _credentials_still_valid(scope)
            except DomainError as error:
                await _problem(error, scope, receive, send)
                return
            await _replay(outcome, send)
            return
        await self._run(outcome, body, scope, receive, send)

    async def _run(self, reservation: Reservation, body: bytes, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message | None = None
        chunks: list[bytes] = []
        size, complete = 0, False
        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        last: Message | None = None

        async def capture(message: Message) -> None:
            nonlocal start, size, complete, last
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
                if size <= MAX_STORED_BODY:
                    chunks.append(message.get("body", b""))
                complete = not message.get("more_body", False)
                if complete:
                    # The end of the response goes out once it is stored: a client that retries
                    # the moment it has it finds it kept, not a 409 for a response "lost".
                    last = message
                    return
            await send(message)

        personal: dict[str, frozenset[str]] = {}
        try:
            with holding(reservation), pii.tracking() as personal:
                await self.app(scope, replay_body, capture)
        finally:
            final = start is not None and complete and size <= MAX_STORED_BODY and start["status"] < 500
            stored = None
            if final:
                assert start is not None
                headers = [[name.decode("latin-1"), value.decode("latin-1")] for name, value in start["headers"]
                           if name.decode("latin-1").lower() not in _NOT_STORED]
                stored = StoredResponse(start["status"], headers, b"".join(chunks))
            # Finish even when the client is gone and the request cancelled: the key must not stay held.
            with anyio.CancelScope(shield=True):
                try:
                    await self.keys.finish(reservation, stored, personal)
                except Exception as exc:
                    # The response is out already; the row stays held until its lease (or TTL) ends.
                    log.warning("idempotency.finish_failed", key_id=reservation.id, error=str(exc))
        if last is not None:
            await send(last)


async def _read_body(receive: Receive) -> bytes | None:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def _replay(stored: StoredResponse, send: Send) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in stored.headers]
    headers += [(b"content-length", str(len(stored.body)).encode()), (b"idempotency-replayed", b"true")]
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})


def _credentials_still_valid(scope: Scope) -> None:
    """A replay skips the route and its authentication, so check here that the bearer token still
    verifies: an expired token or a retired signing key must not get the stored answer back."""
    scheme, _sep, token = Headers(scope=scope).get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        tokens_of(Request(scope)).verify(token.strip())


async def _problem(error: DomainError, scope: Scope, receive: Receive, send: Send) -> None:
    headers = {"Retry-After": str(error.extensions["retry_after"])} if "retry_after" in error.extensions else None
    headers = {**(headers or {}), **getattr(error, "headers", {})} or None
    await problem_response(error.status, error.problem(), headers)(scope, receive, send)
