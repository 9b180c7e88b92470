"""`Database.write` when writes come at once: on SQLite they share a transaction (group commit,
shared/db.py), yet each must keep the outcome it would have had in a transaction of its own."""
from __future__ import annotations

import asyncio
import threading

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from shared.tables import subscription_checkpoints as checkpoints
from tests.conftest import Store


def _insert(name: str, *, wait: threading.Event | None = None, fail: bool = False):  # type: ignore[no-untyped-def]
    def work(conn: Connection) -> str:
        if wait is not None:
            assert wait.wait(10)
        conn.execute(insert(checkpoints).values(subscription=name, position=1, updated_at="now"))
        if fail:
            raise ValueError(name)
        return name

    return work


async def test_writes_waiting_together_each_keep_their_own_outcome(store: Store) -> None:
    db = store.db
    busy = threading.Event()
    # The first write holds the writer until the others are queued behind it: those then go
    # together (on SQLite, one transaction with a savepoint each).
    first = asyncio.create_task(db.write(_insert("first", wait=busy)))
    await asyncio.sleep(0.1)
    names = ["a", "b-raises", "a", "c"]  # the second "a" breaks the primary key
    others = [asyncio.create_task(db.write(_insert(name, fail=name == "b-raises"))) for name in names]
    await asyncio.sleep(0.1)
    busy.set()
    results = await asyncio.gather(first, *others, return_exceptions=True)

    first_result, a, b, a_again, c = results
    assert (first_result, c) == ("first", "c")
    assert isinstance(b, ValueError)
    # The same key twice: one lands, the other is refused (on PostgreSQL they may run in either order).
    assert "a" in (a, a_again)
    assert sum(isinstance(r, IntegrityError) for r in (a, a_again)) == 1
    with db.reading() as conn:
        stored = sorted(conn.execute(select(checkpoints.c.subscription)).scalars())
    assert stored == ["a", "c", "first"]  # "b-raises" inserted its row, then was rolled back alone
