"""shared/leases.py in one process: one holder at a time, handover on release, loss cancels the work."""
from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError
from sqlalchemy import text, update

from shared.db import Database
from shared.leases import LeaseSettings, lease_holder, run_exclusively, worker_leases
from shared.metrics import LEASE_HELD
from tests.conftest import Store

FAST = LeaseSettings(_env_file=None, ttl_seconds=0.9, check_seconds=0.3)


class Work:
    """A worker that notes when it runs, and runs until told to stop or cancelled."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log
        self.stop = asyncio.Event()
        self.running = asyncio.Event()

    async def __call__(self) -> None:
        self.log.append(f"{self.name} started")
        self.running.set()
        try:
            await self.stop.wait()
        except asyncio.CancelledError:
            self.log.append(f"{self.name} cancelled")
            raise
        finally:
            self.running.clear()
        self.log.append(f"{self.name} finished")


async def until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_one_holder_at_a_time_and_the_other_takes_over_when_it_lets_go(store: Store) -> None:
    other_db = Database(store.db.url, pool_size=2)  # a second "replica": its own pool
    log: list[str] = []
    first, second = Work("first", log), Work("second", log)
    try:
        one = asyncio.create_task(run_exclusively(store.db, "test.worker", first, holder="replica-1",
                                                  retry_interval=0.05, settings=FAST))
        await until(first.running.is_set)
        two = asyncio.create_task(run_exclusively(other_db, "test.worker", second, holder="replica-2",
                                                  retry_interval=0.05, settings=FAST))
        await asyncio.sleep(1.0)  # several retries and renewals
        assert log == ["first started"]
        assert await lease_holder(store.db, "test.worker") == "replica-1"

        first.stop.set()  # the work returns: the lease is released and the call returns
        await asyncio.wait_for(one, 5)
        await until(second.running.is_set, timeout=2)
        assert await lease_holder(store.db, "test.worker") == "replica-2"

        two.cancel()  # cancelling the call cancels the work and releases the lease
        await asyncio.gather(two, return_exceptions=True)
        assert log == ["first started", "first finished", "second started", "second cancelled"]
        assert await lease_holder(store.db, "test.worker") is None
        assert LEASE_HELD.labels("test.worker")._value.get() == 0
    finally:
        other_db.dispose()


async def test_a_lost_lease_cancels_the_work_and_it_is_sought_again(store: Store) -> None:
    log: list[str] = []
    work = Work("worker", log)
    task = asyncio.create_task(run_exclusively(store.db, "test.lost", work, holder="replica-1",
                                               retry_interval=0.05, settings=FAST))
    try:
        await until(work.running.is_set)
        assert LEASE_HELD.labels("test.lost")._value.get() == 1
        admin = store.admin()
        try:
            with admin.writing() as conn:
                if store.backend == "postgres":
                    # The holder's session dies, as when PostgreSQL restarts or the network drops it.
                    conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      "WHERE application_name = 'replica-1'"))
                else:
                    # Someone else took it (as after the holder stalled past its expiry).
                    conn.execute(update(worker_leases).values(holder="intruder"))
        finally:
            admin.dispose()
        await until(lambda: "worker cancelled" in log, timeout=5)
        # Sought again: at once on PostgreSQL, once the intruder's row expires unrenewed on SQLite.
        await until(lambda: log.count("worker started") == 2, timeout=5)
        assert await lease_holder(store.db, "test.lost") == "replica-1"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_stopping_ends_a_standby_at_once(store: Store) -> None:
    log: list[str] = []
    holder, standby = Work("holder", log), Work("standby", log)
    stopping = asyncio.Event()
    one = asyncio.create_task(run_exclusively(store.db, "test.stop", holder, retry_interval=0.05, settings=FAST))
    try:
        await until(holder.running.is_set)
        two = asyncio.create_task(run_exclusively(store.db, "test.stop", standby, retry_interval=5,
                                                  settings=FAST, stopping=stopping))
        await asyncio.sleep(0.2)
        stopping.set()
        await asyncio.wait_for(two, 1)
        assert log == ["holder started"]
    finally:
        one.cancel()
        await asyncio.gather(one, return_exceptions=True)


def test_settings_keep_renewals_well_inside_the_lease() -> None:
    with pytest.raises(ValidationError):
        LeaseSettings(_env_file=None, ttl_seconds=5, check_seconds=2)
