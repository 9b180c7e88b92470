"""Seeing what a service does: logging set-up, an access log line and metrics per request,
`/metrics`, the lag of the service's catch-up consumers (for `/metrics` and `/readyz`), ids and
trace context on outgoing calls, and tracing when it is configured.

`install(app, settings, service)` is called once by `service_app`; a service then declares what
else to watch: `watch_consumer` for a consumer of the log that is not inline (the matchmaking
index), `gauge_on_scrape` for a figure read from the store (the events outbox's depth), and
`instrument_client` for each httpx client it calls another service with.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy import Connection, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics, tracing
from shared.db import Database
from shared.errors import ServiceUnavailable
from shared.eventlog import EventLog
from shared.logging import configure_logging
from shared.settings import CommonSettings
from shared.tables import subscription_checkpoints

log = structlog.get_logger()
access_log = structlog.get_logger("clusterhub.access")

REQUEST_ID = "X-Request-ID"
CORRELATION_ID = "X-Correlation-ID"
CAUSATION_ID = "X-Causation-ID"
# Polled every few seconds by orchestrators and scrapers: counted, but not logged line by line.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass
class Watched:
    """What a service watches beyond its requests: its log consumers and store-read gauges."""

    consumers: dict[str, Callable[[Connection], int]] = field(default_factory=dict)
    gauges: list[tuple[str, str, Callable[[Connection], float]]] = field(default_factory=list)


def install(app: FastAPI, settings: CommonSettings, service: str) -> None:
    """Logging, request metrics and access log, `/metrics`, and tracing when configured."""
    provider = tracing.provider_for(settings, service)
    configure_logging(level=settings.log_level, json=settings.log_json, trace_ids=provider is not None)
    if settings.environment == "production" and settings.database_url.startswith("sqlite"):
        log.warning("settings.sqlite_in_production", service=service,
                    detail="one machine, one writer: fine for a small cluster, no replicas")
    app.state.watched = Watched()
    app.state.tracer_provider = provider
    app.add_middleware(RequestObservingMiddleware, service=service, access_log=settings.access_log)
    app.include_router(router)
    if provider is not None:
        tracing.instrument_app(app, provider)


def watch_consumer(app: FastAPI, name: str, position: Callable[[Connection], int]) -> None:
    """Report `name`'s lag (log head minus `position(conn)`) on /metrics and hold /readyz past the limit."""
    app.state.watched.consumers[name] = position


def gauge_on_scrape(app: FastAPI, name: str, documentation: str, value: Callable[[Connection], float]) -> None:
    """A gauge read from the store on each scrape (in the scrape's one read transaction)."""
    app.state.watched.gauges.append((name, documentation, value))


def instrument_client(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Calls through `client` carry the current request's ids (and trace context, when tracing)."""
    client.event_hooks["request"].append(forward_ids)
    if app.state.tracer_provider is not None:
        tracing.instrument_client(client, app.state.tracer_provider)


async def forward_ids(request: httpx.Request) -> None:
    """httpx request hook: the request and correlation ids of the request being served go along, and
    the request id becomes the callee's causation id, so one user action can be followed across
    services (and into the event metadata each service records)."""
    bound = structlog.contextvars.get_contextvars()
    request_id = bound.get("request_id")
    if request_id is None:
        return  # not serving a request (a background worker): the callee starts its own chain
    request.headers.setdefault(REQUEST_ID, request_id)
    request.headers.setdefault(CORRELATION_ID, bound.get("correlation_id") or request_id)
    request.headers.setdefault(CAUSATION_ID, request_id)


# --------------------------------------------------------------------------------------------
# Per request


class RequestObservingMiddleware:
    """Times each request, counts it by route template and status, and logs one access line.

    Sits inside RequestContextMiddleware, so the ids are bound when the line is written. The
    actor and cluster are the verified token's (`request.state.principal`, set by shared/auth.py),
    never a header's; without a token the line says `anonymous`.
    """

    def __init__(self, app: ASGIApp, service: str, access_log: bool = True) -> None:
        self.app = app
        self.service = service
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            seconds = time.perf_counter() - started
            # The route's template, never the raw path (one series per id); "<none>" when no API
            # route answered: not found, refused before routing, or FastAPI's docs pages.
            route = getattr(scope.get("route"), "path", None) or "<none>"
            metrics.observe_request(self.service, scope["method"], route, status, seconds)
            if self.access_log and route not in QUIET_ROUTES:
                principal = scope.get("state", {}).get("principal")
                access_log.info("http.request", method=scope["method"], route=route, path=scope["path"],
                                status=status, duration_ms=round(seconds * 1000, 2),
                                actor=principal.subject if principal else "anonymous",
                                cluster=principal.cluster if principal else None)


# --------------------------------------------------------------------------------------------
# /metrics and lag

router = APIRouter(tags=["health"])


def _lags(conn: Connection, event_log: EventLog,
          consumers: dict[str, Callable[[Connection], int]]) -> tuple[int, dict[str, int]]:
    # The consumers' positions first: read after the head, a consumer could look ahead of it.
    positions = {name: position(conn) for name, position in consumers.items()}
    head = event_log.head_position(conn)
    return head, {name: max(head - position, 0) for name, position in positions.items()}


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus metrics of this process, with the store-read gauges of its app."""
    db: Database = request.app.state.db
    event_log: EventLog = request.app.state.log
    watched: Watched = request.app.state.watched

    def read(conn: Connection) -> tuple[int, dict[str, int], list[float]]:
        head, lags = _lags(conn, event_log, watched.consumers)
        return head, lags, [value(conn) for _, _, value in watched.gauges]

    try:
        head, lags, values = await db.read(read)
    except Exception as exc:  # the process's own figures are still worth scraping
        log.warning("metrics.store_unreachable", error=str(exc))
        extra = [metrics.gauge(metrics.STORE_UP, "1 when the store answered this scrape", 0)]
    else:
        extra = [metrics.gauge(metrics.STORE_UP, "1 when the store answered this scrape", 1),
                 metrics.gauge(metrics.LOG_HEAD, "Position of the last event in the shared log", head),
                 metrics.gauge(metrics.SUBSCRIPTION_LAG, "Events in the log that a catch-up consumer has not handled",
                               labelled=lags, label="subscription"),
                 *(metrics.gauge(name, documentation, value)
                   for (name, documentation, _), value in zip(watched.gauges, values))]
    body, content_type = metrics.render(request.headers.get("accept"), extra)
    return Response(body, media_type=content_type)


async def check_lag(app: FastAPI) -> None:
    """For /readyz: ServiceUnavailable while a consumer is more than `ready_max_lag` events behind."""
    watched: Watched = app.state.watched
    if not watched.consumers:
        return
    db: Database = app.state.db
    event_log: EventLog = app.state.log
    try:
        _, lags = await db.read(lambda conn: _lags(conn, event_log, watched.consumers))
    except Exception as exc:
        log.warning("readyz.store_unreachable", error=str(exc))
        raise ServiceUnavailable("the store is unreachable") from exc
    limit = app.state.settings.ready_max_lag
    lagging = {name: lag for name, lag in lags.items() if lag > limit}
    if lagging:
        raise ServiceUnavailable("a consumer of the event log is lagging", lagging=lagging, max_lag=limit)


def stored_checkpoint(subscription: str) -> Callable[[Connection], int]:
    """The position a CatchUpSubscription keeps in `subscription_checkpoints`, for `watch_consumer`."""

    def position(conn: Connection) -> int:
        table = subscription_checkpoints
        row = conn.execute(select(table.c.position).where(table.c.subscription == subscription)).fetchone()
        return row[0] if row else 0

    return position
