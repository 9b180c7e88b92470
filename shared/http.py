"""What every service's HTTP app shares: request ids, request metadata, If-Match, body limit, health.

`service_app()` builds the FastAPI app with all of it; a service adds its routers to that.
"""
from __future__ import annotations

import gc
import json
import os
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio.to_thread
import structlog
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import CurrentPrincipal
from shared.db import Database
from shared.errors import (
    InvalidInput,
    PreconditionRequired,
    ServiceUnavailable,
    install_problem_handlers,
    problem_response,
)
from shared.eventlog import EventLog, Metadata
from shared.idempotency import IdempotencyKeys, IdempotencyMiddleware
from shared.limits import install_limits
from shared.migrate import pending
from shared.observability import check_lag
from shared.observability import install as install_observability
from shared.settings import CommonSettings

__all__ = ["IfMatch", "OptionalIfMatch", "RequestMetadata", "etag", "install_problem_handlers", "problems",
           "service_app"]

log = structlog.get_logger()

REQUEST_ID = "X-Request-ID"
CORRELATION_ID = "X-Correlation-ID"
MIB = 1024 * 1024
# Ids from clients end up in logs, events and response headers: accept only plain tokens.
_TOKEN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def _token(value: str | None) -> str | None:
    return value if value and _TOKEN.match(value) else None


class RequestContextMiddleware:
    """Takes (or makes) the request and correlation ids, echoes them, and binds them for logging.

    Runs on every request, cache hits included (shared/read_cache.py), where it was a third of the
    time: the raw header list is scanned once, and the ids are bound as structlog contextvars and
    reset by their tokens rather than through `bound_contextvars` (which reads the whole context).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given_request = given_correlation = None
        for name, value in scope["headers"]:
            if name == b"x-request-id" and given_request is None:
                given_request = value
            elif name == b"x-correlation-id" and given_correlation is None:
                given_correlation = value
        # As unguessable as uuid4().hex, and as long, for a fifth of the cost.
        request_id = _token_of(given_request) or os.urandom(16).hex()
        # A request that arrives without a correlation id starts a new chain of work.
        correlation_id = _token_of(given_correlation) or request_id
        state = scope.setdefault("state", {})
        state["request_id"], state["correlation_id"] = request_id, correlation_id
        ids = [(_REQUEST_ID_HEADER, request_id.encode()), (_CORRELATION_ID_HEADER, correlation_id.encode())]

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *ids]  # nothing inside sets them
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id, correlation_id=correlation_id)
        try:
            await self.app(scope, receive, send_with_ids)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)


_REQUEST_ID_HEADER, _CORRELATION_ID_HEADER = REQUEST_ID.lower().encode(), CORRELATION_ID.lower().encode()


def _token_of(value: bytes | None) -> str | None:
    return _token(value.decode("latin-1")) if value is not None else None


class BodySizeLimitMiddleware:
    """Refuses request bodies above `max_bytes` with 413, by Content-Length or while streaming.

    `path_limits` raises (or lowers) the limit for paths that take files, such as CSV imports.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MIB, path_limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, streamed = b"", False
        for name, value in scope["headers"]:  # the raw list, once: this runs on every request
            if name == b"content-length" and not length:
                length = value
            elif name == b"transfer-encoding":
                streamed = True
        if not length and not streamed:  # no body (most requests)
            await self.app(scope, receive, send)
            return
        max_bytes = self.path_limits.get(scope["path"], self.max_bytes)
        detail = f"request body larger than {max_bytes} bytes"
        if length.isdigit() and int(length) > max_bytes:
            body = {"type": "https://clusterhub.eu/problems/payload-too-large", "title": "Payload too large",
                    "status": 413, "detail": detail, "max_bytes": max_bytes}
            await problem_response(413, body)(scope, receive, send)
            return
        if not streamed:
            # A body of a declared length (checked above) that the server reads no further than:
            # nothing to count while it streams.
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # An HTTPException passes FastAPI's body parsing unchanged and renders as problem+json.
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, limited, send)


# --------------------------------------------------------------------------------------------
# Dependencies: `async def` although none awaits, because FastAPI runs a plain `def` dependency in
# a worker thread, and that hop costs more than their work on every request.


async def _metadata(
    request: Request,
    principal: CurrentPrincipal,
    x_causation_id: Annotated[str | None, Header(max_length=128)] = None,
) -> Metadata:
    # Who acts and for which tenant come from the verified token only, never from a header.
    return Metadata(
        actor=principal.subject,
        tenant=principal.cluster,
        service=getattr(request.app.state, "service", None),
        request_id=getattr(request.state, "request_id", None),
        correlation_id=getattr(request.state, "correlation_id", None),
        causation_id=_token(x_causation_id),
    )


RequestMetadata = Annotated[Metadata, Depends(_metadata)]


# The store and the log the app was created with (async: a plain `def` dependency costs a thread hop).
async def _db(request: Request) -> Database:
    return request.app.state.db


async def _log(request: Request) -> EventLog:
    return request.app.state.log


Db = Annotated[Database, Depends(_db)]
Log = Annotated[EventLog, Depends(_log)]


def etag(version: int) -> str:
    return f'"{version}"'


async def _if_match(if_match: Annotated[str | None, Header(description='The ETag of the last read, e.g. "3"')] = None,
              ) -> int | None:
    if if_match is None:
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise InvalidInput.field("header.if-match", 'expected the ETag of the last read, e.g. "3"')
    return int(text)


async def _if_match_required(version: Annotated[int | None, Depends(_if_match)]) -> int:
    if version is None:
        raise PreconditionRequired("this change needs an If-Match header with the ETag of your last read")
    return version


IfMatch = Annotated[int, Depends(_if_match_required)]
OptionalIfMatch = Annotated[int | None, Depends(_if_match)]


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the problem+json errors it can answer with."""
    return {status: {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {}}}
            for status in statuses}


# --------------------------------------------------------------------------------------------
# The app


health = APIRouter(tags=["health"])


@health.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@health.get("/readyz", responses=problems(503))
async def readyz(request: Request) -> dict[str, str]:
    """The store answers, its schema is current, and no consumer of the log lags too far behind."""
    db: Database = request.app.state.db
    try:
        await db.read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())
        missing = await anyio.to_thread.run_sync(pending, db.engine)
    except Exception as exc:
        log.warning("readyz.store_unreachable", error=str(exc))
        raise ServiceUnavailable("the store is unreachable") from exc
    if missing:
        raise ServiceUnavailable("database migrations are pending", pending=missing)
    await check_lag(request.app)
    return {"status": "ready"}


NUL = "text cannot contain the NUL character (U+0000)"


def _nul_paths(value: Any, path: str) -> list[str]:
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _nul_paths(key, path) + _nul_paths(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _nul_paths(item, f"{path}.{index}")]
    return []


def _has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


async def _reject_nul(request: Request) -> None:
    """PostgreSQL text and jsonb cannot hold U+0000: refuse it at the door with a 422 naming the field,
    rather than let the store fail with a 500 (SQLite would take it, so both stores now agree)."""
    scope = request.scope
    # Runs on every request: look at the raw path and query first (a NUL there is "\x00" in the
    # decoded path, "%00" in the query string), and at a body only when there is one.
    fields = []
    if "\x00" in scope["path"] or b"%00" in scope["query_string"] or b"\x00" in scope["query_string"]:
        fields += [f"path.{key}" for key, value in request.path_params.items() if "\x00" in str(value)]
        fields += [f"query.{key}" for key, value in request.query_params.multi_items() if "\x00" in key + value]
    if _has_body(request.headers) and request.headers.get("content-type", "").startswith("application/json"):
        body = await request.body()  # cached on the request: the route reads the same bytes
        if b"\\u0000" in body or b"\x00" in body:
            try:
                fields += _nul_paths(json.loads(body), "body")
            except (ValueError, RecursionError):
                pass  # not JSON (or absurdly deep): the route's own validation says so
    if fields:
        raise InvalidInput(f"{', '.join(fields)}: {NUL}", [{"field": field, "message": NUL} for field in fields])


_frozen = False


def _freeze_startup_objects() -> None:
    """Keep what the imports and the app built (~150,000 objects) out of the garbage collector's scans.

    A full collection scans every tracked object: ~100 ms here, a stall of every request in flight
    (the p99 under load). Once frozen, they are never scanned again. Once per process: what a later
    app (tests build many) leaves behind must stay collectable.
    """
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def service_app(title: str, service: str, settings: CommonSettings, db: Database, *, owns_db: bool,
                max_body_bytes: int = MIB, body_limits: Mapping[str, int] | None = None) -> FastAPI:
    """A FastAPI app with the shared middleware, problem handlers and health routes; `db` on app.state."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        _freeze_startup_objects()
        yield
        if owns_db:
            db.dispose()

    # FastAPI's own OpenTelemetry support off: shared/tracing.py instruments the app when an endpoint
    # is configured (FastAPI's would then add a second server span per request, and probes' spans),
    # and deciding per request whether it is on looks the global providers up (~5% of a simple GET).
    app = FastAPI(title=title, lifespan=lifespan, dependencies=[Depends(_reject_nul)],
                  telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False})
    app.state.settings, app.state.db, app.state.service = settings, db, service
    install_problem_handlers(app)
    app.state.idempotency = IdempotencyKeys(db, service, ttl_hours=settings.idempotency_ttl_hours)
    app.add_middleware(IdempotencyMiddleware, keys=app.state.idempotency)  # inside the body limit
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes, path_limits=body_limits)
    install_limits(app, settings)  # rate limits and CORS, before the body is read
    install_observability(app, settings, service)  # access log, metrics, /metrics, tracing: inside the ids
    app.add_middleware(RequestContextMiddleware)  # outermost: even a 413 carries the ids
    app.include_router(health)
    _document_problem_422(app)
    return app


def _document_problem_422(app: FastAPI) -> None:
    """FastAPI documents every 422 as application/json; ours are problem+json (install_problem_handlers)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # cached by FastAPI after the first call; the edit below is idempotent
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                response = operation.get("responses", {}).get("422")
                if response and "application/json" in response.get("content", {}):
                    response["content"] = {"application/problem+json": {}}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
