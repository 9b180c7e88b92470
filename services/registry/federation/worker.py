"""Federation's background work in the registry process: the feed builder and webhook deliveries.

Each runs as its own asyncio task under a lease (shared/leases.py), so with several registry
replicas exactly one builds the feed and one delivers (a standby takes over when the holder dies).
Neither touches a request's path: the API reads the rows they write. The builder is a catch-up
consumer, so a replica that takes over resumes at the committed checkpoint.
"""
from __future__ import annotations

import asyncio
import contextlib

import anyio.to_thread
import structlog
from fastapi import FastAPI
from sqlalchemy import Connection, func, select

from services.registry.federation import feed
from services.registry.federation.tables import deliveries
from services.registry.federation.webhooks import WebhookWorker, WorkerSettings
from services.registry.settings import RegistrySettings
from shared.db import Database
from shared.eventlog import EventLog
from shared.leases import run_exclusively
from shared.observability import gauge_on_scrape
from shared.subscriptions import CatchUpSubscription

log = structlog.get_logger()
FEED_LEASE, WEBHOOKS_LEASE = "registry.federation.feed", "registry.federation.webhooks"


class FederationWorkers:
    def __init__(self, db: Database, settings: RegistrySettings) -> None:
        self.db, self.settings = db, settings
        self.feed = feed.subscription(db, settings.federation_source)
        self.webhooks = WebhookWorker(db, WorkerSettings(
            timeout=settings.webhook_timeout, max_attempts=settings.webhook_max_attempts,
            backoff=settings.webhook_backoff, backoff_max=settings.webhook_backoff_max,
            poll_seconds=settings.webhook_poll, private_targets=settings.private_webhook_targets_allowed))
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def _behind(self, conn: Connection) -> bool:
        return EventLog(self.db.dialect).head_position(conn) > self.feed.checkpoint(conn)

    async def build_feed(self) -> None:
        while not self.stopping.is_set():
            try:
                # A read first: an idle builder must not take SQLite's write lock at every poll.
                if await self.db.read(self._behind):
                    await anyio.to_thread.run_sync(self.feed.catch_up)
            except Exception:
                # Another builder won a race on PostgreSQL, or the store is down: the batch rolled back.
                log.exception("federation.feed_batch_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.settings.federation_feed_poll)

    async def deliver(self) -> None:
        await self.webhooks.run(self.stopping)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(run_exclusively(self.db, FEED_LEASE, self.build_feed,
                                                          stopping=self.stopping), name="federation-feed"),
                      asyncio.create_task(run_exclusively(self.db, WEBHOOKS_LEASE, self.deliver,
                                                          stopping=self.stopping), name="federation-webhooks")]

    async def stop(self, grace_seconds: float = 10.0) -> None:
        self.stopping.set()
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.webhooks.aclose()


def install(app: FastAPI, db: Database, settings: RegistrySettings) -> None:
    """Start the workers with the app and stop them before the store closes; their backlog on /metrics.

    Not on /readyz: the work runs in one replica, and a stuck builder must not take every replica's
    API out of service (alert on the gauges instead)."""
    checkpoint = CatchUpSubscription(feed.SUBSCRIPTION, db, EventLog(db.dialect), lambda *_: None).checkpoint

    def feed_lag(conn: Connection) -> int:
        return max(0, EventLog(db.dialect).head_position(conn) - checkpoint(conn))

    def pending(conn: Connection) -> int:
        return conn.execute(select(func.count()).select_from(deliveries)
                            .where(deliveries.c.status == "pending")).scalar_one()

    gauge_on_scrape(app, "clusterhub_federation_feed_lag", "Log events the federation feed builder has yet to read",
                    feed_lag)
    gauge_on_scrape(app, "clusterhub_federation_webhook_pending", "Webhook deliveries waiting to be sent", pending)
    shared_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: FastAPI):  # type: ignore[no-untyped-def]
        async with shared_lifespan(app_):
            workers = app_.state.federation = FederationWorkers(db, settings)
            if settings.federation_workers:
                workers.start()
            try:
                yield
            finally:
                await workers.stop()

    app.router.lifespan_context = lifespan
