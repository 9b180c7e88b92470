"""Catch-up subscriptions and projection rebuilds: consumers of the log beyond the inline path.

A subscription keeps a checkpoint (the last position it processed) in
`subscription_checkpoints`. Each batch of events is handled and the checkpoint moved in one
write transaction, so an event's effects and "I processed it" commit together: after a crash
the consumer resumes exactly after the last committed batch, never skipping or repeating one.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anyio
import structlog
from sqlalchemy import Connection, delete, insert, select, update

from shared.db import Database
from shared.eventlog import EventLog, Projector, RecordedEvent, utc_now_text
from shared.tables import subscription_checkpoints

log = structlog.get_logger()

Handler = Callable[[Connection, RecordedEvent], None]


@dataclass
class CatchUpSubscription:
    name: str
    db: Database
    log: EventLog
    handler: Handler
    event_types: Sequence[str] | None = None
    batch_size: int = 500

    def checkpoint(self, conn: Connection) -> int:
        return self._stored_checkpoint(conn) or 0

    def _stored_checkpoint(self, conn: Connection) -> int | None:
        table = subscription_checkpoints
        row = conn.execute(select(table.c.position).where(table.c.subscription == self.name)).fetchone()
        return row[0] if row else None

    def process_batch(self, conn: Connection) -> int:
        """Handle the next batch after the checkpoint in the caller's write transaction."""
        stored = self._stored_checkpoint(conn)
        after = stored or 0
        # Read the head first: on PostgreSQL each statement sees newer commits, and an event
        # committed between a filtered read and a later head read would be stepped over.
        head = self.log.head_position(conn)
        if head <= after:
            return 0
        events = self.log.read(conn, after=after, up_to=head, limit=self.batch_size, event_types=self.event_types)
        for event in events:
            self.handler(conn, event)
        complete = len(events) < self.batch_size
        self._save_checkpoint(conn, stored, head if complete else events[-1].position)
        return len(events)

    def _save_checkpoint(self, conn: Connection, stored: int | None, position: int) -> None:
        table = subscription_checkpoints
        values = {"position": position, "updated_at": utc_now_text()}
        if stored is None:
            conn.execute(insert(table).values(subscription=self.name, **values))
        else:
            conn.execute(update(table).where(table.c.subscription == self.name).values(**values))

    def catch_up(self) -> int:
        """Process everything available now; returns how many events were handled."""
        total = 0
        while True:
            with self.db.writing() as conn:
                handled = self.process_batch(conn)
            total += handled
            if handled == 0:
                return total

    async def run(self, *, poll_interval: float = 0.2) -> None:
        """Follow the log until cancelled."""
        while True:
            handled = await anyio.to_thread.run_sync(self.catch_up)
            if handled:
                log.debug("subscription.caught_up", subscription=self.name, handled=handled)
            await anyio.sleep(poll_interval)


def rebuild_projections(
    db: Database, log_: EventLog, projectors: Sequence[Projector], *, progress: Callable[[int], None] | None = None
) -> int:
    """Clear the projectors' tables and replay the whole log through them, in one transaction.

    The tables are read models, not history: clearing them loses nothing the log does not hold.
    """
    count = 0
    with db.writing() as conn:
        for projector in projectors:
            for table in reversed(projector.tables):
                conn.execute(delete(table))
        for event in log_.iterate(conn):
            for projector in projectors:
                if projector.handles(event.event_type):
                    projector.apply(conn, event)
            count += 1
            if progress and count % 1000 == 0:
                progress(count)
    if progress:
        progress(count)
    return count
