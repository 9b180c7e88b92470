"""The events service's composition root: settings, store, registry client, event log with its
projectors (and the e-mail outbox's), routes, and the outbox worker in the lifespan.

The outbox worker runs in one replica at a time (shared/leases.py, lease "events.outbox"); the
other replicas stand by and one takes over when the holder dies."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import httpx
from fastapi import FastAPI
from sqlalchemy import Connection, func, select, update
import structlog

from services.events import api, federation, notifications
from services.events.projections import PROJECTORS
from services.events.registry_client import RegistryClient
from services.events.settings import EventsSettings
from shared.db import Database
from shared.eventlog import EventLog
from shared.http import service_app
from shared.leases import LeaseSettings, default_holder, run_exclusively
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
    app.include_router(federation.router)  # partner clusters' registrations for joint events

    shared_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[None]:
        async with shared_lifespan(app_):
            stop_mail = _start_mail(app_)
            try:
                yield
            finally:
                await stop_mail()
                if owns_registry:
                    await registry.aclose()

    app.router.lifespan_context = lifespan
    return app


OUTBOX_LEASE = "events.outbox"
log = structlog.get_logger()


def _start_mail(app: FastAPI) -> Callable[[], Awaitable[None]]:
    """Deliver the outbox in the background under the lease; returns how to stop (gracefully)."""
    smtp = getattr(app.state, "smtp_settings", None) or notifications.SmtpSettings()
    if not smtp.enabled:
        log.info("outbox.delivery_disabled")
        return _nothing
    db: Database = app.state.db
    holder = default_holder()
    worker = notifications.OutboxWorker(db, smtp, name=holder)
    stopping = asyncio.Event()

    async def deliver() -> None:
        await db.write(lambda conn: _release_claims_of_others(conn, holder))
        await worker.run()

    task = asyncio.create_task(run_exclusively(db, OUTBOX_LEASE, deliver, holder=holder,
                                               settings=LeaseSettings(), stopping=stopping))

    async def stop() -> None:
        stopping.set()
        await worker.stop()  # run() finishes and records the message in hand, hands back the rest, returns
        try:
            await asyncio.wait_for(task, smtp.timeout_seconds * 4 + 5)
        except TimeoutError:  # wait_for cancelled it: the lease is released all the same
            log.warning("outbox.stop_timed_out", worker=holder)

    return stop


async def _nothing() -> None:
    return None


def _release_claims_of_others(conn: Connection, holder: str) -> int:
    """Taking over: rows another worker claimed go back to pending now, not when its claim expires.

    We hold the lease, so that worker died or lost it. Rows it recorded as sent are no longer
    pending and stay sent; the one it may have handed to SMTP without recording goes again,
    under the same Message-ID (at-least-once at that single point).
    """
    o = notifications.outbox.c
    released = conn.execute(update(notifications.outbox)
                            .where(o.status == notifications.PENDING, o.claimed_by.is_not(None),
                                   o.claimed_by != holder)
                            .values(claimed_by=None, claimed_until=None)).rowcount
    if released:
        log.warning("outbox.claims_taken_over", worker=holder, rows=released)
    return released


def _outbox_depth(conn: Connection) -> int:
    outbox = notifications.outbox
    return conn.execute(select(func.count()).select_from(outbox)
                        .where(outbox.c.status == notifications.PENDING)).scalar_one()
