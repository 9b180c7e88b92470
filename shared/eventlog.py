"""The shared append-only event log: every state change of every service, hash-chained.

Ordering. Appends are serialised (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a transaction-scoped
advisory lock taken before the chain head is read), and each event's position is the head's
position + 1. Because the lock is held until commit, positions are gapless and commit order
equals position order, so a reader that asks for `position > checkpoint` never skips an event
that commits later with a smaller position (the failure mode of sequence-assigned ids).

Tamper evidence. Each event's hash covers its content and the previous event's hash
(`chain_hash`), so editing, removing or reordering a stored event breaks every later link.

The database itself refuses a row that does not continue the log: a position that is not the
head's + 1, a `prev_hash` that is not the head's hash, or a stream version that is not the
stream's last + 1. SQLite: a BEFORE INSERT trigger (migration 0013) refuses it, whoever inserts.
PostgreSQL: the append functions (0011) insert only rows that pass the same checks; an INSERT
that bypasses them is not checked there. So an append can chain its rows onto the head it
expects, where its last append ended, without reading it first: if another writer appended
since, or that append was rolled back, the rows are refused, and the log reads the head and
chains again under the same lock. Correctness never rests on the guess.
"""
from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import perf_counter
from typing import Any, ClassVar, Protocol

import orjson
import psycopg
from psycopg.pq import Escaping, ExecStatus, TransactionStatus
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Table

from shared.errors import Conflict, DomainError
from shared.metrics import APPENDS

GENESIS_HASH = "0" * 64
NO_STREAM = 0  # expected_version meaning "the stream must not exist yet"
# How the SQLite trigger of migration 0013 begins its refusal of a row that does not continue
# the log (a broken chain, a position or stream version gap).
CHAIN_REFUSED = "event log refused"
ADVISORY_LOCK_KEY = 0x636C7573  # "clus": the one lock every PostgreSQL append takes (in clusterhub_append)


# --------------------------------------------------------------------------------------------
# Event types


class DomainEvent(BaseModel):
    """Base of every event type: frozen, past tense, with a stable name and a schema version.

    Subclasses set `event_type` (e.g. "registry.OrganisationRegistered", never an import path)
    and `schema_version`; to read older stored versions they define static methods
    `upcast_v1_v2(data) -> data`, `upcast_v2_v3(data)`, … applied in order on read.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        name = cls.__dict__.get("event_type")
        if name:
            known = EVENT_TYPES.get(name)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise TypeError(f"event type {name!r} already defined by {known.__qualname__}")
            EVENT_TYPES[name] = cls

    @classmethod
    def upcast(cls, data: dict[str, Any], from_version: int) -> dict[str, Any]:
        for version in range(from_version, cls.schema_version):
            step = getattr(cls, f"upcast_v{version}_v{version + 1}", None)
            if step is None:
                raise TypeError(f"{cls.event_type}: no upcaster from v{version} to v{version + 1}")
            data = step(dict(data))
        return data


EVENT_TYPES: dict[str, type[DomainEvent]] = {}


def stream_id(kind: str, entity_id: str) -> str:
    """The one spelling of stream ids: `organisation-<uuid>`, `meeting-<uuid>`."""
    return f"{kind}-{entity_id}"


def decode_event(event_type: str, schema_version: int, data: dict[str, Any]) -> DomainEvent:
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise LookupError(f"unknown event type {event_type!r}")
    if schema_version > cls.schema_version:
        raise LookupError(f"{event_type} v{schema_version} is newer than this code (v{cls.schema_version})")
    return cls.model_validate(cls.upcast(data, schema_version))


@dataclass(frozen=True)
class Metadata:
    """Who and what caused an event; stored with it and covered by its hash."""

    actor: str | None = None
    tenant: str | None = None
    service: str | None = None
    request_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class RecordedEvent:
    """One stored event. Read-only by convention (the log never changes an event).

    `data` (the event's JSON as a dict) and `event` (the typed event, upcast to the current
    schema) are worked out on first use: an append has the typed event at hand and hands it
    over as it is, and most readers need one of the two, not both.
    """

    __slots__ = ("position", "stream_id", "stream_type", "version", "event_type", "schema_version", "metadata",
                 "recorded_at", "prev_hash", "hash", "data_text", "_data", "_event")

    def __init__(self, position: int, stream_id: str, stream_type: str, version: int, event_type: str,
                 schema_version: int, data_text: str, metadata: dict[str, Any], recorded_at: str, prev_hash: str,
                 hash: str, event: DomainEvent | None = None) -> None:
        self.position = position
        self.stream_id = stream_id
        self.stream_type = stream_type
        self.version = version
        self.event_type = event_type
        self.schema_version = schema_version
        self.data_text = data_text  # as stored and hashed
        self.metadata = metadata
        self.recorded_at = recorded_at
        self.prev_hash = prev_hash
        self.hash = hash
        self._data: dict[str, Any] | None = None
        self._event = event

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = orjson.loads(self.data_text)
        return self._data

    @property
    def event(self) -> DomainEvent:
        """The typed event, upcast to the current schema version."""
        if self._event is None:
            self._event = decode_event(self.event_type, self.schema_version, self.data)
        return self._event

    def public(self) -> dict[str, Any]:
        """The event as the API shows it in history and audit listings."""
        return {
            "position": self.position,
            "stream_id": self.stream_id,
            "stream_type": self.stream_type,
            "version": self.version,
            "event_type": self.event_type,
            "schema_version": self.schema_version,
            "data": self.data,
            "metadata": self.metadata,
            "recorded_at": self.recorded_at,
            "hash": self.hash,
        }

    def __eq__(self, other: object) -> bool:
        # The hash covers every other field.
        return isinstance(other, RecordedEvent) and (self.position, self.hash) == (other.position, other.hash)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RecordedEvent(position={self.position}, stream_id={self.stream_id!r}, version={self.version}, " \
               f"event_type={self.event_type!r})"


class ConcurrencyError(Conflict):
    """The stream moved on since the caller read it (or exists when it must not)."""

    title, type_slug = "Concurrent modification", "concurrent-modification"

    def __init__(self, stream_id: str, expected: int | None, current: int) -> None:
        what = "must not exist" if expected == NO_STREAM else f"expected at version {expected}"
        super().__init__(
            f"stream {stream_id} {what}, but is at version {current}",
            stream_id=stream_id,
            expected_version=expected,
            current_version=current,
        )
        self.current_version = current


class Projector(Protocol):
    """A read model updated in the same transaction as the append (and rebuildable from the log)."""

    name: str
    tables: Sequence[Table]  # in creation order; rebuild clears them in reverse

    def handles(self, event_type: str) -> bool: ...

    def apply(self, conn: Connection, event: RecordedEvent) -> None: ...


# --------------------------------------------------------------------------------------------
# Hashing


def canonical_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def event_json(event: DomainEvent) -> bytes:
    """An event's data as stored and hashed: the model's JSON, fields in declaration order.

    pydantic's serializer itself, without `model_dump_json`'s argument handling, which costs as
    much again; a dict and sorted keys (as rows up to 2026-12 have) would cost twice that. Both
    read back the same, and verification hashes the stored text, whatever its key order.
    """
    return _serializer(type(event))(event)


def _serializer(cls: type) -> Callable[[Any], bytes]:
    serializer = getattr(cls, "__pydantic_serializer__", None)
    if serializer is None:  # a stand-in with model_dump only, as tests append for code that is gone
        return lambda event: orjson.dumps(event.model_dump(mode="json"))
    return serializer.to_json


def chain_hash(
    prev_hash: str,
    position: int,
    stream_id: str,
    stream_type: str,
    version: int,
    event_type: str,
    schema_version: int,
    data: str,
    metadata: str,
    recorded_at: str,
) -> str:
    # Length-prefixed fields, so content cannot slide from one field into the next unnoticed.
    parts = (prev_hash, str(position), stream_id, stream_type, str(version), event_type,
             str(schema_version), data, metadata, recorded_at)
    digest = hashlib.sha256()
    for part in parts:
        raw = part.encode()
        digest.update(b"%d:" % len(raw))
        digest.update(raw)
    return digest.hexdigest()


_this_second: tuple[int, str] = (-1, "")


def utc_now_text() -> str:
    """Now as `recorded_at` text, `2026-11-23T14:35:12.123456Z`. The whole seconds are
    formatted once per second: strftime per call was a tenth of a SQLite append's CPU time."""
    global _this_second
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    second, text = _this_second
    if seconds != second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _this_second = (seconds, text)
    return f"{text}.{micros:06d}Z"


def to_timestamp_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------------------------
# The log

_COLUMNS = ("position, stream_id, stream_type, version, event_type, schema_version, data, "
            "metadata, actor, tenant, recorded_at, prev_hash, hash")
_COLUMN_NAMES = tuple(name.strip() for name in _COLUMNS.split(","))


@dataclass(frozen=True)
class _Statements:
    head: str
    insert: str
    placeholder: str

    @classmethod
    def for_dialect(cls, dialect: str) -> "_Statements":
        p = "?" if dialect == "sqlite" else "%s"
        # One statement for both things an append must know: the chain head and the stream's
        # current version.
        head = (
            f"SELECT (SELECT max(version) FROM events WHERE stream_id = {p}), h.position, h.hash "
            "FROM (SELECT 1 AS one) AS d LEFT JOIN "
            "(SELECT position, hash FROM events ORDER BY position DESC LIMIT 1) AS h ON 1 = 1"
        )
        insert = f"INSERT INTO events ({_COLUMNS}) VALUES ({', '.join([p] * 13)})"
        return cls(head, insert, p)


# PostgreSQL: lock, head, version check and insert in one call (migration 0011), of one row
# as typed parameters or of any number as JSON.
_APPEND_ONE = ("SELECT clusterhub_append_one(%s::bigint, %s::text, %s::text, %s::integer, %s::text, "
               "%s::integer, %s::text, %s::text, %s::text, %s::text, %s::text, %s::text, %s::text)")
_IDLE = TransactionStatus.IDLE
_TUPLES_OK = ExecStatus.TUPLES_OK
_APPEND_MANY = "SELECT clusterhub_append(%s::text, %s::integer, %s::bigint, %s::text, %s::json)"


def _begin_and_call(pgconn: Any, statement: str, parameters: Sequence[Any]) -> str | None:
    """Run an append call as the first statement of the transaction, with the BEGIN that
    psycopg would otherwise send in a round trip of its own (even in pipeline mode): both go
    as one simple query, the parameters inlined as escaped literals. psycopg then finds the
    transaction open, so the connection's later statements and its commit or rollback work
    as usual. Returns the call's result."""
    quote = Escaping(pgconn).escape_literal
    literals = tuple(b"NULL" if value is None else b"%d" % value if isinstance(value, int)
                     else quote(value.encode()) for value in parameters)
    result = pgconn.exec_(b"BEGIN; " + statement.encode() % literals)
    if result.status != _TUPLES_OK:
        raise psycopg.errors.error_from_result(result, encoding="utf-8")
    missed = result.get_value(0, 0)
    return None if missed is None else missed.decode()


def _document(rows: list[tuple[Any, ...]]) -> str:
    """Rows as the JSON array of objects that `clusterhub_append` reads as `events` records."""
    return orjson.dumps([dict(zip(_COLUMN_NAMES, row)) for row in rows]).decode()


def _field(raw: bytes) -> bytes:
    """One length-prefixed field, framed exactly as `chain_hash` frames it."""
    return b"%d:%b" % (len(raw), raw)


# Per event class: its type, its schema version, both framed as chain_hash frames them, and its
# serializer (event_json).
_EVENT_CLASSES: dict[type, tuple[str, int, bytes, Callable[[Any], bytes]]] = {}

# An event ready to chain: the event as its RecordedEvent hands it over (None if it is not of the
# class the code now has for its type: it is then decoded and upcast from its data), its type and
# schema version, both framed, and its data as stored, as text and as bytes: what an append
# needs of it, once even if it is chained twice.
_Payload = tuple[DomainEvent | None, str, int, bytes, str, bytes]


def _payload(event: DomainEvent) -> _Payload:
    cls = type(event)
    known = _EVENT_CLASSES.get(cls)
    if known is None:
        known = _EVENT_CLASSES[cls] = (cls.event_type, cls.schema_version, _field(cls.event_type.encode())
                                       + _field(b"%d" % cls.schema_version), _serializer(cls))
    event_type, schema_version, framed, serialize = known
    data = serialize(event)
    typed = event if EVENT_TYPES.get(event_type) is cls else None
    return typed, event_type, schema_version, framed, data.decode(), data


@dataclass
class _Batch:
    """The rows of one append, chained onto a given head."""

    rows: list[tuple[Any, ...]]
    recorded: list[RecordedEvent]


@dataclass
class EventLog:
    dialect: str
    projectors: list[Projector] = field(default_factory=list)
    clock: Callable[[], str] = utc_now_text

    def __post_init__(self) -> None:
        self._sql = _Statements.for_dialect(self.dialect)
        # (position, hash) of the last event this log appended: on PostgreSQL the next append
        # guesses that it is still the head (see _append_postgres).
        self._last: tuple[int, str] | None = None

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        conn: Connection,
        stream_id: str,
        stream_type: str,
        expected_version: int | None,
        events: Sequence[DomainEvent],
        metadata: Metadata = Metadata(),
    ) -> list[RecordedEvent]:
        """Append `events` to a stream atomically, within the caller's write transaction.

        `expected_version` is the stream version the caller decided on (`NO_STREAM` for a new
        stream, None to skip the check). Inline projections run before the caller commits.
        """
        if not events:
            return []
        started = perf_counter()
        meta = metadata.as_dict()
        meta_text = canonical_json(meta)
        payloads = [_payload(event) for event in events]
        # Straight to the driver: SQLAlchemy's statement machinery costs more than the statements.
        driver = conn.connection.driver_connection
        try:
            if self.dialect == "sqlite":
                batch = self._append_sqlite(driver, stream_id, stream_type, expected_version, payloads, meta,
                                            meta_text)
            else:
                batch = self._append_postgres(driver, stream_id, stream_type, expected_version, payloads, meta,
                                              meta_text)
        except DomainError:
            raise
        except Exception as exc:
            if _is_unique_violation(exc):
                # Only reachable when another writer bypassed the lock; report it as a conflict.
                raise ConcurrencyError(stream_id, expected_version, self.stream_version(conn, stream_id)) from exc
            raise
        recorded = batch.recorded
        self._last = (recorded[-1].position, recorded[-1].hash)
        if self.projectors:
            for item in recorded:
                for projector in self.projectors:
                    if projector.handles(item.event_type):
                        projector.apply(conn, item)
        APPENDS.observe(perf_counter() - started, len(recorded))
        return recorded

    def _guess(self, expected_version: int | None) -> tuple[int, str] | None:
        """The head this log expects to append after: where its last append ended.

        Rows chained onto it go in only if it still is the head and the stream is at the
        expected version (SQLite: the trigger of migration 0013; PostgreSQL: the append
        functions of 0011), which saves reading the head first while this log is the only
        writer (or, across processes, while appends do not interleave). Only the real clock
        guesses: an injected one is then read once per append, as it always was, rather than
        again after a miss.
        """
        if expected_version is None or self.clock is not utc_now_text:
            return None
        return self._last

    def _append_sqlite(self, driver: Any, stream_id: str, stream_type: str, expected_version: int | None,
                       payloads: list[_Payload], meta: dict[str, Any], meta_text: str) -> _Batch:
        """SQLite: the transaction already holds the write lock (`BEGIN IMMEDIATE`). With a
        guess (see _guess) the rows go straight in; when the trigger refuses the first one, no
        row went in (each row is chained onto the one before it, so only the first can miss),
        and the head read now is the head the rows go onto: the lock is still held."""
        guess = self._guess(expected_version)
        if guess is not None:
            batch = self._chain(stream_id, stream_type, payloads, meta, meta_text, guess[0], guess[1],
                                expected_version)  # type: ignore[arg-type]
            try:
                _insert_sqlite(driver, self._sql.insert, batch.rows)
                return batch
            except sqlite3.IntegrityError as exc:
                if not str(exc).startswith(CHAIN_REFUSED):
                    raise
        current_version, head_position, head_hash = driver.execute(self._sql.head, (stream_id,)).fetchone()
        current_version = current_version or 0
        if expected_version is not None and expected_version != current_version:
            raise ConcurrencyError(stream_id, expected_version, current_version)
        batch = self._chain(stream_id, stream_type, payloads, meta, meta_text, head_position or 0,
                            head_hash or GENESIS_HASH, current_version)
        _insert_sqlite(driver, self._sql.insert, batch.rows)
        return batch

    def _append_postgres(self, driver: Any, stream_id: str, stream_type: str, expected_version: int | None,
                         payloads: list[_Payload], meta: dict[str, Any], meta_text: str) -> _Batch:
        """PostgreSQL: one call of `clusterhub_append_one` or `clusterhub_append` (migration
        0011), which takes the lock, reads the head and the stream's version, and inserts the
        rows sent along if they were chained onto that head at that version; else it returns the
        head, and the rows are chained onto it and inserted (the lock is held by then, so the
        head cannot move). With a guess (see _guess) that is one round trip per append."""
        sql = self._sql
        guess = self._guess(expected_version)
        if guess is not None:
            batch = self._chain(stream_id, stream_type, payloads, meta, meta_text, guess[0], guess[1],
                                expected_version)  # type: ignore[arg-type]
            rows = batch.rows
            if len(rows) == 1:
                call = (_APPEND_ONE, rows[0])
            else:
                call = (_APPEND_MANY, (stream_id, expected_version, guess[0], guess[1], _document(rows)))
        else:
            call = (_APPEND_MANY, (stream_id, expected_version, None, None, None))
        pgconn = driver.pgconn
        # (A connection set to another isolation level or to read-only keeps psycopg's BEGIN.)
        if pgconn.transaction_status == _IDLE and driver.isolation_level is None and driver.read_only is None:
            head = _begin_and_call(pgconn, *call)
        else:
            with driver.cursor() as cur:
                head = cur.execute(*call).fetchone()[0]
        if head is None:  # inserted
            return batch
        version_text, position_text, head_hash = head.split(",")
        current_version, head_position = int(version_text), int(position_text)
        if expected_version is not None and expected_version != current_version:
            raise ConcurrencyError(stream_id, expected_version, current_version)
        batch = self._chain(stream_id, stream_type, payloads, meta, meta_text, head_position, head_hash,
                            current_version)
        with driver.cursor() as cur:
            if len(batch.rows) == 1:
                cur.execute(sql.insert, batch.rows[0])
            else:
                cur.executemany(sql.insert, batch.rows)
        return batch

    def _chain(self, stream_id: str, stream_type: str, payloads: list[_Payload], meta: dict[str, Any],
               meta_text: str, position: int, prev: str, version: int) -> _Batch:
        """The rows and recorded events of `payloads` appended after (`position`, `prev`)."""
        recorded_at = self.clock()
        actor, tenant = meta.get("actor"), meta.get("tenant")
        # The chain_hash input, assembled from fields framed once per append or per event;
        # verify_chain recomputes every hash with chain_hash itself.
        stream_fields = _field(stream_id.encode()) + _field(stream_type.encode())
        tail_fields = _field(meta_text.encode()) + _field(recorded_at.encode())
        sha256 = hashlib.sha256
        rows = []
        recorded = []
        for event, event_type, schema_version, type_fields, data_text, data in payloads:
            position += 1
            version += 1
            position_raw, version_raw = b"%d" % position, b"%d" % version
            # (A hash is 64 hex digits: its frame is "64:".)
            digest = sha256(b"64:%b%d:%b%b%d:%b%b%d:%b%b" % (
                prev.encode(), len(position_raw), position_raw, stream_fields, len(version_raw), version_raw,
                type_fields, len(data), data, tail_fields,
            )).hexdigest()
            rows.append((position, stream_id, stream_type, version, event_type, schema_version, data_text,
                         meta_text, actor, tenant, recorded_at, prev, digest))
            recorded.append(RecordedEvent(position, stream_id, stream_type, version, event_type, schema_version,
                                          data_text, meta, recorded_at, prev, digest, event))
            prev = digest
        return _Batch(rows, recorded)

    # -- reading ---------------------------------------------------------------------------

    def stream_version(self, conn: Connection, stream_id: str) -> int:
        p = self._sql.placeholder
        row = conn.exec_driver_sql(f"SELECT max(version) FROM events WHERE stream_id = {p}", (stream_id,)).fetchone()
        return (row[0] if row else None) or 0

    def head_position(self, conn: Connection) -> int:
        row = conn.exec_driver_sql("SELECT max(position) FROM events").fetchone()
        return (row[0] if row else None) or 0

    def read_stream(self, conn: Connection, stream_id: str, *, after_version: int = 0) -> list[RecordedEvent]:
        p = self._sql.placeholder
        rows = conn.exec_driver_sql(
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = {p} AND version > {p} ORDER BY version",
            (stream_id, after_version),
        )
        return [_recorded(row) for row in rows]

    def read(
        self,
        conn: Connection,
        *,
        after: int = 0,
        up_to: int | None = None,
        limit: int = 1000,
        event_types: Iterable[str] | None = None,
        stream_id: str | None = None,
        stream_type: str | None = None,
        actor: str | None = None,
        tenant: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> list[RecordedEvent]:
        """Events in position order after `after`, optionally filtered; at most `limit`."""
        p = self._sql.placeholder
        where, params = [f"position > {p}"], [after]
        if up_to is not None:
            where.append(f"position <= {p}")
            params.append(up_to)
        types = list(event_types or [])
        if types:
            where.append(f"event_type IN ({', '.join([p] * len(types))})")
            params.extend(types)
        for column, value in (("stream_id", stream_id), ("stream_type", stream_type), ("actor", actor),
                              ("tenant", tenant)):
            if value is not None:
                where.append(f"{column} = {p}")
                params.append(value)
        if since is not None:
            where.append(f"recorded_at >= {p}")
            params.append(since)
        if until is not None:
            where.append(f"recorded_at < {p}")
            params.append(until)
        params.append(limit)
        sql = f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY position LIMIT {p}"
        return [_recorded(row) for row in conn.exec_driver_sql(sql, tuple(params))]

    def iterate(self, conn: Connection, *, after: int = 0, batch: int = 5000) -> Iterator[RecordedEvent]:
        """Every event after `after`, in order, fetched in batches."""
        while True:
            page = self.read(conn, after=after, limit=batch)
            yield from page
            if len(page) < batch:
                return
            after = page[-1].position


def _recorded(row: Sequence[Any]) -> RecordedEvent:
    (position, stream_id, stream_type, version, event_type, schema_version, data, metadata,
     _actor, _tenant, recorded_at, prev_hash, digest) = row
    return RecordedEvent(position, stream_id, stream_type, version, event_type, schema_version, data,
                         orjson.loads(metadata), recorded_at, prev_hash, digest)


def _insert_sqlite(driver: sqlite3.Connection, insert: str, rows: list[tuple[Any, ...]]) -> None:
    if len(rows) == 1:
        driver.execute(insert, rows[0])
    else:
        driver.executemany(insert, rows)


def _is_unique_violation(exc: Exception) -> bool:
    text = str(exc).lower()
    return "unique" in text or "duplicate key" in text


# --------------------------------------------------------------------------------------------
# Verification


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    count: int
    broken_at: int | None = None
    reason: str | None = None


def verify_chain(conn: Connection, *, batch: int = 5000, progress: Callable[[int], None] | None = None) -> ChainReport:
    """Walk the log in position order, recomputing every hash; name the first broken position."""
    prev, expected_position, count, after = GENESIS_HASH, 1, 0, 0
    while True:
        rows = conn.exec_driver_sql(
            f"SELECT {_COLUMNS} FROM events WHERE position > {after} ORDER BY position LIMIT {batch}"
        ).fetchall()
        for row in rows:
            (position, stream_id, stream_type, version, event_type, schema_version, data, metadata,
             _actor, _tenant, recorded_at, prev_hash, digest) = row
            if position != expected_position:
                return ChainReport(False, count, expected_position, f"event at position {expected_position} is missing")
            if prev_hash != prev:
                return ChainReport(False, count, position, "link to the previous event does not match")
            if chain_hash(prev, position, stream_id, stream_type, version, event_type, schema_version,
                          data, metadata, recorded_at) != digest:
                return ChainReport(False, count, position, "content does not match its hash")
            meta = orjson.loads(metadata)
            if (meta.get("actor"), meta.get("tenant")) != (_actor, _tenant):
                return ChainReport(False, count, position, "actor or tenant column differs from the hashed metadata")
            prev, expected_position, count = digest, position + 1, count + 1
        if progress:
            progress(count)
        if len(rows) < batch:
            return ChainReport(True, count)
        after = rows[-1][0]
