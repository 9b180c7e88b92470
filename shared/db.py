"""The store: one SQLAlchemy engine over SQLite (embedded default) or PostgreSQL (production).

Database work runs on the synchronous drivers in worker threads, one thread hop per unit of
work: aiosqlite pays a hop per statement, which costs more than SQLite's own commit.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Literal, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

T = TypeVar("T")
Dialect = Literal["sqlite", "postgresql"]


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and point them at psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Database:
    """Engine plus the two ways in: `writing()` (serialised, durable) and `reading()`."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.dialect: Dialect = "sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql"
        if self.dialect == "sqlite":
            path = parsed.database or ""
            if path and path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.engine = _sqlite_engine(self.url, echo=echo)
            # SQLite has one writer; queueing writers here beats spinning on busy_timeout.
            self._write_limiter = anyio.CapacityLimiter(1)
        else:
            self.engine = create_engine(
                self.url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, echo=echo
            )
            self._write_limiter = anyio.CapacityLimiter(pool_size)
        self._read_limiter = anyio.CapacityLimiter(pool_size)

    @contextlib.contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction: commits on success, rolls back on any exception."""
        with self.engine.connect() as conn, self.write_transaction(conn):
            yield conn

    def write_transaction(self, conn: Connection) -> WriteTransaction:
        """One write transaction on a connection the caller holds (`writing()` checks one out)."""
        return WriteTransaction(conn, immediate=self.dialect == "sqlite")

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work(conn)` in one write transaction on a worker thread."""

        def run() -> T:
            with self.writing() as conn:
                return work(conn)

        return await anyio.to_thread.run_sync(run, limiter=self._write_limiter)

    async def read(self, work: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self.reading() as conn:
                return work(conn)

        return await anyio.to_thread.run_sync(run, limiter=self._read_limiter)

    def dispose(self) -> None:
        self.engine.dispose()


class WriteTransaction:
    """A write transaction begun and ended on the driver connection: SQLAlchemy's own
    begin/commit bookkeeping costs more CPU than the event log's append itself.

    Statements run through the SQLAlchemy Connection still work: SQLAlchemy then begins its
    own transaction on top of the driver's (see `_on_begin`), committed or rolled back here.
    """

    __slots__ = ("conn", "driver", "immediate")

    def __init__(self, conn: Connection, *, immediate: bool) -> None:
        self.conn = conn
        self.driver = conn.connection.driver_connection
        self.immediate = immediate

    def __enter__(self) -> Connection:
        if self.immediate:
            # SQLite: IMMEDIATE takes the write lock up front (see `_on_begin`). psycopg begins
            # a transaction by itself before the first statement.
            self.driver.execute("BEGIN IMMEDIATE")
        if self.conn.dispatch.commit:
            # Commit hooks (shared/idempotency.py) run in SQLAlchemy's transactions only: give
            # them one from the start, as if the work had begun through the Connection.
            self.conn.begin()
        return self.conn

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        conn = self.conn
        if conn.in_transaction():
            if kind is None:
                try:
                    conn.commit()
                except BaseException:
                    # A commit hook refused (shared/idempotency.py): nothing of this transaction lands,
                    # and the pooled connection does not go back mid-transaction.
                    conn.rollback()
                    raise
            else:
                conn.rollback()
        elif kind is None:
            if self.immediate:
                self.driver.execute("COMMIT")  # sqlite3's commit() prepares its COMMIT every time
            else:
                self.driver.commit()
        else:
            self.driver.rollback()


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    engine = create_engine(
        url,
        echo=echo,
        # Pooled connections move between worker threads, never two at once.
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=10,
        max_overflow=10,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Autocommit at the driver level so that SQLAlchemy's begin hook decides the BEGIN kind.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA secure_delete=ON")  # erased keys (shared/pii.py) are overwritten, not left in free pages
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Reads begin DEFERRED. Writes begin IMMEDIATE, in Database.write_transaction: a deferred
        # transaction that later writes can fail with SQLITE_BUSY without waiting, and the event
        # log needs the lock before reading the chain head. SQLAlchemy begins on top of such a
        # transaction when a statement runs through the Connection: nothing to send then.
        driver = conn.connection.driver_connection
        if not driver.in_transaction:
            driver.execute("BEGIN")

    return engine
