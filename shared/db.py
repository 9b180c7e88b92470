"""The store: one SQLAlchemy engine over SQLite (embedded default) or PostgreSQL (production).

Database work runs on the synchronous drivers in worker threads, one thread hop per unit of
work: aiosqlite pays a hop per statement, which costs more than SQLite's own commit.

SQLite has one writer at a time and a durable commit costs an fsync, so its writes go to one
writer thread that commits the writes waiting together in one transaction (group commit), each
in a savepoint of its own: a write that fails rolls back alone, as in a transaction of its own.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Any, Literal, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Connection, CursorResult, Engine, Select, bindparam, create_engine, event
from sqlalchemy.sql import ColumnElement
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
            # SQLite has one writer: this process's writes queue for one thread (rather than spin
            # on busy_timeout), which commits those waiting together.
            self._writer: _GroupCommitter | None = _GroupCommitter(self)
        else:
            self.engine = create_engine(
                self.url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, echo=echo
            )
            self._write_limiter = anyio.CapacityLimiter(pool_size)
            self._writer = None
        self._read_limiter = anyio.CapacityLimiter(pool_size)
        # Whether the engine's commit hooks have work to do for the caller (they look at its context;
        # shared/idempotency.py sets this). Such a write begins a SQLAlchemy transaction, in which
        # the hooks run, and commits in a transaction of its own, in the caller's context.
        self.needs_commit_hooks: Callable[[], bool] = _never

    @contextlib.contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction: commits on success, rolls back on any exception."""
        with self.engine.connect() as conn, self.write_transaction(conn):
            yield conn

    def write_transaction(self, conn: Connection) -> WriteTransaction:
        """One write transaction on a connection the caller holds (`writing()` checks one out)."""
        return WriteTransaction(conn, immediate=self.dialect == "sqlite", hooks=self.needs_commit_hooks())

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work(conn)` in one write transaction on a worker thread (on SQLite, maybe one
        shared with other writes waiting at the same time, in a savepoint of its own)."""
        if self._writer is not None:
            return await self._writer.submit(work, alone=self.needs_commit_hooks())

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
        if self._writer is not None:
            self._writer.stop()
        self.engine.dispose()


class ByIds:
    """`query` for the rows whose `column` is one of some ids, its statements built once.

    A hot path's statement is best built once: building costs SQLAlchemy more than running it.
    An expanding `IN` is still rendered again at every execution, so the usual lists of one or two
    ids (a record, a meeting's two sides) get fixed `IN` lists; longer ones the expanding one."""

    FIXED = (1, 2)

    def __init__(self, query: Select[Any], column: ColumnElement[Any]) -> None:
        self.fixed = {count: query.where(column.in_([bindparam(f"id{i}") for i in range(count)]))
                      for count in self.FIXED}
        self.expanding = query.where(column.in_(bindparam("ids", expanding=True)))

    def execute(self, conn: Connection, ids: Sequence[Any]) -> CursorResult[Any]:
        fixed = self.fixed.get(len(ids))
        if fixed is not None:
            return conn.execute(fixed, {f"id{i}": value for i, value in enumerate(ids)})
        return conn.execute(self.expanding, {"ids": list(ids)})


def _never() -> bool:
    return False


@dataclass(eq=False)
class _Job:
    work: Callable[[Connection], Any]
    alone: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    result: Any = None
    error: BaseException | None = None
    done: bool = False


class _GroupCommitter:
    """SQLite's writer thread: takes the writes waiting, runs them in one transaction, each in a
    savepoint, and commits them with one fsync. A write that raises is rolled back to its savepoint
    and gets its exception; the others commit. If the shared transaction fails as a whole (the
    lock, the disk, the commit), each of its writes runs again in a transaction of its own, so
    that it gets its own outcome. A write alone in the queue, or one that must commit alone (see
    `Database.needs_commit_hooks`), runs in a plain transaction of its own, in its caller's context.

    Callers wait like `anyio.to_thread.run_sync` callers: a cancelled caller still waits for its
    write to end, so nothing it started runs on after it (its commit hooks, its context)."""

    MAX_GROUP = 64  # bounds how long one transaction holds the write lock

    def __init__(self, db: Database) -> None:
        self.db = db
        self.queue: SimpleQueue[_Job | None] = SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    async def submit(self, work: Callable[[Connection], T], *, alone: bool) -> T:
        loop = asyncio.get_running_loop()
        job = _Job(work, alone, loop, loop.create_future())
        self.queue.put(job)
        if self.thread is None:
            self._start()
        with anyio.CancelScope(shield=True):
            return await job.future  # type: ignore[no-any-return]

    def _start(self) -> None:
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
                self.thread.start()

    def stop(self) -> None:
        with self.lock:
            thread, self.thread = self.thread, None
        if thread is not None:
            self.queue.put(None)
            thread.join()

    def _run(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            jobs = [job]
            while len(jobs) < self.MAX_GROUP and not self.queue.empty():
                more = self.queue.get()
                if more is None:
                    self.queue.put(None)  # stop after these
                    break
                jobs.append(more)
            try:
                self._commit(jobs)
            except BaseException as exc:  # a bug here must not stop the writer: later writes would hang
                for job in jobs:
                    if not job.done:
                        job.error, job.done = exc, True
            finally:
                self._answer(jobs)

    def _commit(self, jobs: list[_Job]) -> None:
        group: list[_Job] = []
        for job in jobs:
            if job.alone:
                self._commit_group(group)
                group = []
                self._commit_alone(job)
            else:
                group.append(job)
        self._commit_group(group)

    def _commit_alone(self, job: _Job) -> None:
        def run() -> Any:
            with self.db.writing() as conn:
                return job.work(conn)

        try:
            job.result, job.error = job.context.run(run), None
        except BaseException as exc:
            job.result, job.error = None, exc
        job.done = True

    def _commit_group(self, jobs: list[_Job]) -> None:
        if len(jobs) <= 1:
            for job in jobs:
                self._commit_alone(job)
            return
        try:
            with self.db.writing() as conn:
                driver = conn.connection.driver_connection
                for job in jobs:
                    driver.execute("SAVEPOINT write")
                    try:
                        job.result, job.error = job.context.run(job.work, conn), None
                    except BaseException as exc:
                        job.result, job.error = None, exc
                        driver.execute("ROLLBACK TO write")
                    driver.execute("RELEASE write")
            for job in jobs:
                job.done = True
        except BaseException:
            for job in jobs:
                self._commit_alone(job)

    @staticmethod
    def _answer(jobs: list[_Job]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in jobs:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, answered in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed
                loop.call_soon_threadsafe(_settle, answered)


def _settle(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)


class WriteTransaction:
    """A write transaction begun and ended on the driver connection: SQLAlchemy's own
    begin/commit bookkeeping costs more CPU than the event log's append itself.

    Statements run through the SQLAlchemy Connection still work: SQLAlchemy then begins its
    own transaction on top of the driver's (see `_on_begin`), committed or rolled back here.
    """

    __slots__ = ("conn", "driver", "hooks", "immediate")

    def __init__(self, conn: Connection, *, immediate: bool, hooks: bool = True) -> None:
        self.conn = conn
        self.driver = conn.connection.driver_connection
        self.immediate = immediate
        self.hooks = hooks  # False: the engine's commit hooks have nothing to do for this one

    def __enter__(self) -> Connection:
        if self.immediate:
            # SQLite: IMMEDIATE takes the write lock up front (see `_on_begin`). psycopg begins
            # a transaction by itself before the first statement.
            self.driver.execute("BEGIN IMMEDIATE")
        if self.hooks and self.conn.dispatch.commit:
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
