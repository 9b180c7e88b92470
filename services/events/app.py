"""The events service's composition root: settings, store, registry client, event log with its
projectors (and the e-mail outbox's), routes, and the outbox worker in the lifespan."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
from fastapi import FastAPI
from sqlalchemy import Connection, func, select

from services.events import api, notifications
from services.events.projections import PROJECTORS
from services.events.registry_client import RegistryClient
from services.events.settings import EventsSettings
from shared.db import Database
from shared.eventlog import EventLog
from shared.http import service_app
from shared.metrics import OUTBOX_DEPTH
from shared.observability import gauge_on_scrape, instrument_client


def create_app(settings: EventsSettings | None = None, *, db: Database | None = None,
               registry: httpx.AsyncClient | None = None) -> FastAPI:
    """Build the events app; a `db` or `registry` client passed in stays the caller's to close."""
    settings = settings or EventsSettings()
    owns_db, owns_registry = db is None, registry is None
    db = db or Database(settings.database_url, pool_size=settings.db_pool_size)
    registry = registry or httpx.AsyncClient(base_url=settings.registry_url,
                                             timeout=httpx.Timeout(settings.registry_timeout))
    app = service_app("clusterhub events", "events", settings, db, owns_db=owns_db,
                      max_body_bytes=settings.max_body_bytes)
    app.state.log = EventLog(db.dialect, projectors=PROJECTORS)
    instrument_client(app, registry)
    gauge_on_scrape(app, OUTBOX_DEPTH, "E-mails in the outbox waiting to be sent", _outbox_depth)
    app.state.registry = RegistryClient(registry, retries=settings.registry_retries,
                                        backoff=settings.registry_backoff, retry_after=settings.retry_after)
    # One scheduler search at a time: it is CPU-bound and the machine is shared.
    app.state.scheduler_limiter = anyio.CapacityLimiter(1)
    app.include_router(api.router)

    shared_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[None]:
        async with shared_lifespan(app_):
            notifications.start_worker(app_)
            try:
                yield
            finally:
                await notifications.stop_worker(app_)
                if owns_registry:
                    await registry.aclose()

    app.router.lifespan_context = lifespan
    return app


def _outbox_depth(conn: Connection) -> int:
    outbox = notifications.outbox
    return conn.execute(select(func.count()).select_from(outbox)
                        .where(outbox.c.status == notifications.PENDING)).scalar_one()
