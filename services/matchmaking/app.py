"""The matchmaking service's composition root: settings, store, event log with its projectors, the
recommender's index and its feeder, the events-service client, routes; in the lifespan, the index is
built from the log (replayed from position 0) before the first request, then followed in the
background, and expired opportunities are swept."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime

import anyio
import anyio.to_thread
import httpx
import structlog
from fastapi import FastAPI

from services.matchmaking import api, domain
from services.matchmaking.events_client import EventsClient
from services.matchmaking.feed import SUBSCRIPTION, IndexFeed
from services.matchmaking.projections import PROJECTORS
from services.matchmaking.settings import MatchmakingSettings
from shared.db import Database
from shared.eventlog import EventLog, Metadata
from shared.http import service_app
from shared.leases import run_exclusively
from shared.observability import instrument_client, watch_consumer

log = structlog.get_logger()


def today() -> date:
    return datetime.now(UTC).date()


def create_app(settings: MatchmakingSettings | None = None, *, db: Database | None = None,
               events: httpx.AsyncClient | None = None) -> FastAPI:
    """Build the matchmaking app; a `db` or `events` client passed in stays the caller's to close."""
    settings = settings or MatchmakingSettings()
    owns_db, owns_events = db is None, events is None
    db = db or Database(settings.database_url, pool_size=settings.db_pool_size)
    events = events or httpx.AsyncClient(base_url=settings.events_url,
                                         timeout=httpx.Timeout(settings.events_timeout))
    app = service_app("clusterhub matchmaking", "matchmaking", settings, db, owns_db=owns_db,
                      max_body_bytes=settings.max_body_bytes)
    app.state.log = EventLog(db.dialect, projectors=PROJECTORS)
    app.state.feed = IndexFeed(db)
    watch_consumer(app, SUBSCRIPTION, lambda _: app.state.feed.position)  # on /metrics; /readyz holds past the limit
    instrument_client(app, events)
    app.state.events = EventsClient(events, retries=settings.events_retries, backoff=settings.events_backoff,
                                    retry_after=settings.retry_after)
    app.state.clock = today  # tests replace it to travel in time
    # Scoring is CPU-bound and the machine is shared: two at a time.
    app.state.cpu_limiter = anyio.CapacityLimiter(2)
    app.include_router(api.router)

    shared_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[None]:
        async with shared_lifespan(app_):
            feed: IndexFeed = app_.state.feed
            # The rebuild: an index held in memory starts empty and replays the whole log.
            replayed = await anyio.to_thread.run_sync(feed.catch_up)
            log.info("matchmaking.index.built", events=replayed, organisations=len(feed.index))
            tasks = [asyncio.create_task(feed.follow(settings.index_poll_interval), name="matchmaking-index"),
                     # Every replica keeps its own index; the expiry sweep writes, so one replica runs it.
                     asyncio.create_task(run_exclusively(app_.state.db, "matchmaking.expiry", lambda: _sweep(
                         app_, settings.expiry_sweep_interval)), name="matchmaking-expiry")]
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                if owns_events:
                    await events.aclose()

    app.router.lifespan_context = lifespan
    return app


async def _sweep(app: FastAPI, interval: float) -> None:
    """Record the expiry of opportunities past their last open day, every `interval` seconds."""
    db: Database = app.state.db
    event_log: EventLog = app.state.log
    metadata = Metadata(actor="matchmaking.expiry", service="matchmaking")
    while True:
        try:
            on: date = app.state.clock()
            expired = await db.write(lambda conn: domain.expire_due(conn, event_log, metadata, on=on))
            if expired:
                log.info("matchmaking.opportunities_expired", count=len(expired))
        except Exception:
            log.exception("matchmaking.expiry_sweep_failed")
        await anyio.sleep(interval)
