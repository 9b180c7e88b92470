"""Webhooks: partners subscribe to their feed; each item is POSTed to them, signed, retried, logged.

Queued with the item. The feed builder writes one delivery row per item and active webhook of
its partner in the transaction that writes the item (the outbox pattern of
services/events/notifications.py): an item cannot exist without its deliveries, nor the other
way round. A webhook delivers items from its registration on; the feed has everything before.

Delivered apart. `WebhookWorker` is an asyncio task of its own with its own httpx client and a
short timeout; it claims due rows with a lease (PostgreSQL: `FOR UPDATE SKIP LOCKED`), POSTs each
CloudEvent (structured mode, `application/cloudevents+json`) with a `Clusterhub-Signature`
(signing.py), and records every attempt: outcome, HTTP status, an error category (never the
target's text) and its duration. A failed attempt is retried with exponential backoff and jitter
up to `webhook_max_attempts`, then the delivery is `failed`; `410 Gone` fails it at once. A
target that is down costs the worker a timeout per attempt, never a request of the API: the API
only ever reads and writes rows. An admin, or the owner cluster's manager, lists the delivery
log and replays a delivery (it is queued again, its attempt count starting over).
"""
from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import httpx
import structlog
from fastapi import APIRouter, Query, Request, Response
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from sqlalchemy import Connection, and_, func, insert, or_, select, true, update

from services.registry.federation import signing
from services.registry.federation.events import STREAM_TYPES, WebhookRegistered, WebhookRemoved, stream_id
from services.registry.federation.tables import deliveries, delivery_attempts, feed_items, webhooks
from shared.auth import CLUSTER_MANAGER, PARTNER_CLUSTER, Principal, allow
from shared.db import Database
from shared.errors import Conflict, InvalidInput, NotFound
from shared.eventlog import NO_STREAM, to_timestamp_text, utc_now_text
from shared.http import Db, Log, RequestMetadata, problems
from shared.pagination import decode_cursor, encode_cursor

log = structlog.get_logger()

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --------------------------------------------------------------------------------------------
# Schemas


class WebhookCreate(BaseModel):
    model_config = STRICT

    url: AnyHttpUrl = Field(description="Where deliveries are POSTed (http or https)")
    secret: str | None = Field(default=None, min_length=24, max_length=200,
                               description="The signing secret; generated (and returned once) when omitted")
    partner_cluster_id: str | None = Field(default=None, pattern=r"^[0-9A-Za-z-]{1,64}$",
                                           description="Platform admins: for which partner cluster")


class WebhookPublic(BaseModel):
    id: str
    partner_cluster_id: str
    url: str
    active: bool
    created_at: str


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="Shown this once: keep it to verify the signatures")


class AttemptPublic(BaseModel):
    number: int
    at: str
    outcome: str
    http_status: int | None
    error: str | None
    duration_ms: int


class DeliveryPublic(BaseModel):
    id: str
    webhook_id: str
    partner_cluster_id: str
    owner_cluster_id: str
    cloud_event_id: str
    cloud_event_type: str
    status: str
    attempts: int
    next_attempt_at: str
    last_status_code: int | None
    last_error: str | None
    delivered_at: str | None
    created_at: str
    attempt_log: list[AttemptPublic]


class DeliveryPage(BaseModel):
    data: list[DeliveryPublic]
    next_cursor: str | None = None


# --------------------------------------------------------------------------------------------
# Routes

router = APIRouter(tags=["federation"])
Partner = Annotated[Principal, allow(PARTNER_CLUSTER)]
Manager = Annotated[Principal, allow(CLUSTER_MANAGER)]


def _partner(principal: Principal, given: str | None) -> str:
    if PARTNER_CLUSTER in principal.roles and principal.cluster:
        return principal.cluster
    if given is None:
        raise InvalidInput.field("body.partner_cluster_id", "platform admins name the partner cluster")
    return given


@router.post("/v1/webhooks", status_code=201, responses=problems(401, 403, 422))
async def register_webhook(body: WebhookCreate, request: Request, response: Response, db: Db, log_: Log,
                           principal: Partner, metadata: RequestMetadata) -> WebhookCreated:
    """Subscribe the calling partner cluster to its feed by webhook; the secret is returned once."""
    partner = _partner(principal, body.partner_cluster_id)
    settings = request.app.state.settings
    if settings.environment == "production" and body.url.scheme != "https":
        # Deliveries carry shared data and a signature: not over plain HTTP outside development.
        raise InvalidInput.field("body.url", "webhook URLs must use https in production")
    if not settings.private_webhook_targets_allowed:
        refusal = await anyio.to_thread.run_sync(not_public, str(body.url))
        if refusal:
            raise InvalidInput.field("body.url", refusal)
    webhook_id, secret, now = str(uuid.uuid4()), body.secret or signing.new_secret(), utc_now_text()

    def run(conn: Connection) -> None:
        log_.append(conn, stream_id("webhook", webhook_id), STREAM_TYPES["webhook"], NO_STREAM,
                    [WebhookRegistered(webhook_id=webhook_id, partner_cluster_id=partner, url=str(body.url))], metadata)
        conn.execute(insert(webhooks).values(id=webhook_id, partner_cluster_id=partner, url=str(body.url),
                                             secret=secret, active=True, created_at=now))

    await db.write(run)
    response.headers["Location"] = f"/v1/webhooks/{webhook_id}"
    return WebhookCreated(id=webhook_id, partner_cluster_id=partner, url=str(body.url), active=True, created_at=now,
                          secret=secret)


@router.get("/v1/webhooks", responses=problems(401, 403))
async def list_webhooks(db: Db, principal: Partner) -> list[WebhookPublic]:
    """The calling partner's webhooks (platform admins: all)."""
    def read(conn: Connection) -> list[WebhookPublic]:
        query = select(webhooks).order_by(webhooks.c.created_at, webhooks.c.id)
        if not principal.is_admin:
            query = query.where(webhooks.c.partner_cluster_id == principal.cluster)
        return [WebhookPublic.model_validate(dict(row)) for row in conn.execute(query).mappings()]

    return await db.read(read)


@router.delete("/v1/webhooks/{webhook_id}", status_code=204, responses=problems(401, 403, 404, 409))
async def remove_webhook(webhook_id: str, db: Db, log_: Log, principal: Partner, metadata: RequestMetadata) -> Response:
    """Unsubscribe: nothing more is delivered to it (pending deliveries fail as `webhook_removed`)."""
    def run(conn: Connection) -> None:
        w = webhooks.c
        query = select(webhooks).where(w.id == webhook_id)
        if not principal.is_admin:
            query = query.where(w.partner_cluster_id == principal.cluster)
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"webhook {webhook_id} not found")
        if not row.active:
            raise Conflict(f"webhook {webhook_id} is already removed")
        log_.append(conn, stream_id("webhook", webhook_id), STREAM_TYPES["webhook"], None,
                    [WebhookRemoved(webhook_id=webhook_id)], metadata)
        conn.execute(update(webhooks).where(w.id == webhook_id).values(active=False))
        conn.execute(update(deliveries).where(deliveries.c.webhook_id == webhook_id, deliveries.c.status == PENDING)
                     .values(status=FAILED, last_error="webhook_removed", claimed_by=None, claimed_until=None))

    await db.write(run)
    return Response(status_code=204)


def _deliveries_visible(principal: Principal) -> Any:
    return true() if principal.is_admin else deliveries.c.owner_cluster_id == principal.managed_cluster


def _with_attempts(conn: Connection, rows: list[Any]) -> list[DeliveryPublic]:
    a = delivery_attempts.c
    found: dict[str, list[AttemptPublic]] = {row["id"]: [] for row in rows}
    if found:
        for attempt in conn.execute(select(delivery_attempts).where(a.delivery_id.in_(list(found)))
                                    .order_by(a.delivery_id, a.number)).mappings():
            found[attempt["delivery_id"]].append(AttemptPublic.model_validate(dict(attempt)))
    keep = set(DeliveryPublic.model_fields) - {"attempt_log"}
    return [DeliveryPublic(**{k: v for k, v in row.items() if k in keep}, attempt_log=found[row["id"]])
            for row in rows]


@router.get("/v1/webhook-deliveries", responses=problems(401, 403, 422))
async def list_deliveries(db: Db, principal: Manager,
                          status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
                          webhook_id: Annotated[str | None, Query(max_length=36)] = None,
                          cursor: Annotated[str | None, Query(max_length=500)] = None,
                          limit: Annotated[int, Query(ge=1, le=200)] = 50) -> DeliveryPage:
    """The delivery log, newest first, with every attempt (admins; the owner cluster's managers)."""
    def read(conn: Connection) -> DeliveryPage:
        d = deliveries.c
        query = select(deliveries).where(_deliveries_visible(principal))
        if status:
            query = query.where(d.status == status)
        if webhook_id:
            query = query.where(d.webhook_id == webhook_id)
        if cursor:
            created, last_id = decode_cursor(cursor, (str, str))
            query = query.where(or_(d.created_at < created, and_(d.created_at == created, d.id < last_id)))
        rows = [dict(r) for r in conn.execute(query.order_by(d.created_at.desc(), d.id.desc()).limit(limit + 1))
                .mappings()]
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor([rows[-1]["created_at"], rows[-1]["id"]]) if more else None
        return DeliveryPage(data=_with_attempts(conn, rows), next_cursor=next_cursor)

    return await db.read(read)


@router.post("/v1/webhook-deliveries/{delivery_id}/replay", status_code=202, responses=problems(401, 403, 404, 409))
async def replay_delivery(delivery_id: str, db: Db, principal: Manager) -> DeliveryPublic:
    """Queue a delivery again, now (whatever its state), its attempt count starting over."""
    def run(conn: Connection) -> DeliveryPublic:
        d = deliveries.c
        row = conn.execute(select(deliveries).where(d.id == delivery_id, _deliveries_visible(principal))).first()
        if row is None:
            raise NotFound(f"delivery {delivery_id} not found")
        active = conn.execute(select(webhooks.c.active).where(webhooks.c.id == row.webhook_id)).scalar()
        if not active:
            raise Conflict("the webhook was removed; the partner reads the feed instead")
        conn.execute(update(deliveries).where(d.id == delivery_id).values(
            status=PENDING, attempts=0, next_attempt_at=utc_now_text(), claimed_by=None, claimed_until=None))
        rows = [dict(r) for r in conn.execute(select(deliveries).where(d.id == delivery_id)).mappings()]
        return _with_attempts(conn, rows)[0]

    return await db.write(run)


# --------------------------------------------------------------------------------------------
# Delivery


@dataclass(frozen=True)
class WorkerSettings:
    timeout: float = 5.0
    max_attempts: int = 10
    backoff: float = 5.0  # first retry; doubles with each failure
    backoff_max: float = 3600.0
    batch_size: int = 20
    lease_seconds: float = 60.0
    poll_seconds: float = 0.5
    private_targets: bool = True  # False: refuse URLs that resolve to non-public addresses (`not_public`)


def not_public(url: str) -> str | None:
    """Why `url` may not receive deliveries when private targets are refused, or None.

    Every address the host resolves to must be a global one: not loopback, private (RFC 1918,
    fc00::/7), link-local (169.254.0.0/16, where cloud metadata services answer), shared, reserved
    or multicast. Checked at registration and again before each delivery, so a name re-pointed
    at an internal address later is refused too."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return f"{host} does not resolve"
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if not address.is_global or address.is_multicast:
            return f"{host} resolves to {address}, not a public address"
    return None


def error_category(exc: BaseException) -> str:
    if isinstance(exc, ForbiddenTarget):
        return FORBIDDEN_TARGET
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connection"
    if isinstance(exc, httpx.TransportError):
        return "transport"
    return "internal"


FORBIDDEN_TARGET = "forbidden_target"


class ForbiddenTarget(Exception):
    """The webhook's host resolves to a non-public address: not delivered, and not retried."""


@dataclass
class WebhookWorker:
    db: Database
    settings: WorkerSettings
    http: httpx.AsyncClient | None = None
    name: str = ""
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    jitter: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        self.name = self.name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._owns_http = self.http is None
        # Its own client: a slow target holds this pool's connections, never the API's.
        self.http = self.http or httpx.AsyncClient(timeout=httpx.Timeout(self.settings.timeout),
                                                   follow_redirects=False)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                handled = await self.run_once()
            except Exception:
                log.exception("webhooks.batch_failed", worker=self.name)
                handled = 0
            if not handled:
                try:
                    await asyncio.wait_for(stopping.wait(), self.settings.poll_seconds)
                except TimeoutError:
                    pass

    async def aclose(self) -> None:
        if self._owns_http and self.http is not None:
            await self.http.aclose()

    async def run_once(self) -> int:
        """Claim one batch and deliver it (concurrently: one slow target delays a batch by at most a timeout)."""
        # A read first: an idle worker must not take SQLite's write lock twice a second.
        if not await self.db.read(self._due):
            return 0
        batch = await self.db.write(self._claim)
        if batch:
            await asyncio.gather(*(self._deliver(job) for job in batch))
        return len(batch)

    def _due(self, conn: Connection) -> bool:
        d = deliveries.c
        now_text = to_timestamp_text(self.clock())
        return conn.execute(select(d.id).where(d.status == PENDING, d.next_attempt_at <= now_text,
                                               or_(d.claimed_until.is_(None), d.claimed_until <= now_text))
                            .limit(1)).first() is not None

    def _claim(self, conn: Connection) -> list[dict[str, Any]]:
        now = self.clock()
        now_text = to_timestamp_text(now)
        d = deliveries.c
        due = (select(d.id).where(d.status == PENDING, d.next_attempt_at <= now_text,
                                  or_(d.claimed_until.is_(None), d.claimed_until <= now_text))
               .order_by(d.next_attempt_at, d.item_position, d.item_index).limit(self.settings.batch_size))
        if conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        ids = conn.execute(due).scalars().all()
        if not ids:
            return []
        until = to_timestamp_text(now + timedelta(seconds=self.settings.lease_seconds))
        conn.execute(update(deliveries).where(d.id.in_(ids)).values(claimed_by=self.name, claimed_until=until))
        f, w = feed_items.c, webhooks.c
        rows = conn.execute(
            select(d.id, d.attempts, w.url, w.secret, f.body)
            .join(webhooks, w.id == d.webhook_id)
            .join(feed_items, and_(f.partner_cluster_id == d.partner_cluster_id, f.position == d.item_position,
                                   f.item_index == d.item_index))
            .where(d.id.in_(ids)).order_by(d.item_position, d.item_index)).mappings().all()
        return [dict(row) for row in rows]

    async def _deliver(self, job: dict[str, Any]) -> None:
        body = job["body"].encode()
        headers = {"Content-Type": "application/cloudevents+json",
                   signing.HEADER: signing.sign(job["secret"], body), "User-Agent": "clusterhub-webhooks/1"}
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            assert self.http is not None
            if not self.settings.private_targets and await anyio.to_thread.run_sync(not_public, job["url"]):
                raise ForbiddenTarget(job["url"])
            response = await self.http.post(job["url"], content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"http_{status_code}"
        except Exception as exc:  # every way a POST can fail is an attempt to record, not a crash
            error = error_category(exc)
        duration_ms = int((time.perf_counter() - started) * 1000)
        await self.db.write(lambda conn: self._record(conn, job, status_code, error, duration_ms))

    def _record(self, conn: Connection, job: dict[str, Any], status_code: int | None, error: str | None,
                duration_ms: int) -> None:
        d, a = deliveries.c, delivery_attempts.c
        now = self.clock()
        attempts = job["attempts"] + 1
        number = (conn.execute(select(func.max(a.number)).where(a.delivery_id == job["id"])).scalar() or 0) + 1
        if error is None:
            outcome, values = DELIVERED, {"status": DELIVERED, "delivered_at": to_timestamp_text(now)}
        elif status_code == 410 or error == FORBIDDEN_TARGET or attempts >= self.settings.max_attempts:
            outcome, values = FAILED, {"status": FAILED}
        else:
            outcome = "retry"
            values = {"next_attempt_at": to_timestamp_text(now + timedelta(seconds=self.backoff(attempts)))}
        conn.execute(insert(delivery_attempts).values(delivery_id=job["id"], number=number,
                                                      at=to_timestamp_text(now), outcome=outcome,
                                                      http_status=status_code, error=error, duration_ms=duration_ms))
        conn.execute(update(deliveries).where(d.id == job["id"], d.claimed_by == self.name).values(
            attempts=attempts, last_status_code=status_code, last_error=error, claimed_by=None, claimed_until=None,
            **values))
        log.info("webhooks.attempt", delivery=job["id"], outcome=outcome, status=status_code, error=error,
                 duration_ms=duration_ms)

    def backoff(self, attempts: int) -> float:
        """Exponential, capped, with jitter: half fixed, half random, so many retries spread out."""
        s = self.settings
        delay = min(s.backoff_max, s.backoff * 2 ** (attempts - 1))
        return delay / 2 + delay / 2 * self.jitter()

