"""Who is calling (before authentication), per-client rate limits (429 with Retry-After), and CORS.

Rate limits are token buckets in this process's memory: with several workers each holds its
own buckets, so the effective limit is the configured one times the number of workers.
"""
from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import problem_response
from shared.settings import CommonSettings

__all__ = ["RateLimitMiddleware", "TokenBuckets", "client_of", "install_limits"]

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
CORS_ALLOW_HEADERS = ["Authorization", "Content-Type", "If-Match", "Idempotency-Key", "X-Request-ID",
                      "X-Correlation-ID", "X-API-Key"]
CORS_EXPOSE_HEADERS = ["ETag", "Location", "Retry-After", "X-Request-ID", "X-Correlation-ID",
                       "Idempotency-Replayed"]


def client_of(scope: Scope) -> tuple[str, bool]:
    """The caller as the edge sees it, and whether it presented a credential.

    A credential is identified by its hash, not by the claims inside it: they are not verified
    yet, and trusting them would let anyone spend (or replay) another client's requests.
    """
    headers = Headers(scope=scope)
    credential = headers.get("authorization") or headers.get("x-api-key")
    if credential:
        return "credential:" + hashlib.sha256(credential.encode()).hexdigest()[:32], True
    return "ip:" + address_of(scope), False


def address_of(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class TokenBuckets:
    """One bucket per client: `capacity` tokens, refilled at `per_minute`; least recently seen dropped first."""

    def __init__(self, per_minute: int, burst: int | None = None, *, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 100_000) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60
        self.capacity = float(burst or per_minute)
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, client: str, now: float) -> float:
        tokens, at = self._buckets.get(client, (self.capacity, now))
        return min(self.capacity, tokens + (now - at) * self.rate)

    def wait(self, client: str) -> float:
        """Seconds until `client` has a token (0: it has one now); takes nothing."""
        return max(0.0, (1 - self._tokens(client, self.clock())) / self.rate)

    def take(self, client: str) -> float:
        """Take a token and answer 0, or answer the seconds until one is available."""
        now = self.clock()
        tokens = self._tokens(client, now)
        if tokens < 1:
            return (1 - tokens) / self.rate
        self._buckets[client] = (tokens - 1, now)
        self._buckets.move_to_end(client)
        if len(self._buckets) > self.max_clients:
            # A forgotten client starts again with a full bucket: memory stays bounded.
            self._buckets.popitem(last=False)
        return 0.0


class RateLimitMiddleware:
    """429 problem+json with Retry-After once a client's bucket is empty; probes and scrapes are exempt.

    Each 401 also costs the caller's address a token from a bucket of its own, and an address
    whose bucket is empty is refused: otherwise a new made-up credential per request would be a
    new client each time and never limited.
    """

    def __init__(self, app: ASGIApp, buckets: TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        client, _ = client_of(scope)
        denied = "denied:" + address_of(scope)
        wait = self.buckets.wait(denied) or self.buckets.take(client)
        if wait:
            await self._refuse(wait, scope, receive, send)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if status == 401:
            self.buckets.take(denied)

    async def _refuse(self, wait: float, scope: Scope, receive: Receive, send: Send) -> None:
        seconds = max(1, math.ceil(wait))
        body = {"type": "https://clusterhub.eu/problems/too-many-requests", "title": "Too many requests",
                "status": 429, "retry_after": seconds,
                "detail": f"more than {self.buckets.per_minute} requests a minute; retry after {seconds} s"}
        await problem_response(429, body, {"Retry-After": str(seconds)})(scope, receive, send)


def install_limits(app: FastAPI, settings: CommonSettings) -> None:
    """Rate limits, then CORS outside them so that browsers can read a 429 too."""
    if settings.rate_limit_per_minute:
        app.state.rate_limits = TokenBuckets(settings.rate_limit_per_minute, settings.rate_limit_burst)
        app.add_middleware(RateLimitMiddleware, buckets=app.state.rate_limits)
    if settings.cors_origin_list:
        # Bearer tokens travel in a header, not in cookies: no credentialed CORS needed.
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origin_list,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                           allow_headers=CORS_ALLOW_HEADERS, expose_headers=CORS_EXPOSE_HEADERS, max_age=600)
