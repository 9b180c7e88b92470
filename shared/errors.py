"""Domain errors carry their HTTP status; one set of handlers renders RFC 9457 problem+json.

DomainError
 ├── Unauthorized             401   (no or bad credentials; carries WWW-Authenticate)
 ├── Forbidden                403   (authenticated, but not allowed)
 ├── NotFound                 404
 ├── Conflict                 409   (ConcurrencyError lives in shared.eventlog)
 ├── PreconditionFailed       412   (stale If-Match)
 ├── PreconditionRequired     428   (If-Match missing where required)
 └── InvalidInput             422   (with a list of {field, message})

A store that cannot take the work (locked, read-only, full, unreachable) surfaces as an
OperationalError (SQLAlchemy's, or the driver's own); it renders as 503 with Retry-After, since the request may succeed later.
"""
from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
STORE_RETRY_AFTER = 5  # seconds: a locked or restarting store is usually back within that
log = structlog.get_logger(__name__)
STORE_ERRORS: tuple[type[Exception], ...] = (OperationalError, sqlite3.OperationalError, psycopg.OperationalError)


class DomainError(Exception):
    status: int = 400
    title: str = "Bad request"
    type_slug: str = "bad-request"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    def problem(self) -> dict[str, Any]:
        return {
            "type": f"https://clusterhub.eu/problems/{self.type_slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extensions,
        }


class Unauthorized(DomainError):
    status, title, type_slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str, *, error: str | None = None) -> None:
        super().__init__(detail)
        # RFC 6750 §3: a challenge always; `error` only when credentials were sent and refused.
        challenge = 'Bearer realm="clusterhub"' + (f', error="{error}"' if error else "")
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(DomainError):
    status, title, type_slug = 403, "Forbidden", "forbidden"


class NotFound(DomainError):
    status, title, type_slug = 404, "Not found", "not-found"


class Conflict(DomainError):
    status, title, type_slug = 409, "Conflict", "conflict"


class PreconditionFailed(DomainError):
    status, title, type_slug = 412, "Precondition failed", "precondition-failed"


class PreconditionRequired(DomainError):
    status, title, type_slug = 428, "Precondition required", "precondition-required"


class InvalidInput(DomainError):
    status, title, type_slug = 422, "Invalid input", "invalid-input"

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail, errors=errors or [])

    @classmethod
    def field(cls, field: str, message: str) -> "InvalidInput":
        return cls(f"{field}: {message}", [{"field": field, "message": message}])


class ServiceUnavailable(DomainError):
    status, title, type_slug = 503, "Service unavailable", "service-unavailable"


def problem_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    # FastAPI prefixes locations with "body"/"query"/"header"; keep it, it tells where to look.
    return ".".join(str(part) for part in loc)


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error the API can raise as problem+json, never a bare 500 page."""

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})
        if "retry_after" in exc.extensions:
            headers["Retry-After"] = str(exc.extensions["retry_after"])
        return problem_response(exc.status, exc.problem(), headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field_path(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return problem_response(422, InvalidInput(detail, errors).problem())

    async def _store(_: Request, exc: Exception) -> JSONResponse:
        # The transaction rolled back: nothing was written, and the driver's message stays in the logs.
        log.warning("store.operational_error", error=str(getattr(exc, "orig", None) or exc))
        problem = ServiceUnavailable("the store cannot process the request now", retry_after=STORE_RETRY_AFTER)
        return problem_response(503, problem.problem(), {"Retry-After": str(STORE_RETRY_AFTER)})

    # The event log appends on the driver's cursor, so the drivers' own errors arrive unwrapped too.
    for store_error in STORE_ERRORS:
        app.add_exception_handler(store_error, _store)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = {"type": "about:blank", "title": str(exc.detail), "status": exc.status_code, "detail": str(exc.detail)}
        return problem_response(exc.status_code, body, getattr(exc, "headers", None))
