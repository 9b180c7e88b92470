"""Leases: a background worker with side effects runs in one replica at a time, and another
replica takes over when the holder dies.

    stopping = asyncio.Event()
    task = asyncio.create_task(run_exclusively(db, "events.outbox", worker.run, stopping=stopping))
    ...
    stopping.set(); <tell the work to stop>; await task

API
- `run_exclusively(db, name, work, *, holder=None, retry_interval=1.0, settings=None, stopping=None)`
  waits until this process holds the lease `name`, runs `work()`, and while it runs checks the
  lease every `settings.check_seconds`. Lease lost: `work` is cancelled, and the lease is sought
  again. `work` returns: the lease is released and `run_exclusively` returns. `work` raises: it
  is logged, the lease released, and after `retry_interval` sought again (a supervisor, not a
  crash). `stopping` set while waiting for the lease: return at once; while holding it, nothing
  is cancelled: the work is expected to see its own stop signal and return (finishing what it
  has in hand), and the caller may cancel the task after a grace period. Cancelling the task
  cancels the work and releases the lease.
- `lease_holder(db, name) -> str | None`: who holds `name` now, from any process (for operators).
- `default_holder()`: `host:pid:random`, the holder id used unless one is given (the outbox
  writes it into `claimed_by`, so a log line or a row names the replica).
- Metric `clusterhub_worker_lease_held{worker=name}`: 1 in the process holding the lease, 0 in
  the others; summed over replicas it must be 0 or 1 (alert when it is 0 for long, or above 1).
- `LeaseSettings` (CLUSTERHUB_LEASE_*): `ttl_seconds` (10) and `check_seconds` (2).

PostgreSQL (several machines): a session-level `pg_try_advisory_lock(key)`, `key` a 64-bit hash
of the name, taken on a connection of its own held for as long as the work runs. When the
holder dies, even by SIGKILL or a pulled cable, its session ends and PostgreSQL frees the lock at
once: a standby retrying every `retry_interval` takes over within about a second of the server
noticing. The holder checks every `check_seconds` that its session still holds the lock (a
restarted server or a dropped connection loses it); TCP keepalives and `tcp_user_timeout` on
that connection bound how long a dead network goes unnoticed. So after losing its connection a
holder may work on for at most about `check_seconds` + 10 s while a standby already has the
lock; the outbox's per-row claims and "sent once" outcome events cover that window. The lock
needs a direct session: not a pgbouncer in transaction mode. A frozen (not dead) holder keeps its
session and the lock: the liveness probe (`/healthz`) restarting it is what frees it.

SQLite (one machine): a row in `worker_leases` (name, holder, acquired_at, expires_at), taken
when absent, expired or already ours, and renewed every `check_seconds` to `ttl_seconds` ahead;
the holder stops its work if it cannot renew before its own expiry. A dead holder's lease is
taken over when it expires, after at most `ttl_seconds`. Why a row rather than a file lock
(which the kernel frees at once when the holder dies): the row needs no file beside the
database (a read-only or shared directory, a `:memory:` store), anyone can read who holds it and
until when in the store itself, and it is a lease, not a lock: a frozen holder (SIGSTOP, an
event loop blocked) loses it by expiry, while it would keep a file lock for ever. The cost is a
takeover after up to `ttl_seconds` instead of at once, and one small write every `check_seconds`.
Wall-clock time compares across processes, which on one machine share one clock.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio.to_thread
import psycopg
import structlog
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Column, Connection, Float, String, Table, delete, insert, select, update
from sqlalchemy.engine import make_url

from shared.db import Database
from shared.metrics import LEASE_HELD
from shared.tables import metadata

log = structlog.get_logger()

# Migration 0010 creates exactly this; used on SQLite only (PostgreSQL uses advisory locks).
worker_leases = Table(
    "worker_leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("acquired_at", Float, nullable=False),  # Unix time, seconds
    Column("expires_at", Float, nullable=False),
)


class LeaseSettings(BaseSettings):
    """How long a lease lasts without renewal (SQLite) and how often the holder checks it (both)."""

    model_config = SettingsConfigDict(env_prefix="CLUSTERHUB_LEASE_", env_file=".env", env_ignore_empty=True,
                                      extra="ignore")

    ttl_seconds: float = Field(default=10.0, gt=0)
    check_seconds: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _renewed_in_time(self) -> LeaseSettings:
        # Two missed renewals in a row must still leave the lease ours.
        if self.ttl_seconds < 3 * self.check_seconds:
            raise ValueError("ttl_seconds must be at least 3 x check_seconds")
        return self


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def lock_key(name: str) -> int:
    """The advisory lock key of a lease: a signed 64-bit hash of its name."""
    digest = hashlib.blake2b(f"clusterhub.lease:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lease_holder(db: Database, name: str) -> str | None:
    """Who holds the lease `name` now (None: nobody); on PostgreSQL as its connection's application_name."""
    if db.dialect == "postgresql":
        return await db.read(lambda conn: _advisory_holder(conn, lock_key(name)))

    def read(conn: Connection) -> str | None:
        row = conn.execute(select(worker_leases.c.holder, worker_leases.c.expires_at)
                           .where(worker_leases.c.name == name)).first()
        return row.holder if row is not None and row.expires_at > time.time() else None

    return await db.read(read)


async def run_exclusively(db: Database, name: str, work: Callable[[], Awaitable[None]], *,
                          holder: str | None = None, retry_interval: float = 1.0,
                          settings: LeaseSettings | None = None, stopping: asyncio.Event | None = None) -> None:
    """Run `work()` while this process holds the lease `name`, once across processes; see the module."""
    settings = settings or LeaseSettings()
    holder = holder or default_holder()
    lease: _Lease = (_AdvisoryLock(db, name, holder, settings) if db.dialect == "postgresql"
                     else _TableLease(db, name, holder, settings))
    held = LEASE_HELD.labels(name)
    held.set(0)
    said = ""  # what was last logged while waiting: once per change, not once per retry
    try:
        while stopping is None or not stopping.is_set():
            try:
                acquired = await lease.try_acquire()
            except Exception as exc:  # the store is down: keep trying
                acquired = False
                if said != "unreachable":
                    log.warning("lease.store_unreachable", lease=name, holder=holder, error=str(exc))
                    said = "unreachable"
            else:
                if not acquired and said != "standby":
                    log.info("lease.standby", lease=name, holder=holder)
                    said = "standby"
            if not acquired:
                await _pause(stopping, retry_interval)
                continue
            said = ""
            log.info("lease.acquired", lease=name, holder=holder)
            held.set(1)
            try:
                outcome = await _hold(lease, work)
            finally:
                held.set(0)
                await lease.release()
            log.info("lease.released", lease=name, holder=holder, outcome=outcome)
            if outcome == "done":
                return
            await _pause(stopping, retry_interval)
    finally:
        await lease.close()


async def _hold(lease: _Lease, work: Callable[[], Awaitable[None]]) -> str:
    """Run `work` until it ends ("done", "failed") or the lease is lost ("lost")."""
    work_task = asyncio.ensure_future(work())
    watch_task = asyncio.create_task(_watch(lease))
    try:
        await asyncio.wait({work_task, watch_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when we are cancelled: the work never outlives the lease
        for task in (work_task, watch_task):
            task.cancel()
        await asyncio.wait({work_task, watch_task})
    if work_task.cancelled():
        log.warning("lease.lost", lease=lease.name, holder=lease.holder)
        return "lost"
    if (exc := work_task.exception()) is not None:
        log.error("lease.work_failed", lease=lease.name, holder=lease.holder, exc_info=exc)
        return "failed"
    return "done"


async def _watch(lease: _Lease) -> None:
    """Returns when the lease is no longer ours."""
    while True:
        await asyncio.sleep(lease.settings.check_seconds)
        if not await lease.check():
            return


async def _pause(stopping: asyncio.Event | None, seconds: float) -> None:
    if stopping is None:
        await asyncio.sleep(seconds)
        return
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        pass


async def _within(seconds: float, work: Awaitable[Any]) -> Any:
    """Await `work`, given up on (not waited for) after `seconds`: a hung store must not hang us."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.wait_for(asyncio.shield(task), max(seconds, 0.01))
    except TimeoutError:
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # nobody waits: no warning
        raise


class _Lease(Protocol):
    name: str
    holder: str
    settings: LeaseSettings

    async def try_acquire(self) -> bool: ...
    async def check(self) -> bool: ...
    async def release(self) -> None: ...
    async def close(self) -> None: ...


# --------------------------------------------------------------------------------------------
# PostgreSQL: an advisory lock on a connection of its own


def _advisory_parts(key: int) -> tuple[int, int]:
    """pg_locks shows a bigint advisory key as classid (high 32 bits) and objid (low 32 bits)."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


_HELD_BY = """
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = CAST(CAST(%(high)s AS bigint) AS oid) AND l.objid = CAST(CAST(%(low)s AS bigint) AS oid)
"""


def _advisory_holder(conn: Connection, key: int) -> str | None:
    high, low = _advisory_parts(key)
    row = conn.exec_driver_sql(f"SELECT a.application_name {_HELD_BY}", {"high": high, "low": low}).first()
    return row[0] if row else None


class _AdvisoryLock:
    def __init__(self, db: Database, name: str, holder: str, settings: LeaseSettings) -> None:
        self.name, self.holder, self.settings = name, holder, settings
        self.key = lock_key(name)
        self._conninfo = make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn: psycopg.Connection[Any] | None = None

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=5,
            # Seen in pg_stat_activity, which is how lease_holder() names the holder (63 bytes at most).
            application_name=self.holder[:63],
            # A dead peer or network is noticed within seconds, not the kernel's two hours.
            keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3, tcp_user_timeout=10_000,
            options="-c statement_timeout=5000")

    def _try_lock(self) -> bool:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        try:
            return bool(self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0])
        except psycopg.Error:
            self._drop()
            raise

    def _still_held(self) -> bool:
        if self._conn is None:
            return False
        high, low = _advisory_parts(self.key)
        row = self._conn.execute(f"SELECT count(*) {_HELD_BY} AND l.pid = pg_backend_pid()",
                                 {"high": high, "low": low}).fetchone()
        return bool(row and row[0])

    def _unlock(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a broken connection: nothing more to do
                pass

    async def try_acquire(self) -> bool:
        # Waited for, even when cancelled: a lock taken after we stopped listening would never be let go.
        # connect_timeout and statement_timeout bound the wait.
        return await anyio.to_thread.run_sync(self._try_lock)

    async def check(self) -> bool:
        try:
            if await _within(self.settings.check_seconds * 2, anyio.to_thread.run_sync(self._still_held)):
                return True
        except Exception as exc:
            log.warning("lease.check_failed", lease=self.name, holder=self.holder, error=str(exc))
        # Lost, or cannot tell: either way the session is suspect; a fresh one is made to try again.
        conn, self._conn = self._conn, None
        if conn is not None:
            # Not waited for: a hung thread may still be using it.
            asyncio.get_running_loop().run_in_executor(None, conn.close)
        return False

    async def release(self) -> None:
        try:
            await _within(5, anyio.to_thread.run_sync(self._unlock))
        except Exception as exc:  # closing the session frees the lock anyway
            log.warning("lease.unlock_failed", lease=self.name, holder=self.holder, error=str(exc))
            await self.close()

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self._drop)


# --------------------------------------------------------------------------------------------
# SQLite: a row with an expiry, renewed


class _TableLease:
    def __init__(self, db: Database, name: str, holder: str, settings: LeaseSettings) -> None:
        self.db, self.name, self.holder, self.settings = db, name, holder, settings
        self._valid_until = 0.0  # time.monotonic() by which a renewal must have succeeded

    def _acquire(self, conn: Connection) -> bool:
        # The write transaction is BEGIN IMMEDIATE: one contender at a time reads and takes the row.
        now = time.time()
        c = worker_leases.c
        row = conn.execute(select(c.holder, c.expires_at).where(c.name == self.name)).first()
        if row is not None and row.holder != self.holder and row.expires_at > now:
            return False
        values = {"holder": self.holder, "acquired_at": now, "expires_at": now + self.settings.ttl_seconds}
        if row is None:
            conn.execute(insert(worker_leases).values(name=self.name, **values))
        else:
            conn.execute(update(worker_leases).where(c.name == self.name).values(**values))
        return True

    def _renew(self, conn: Connection) -> bool:
        c = worker_leases.c
        return conn.execute(update(worker_leases).where(c.name == self.name, c.holder == self.holder)
                            .values(expires_at=time.time() + self.settings.ttl_seconds)).rowcount == 1

    def _delete(self, conn: Connection) -> None:
        c = worker_leases.c
        conn.execute(delete(worker_leases).where(c.name == self.name, c.holder == self.holder))

    async def try_acquire(self) -> bool:
        started = time.monotonic()
        if await self.db.write(self._acquire):
            self._valid_until = started + self.settings.ttl_seconds
            return True
        return False

    async def check(self) -> bool:
        started = time.monotonic()
        try:
            renewed = await _within(self._valid_until - started, self.db.write(self._renew))
        except Exception as exc:  # locked or failing store: ours until the lease would expire
            log.warning("lease.renew_failed", lease=self.name, holder=self.holder, error=str(exc))
            # Stop before the next check could come too late.
            return time.monotonic() + self.settings.check_seconds < self._valid_until
        if renewed:
            self._valid_until = started + self.settings.ttl_seconds
        return renewed

    async def release(self) -> None:
        try:
            await _within(5, self.db.write(self._delete))
        except Exception as exc:  # it expires by itself
            log.warning("lease.release_failed", lease=self.name, holder=self.holder, error=str(exc))

    async def close(self) -> None:
        return None
