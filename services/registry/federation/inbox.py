"""The receiving side: peers whose webhook deliveries this instance accepts, the inbox that records
them, the joint events they share, and registrations forwarded to them.

A cluster manager configures a peer (the remote cluster, the CloudEvents `source` its deliveries
carry, the webhook secret the remote returned when we subscribed, and the remote events API with
the partner_cluster credential its operator issued us). `POST /v1/federation/inbox` takes no
bearer token: it is authenticated by the signature alone (signing.py), checked against the
secrets of the peers with that source, then recorded as a `FederatedItemReceived` event in our own
log; a CloudEvent id already received from that peer is acknowledged without a second event.

Members see the joint events shared with their cluster and register for them here: the
registration goes to the remote events API (`POST /v1/events/{id}/federated-registrations`) with
our partner credential, and what the remote answered is recorded as `RegistrationForwarded`. The
remote is the source of truth for seats and waitlists; this side keeps who registered whom.
"""
from __future__ import annotations

import uuid
from typing import Annotated, Any

import httpx
import orjson
import structlog
from cloudevents.core.formats.json import JSONFormat
from fastapi import APIRouter, Request
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from sqlalchemy import Connection, false, insert, select, update

from services.registry import access, queries
from services.registry.federation import signing
from services.registry.federation.events import (
    STREAM_TYPES,
    FederatedItemReceived,
    PeerConfigured,
    RegistrationForwarded,
    stream_id,
)
from services.registry.federation.feed import TYPE_PREFIX
from services.registry.federation.tables import forwarded, joint_events, peers, received
from shared.auth import ANONYMOUS, CLUSTER_MANAGER, MEMBER, ROLES, Principal, allow

from shared.errors import DomainError, Forbidden, InvalidInput, NotFound, ServiceUnavailable, Unauthorized
from shared.eventlog import NO_STREAM, Metadata, RecordedEvent, utc_now_text
from shared.http import Db, Log, RequestMetadata, problems

log = structlog.get_logger()
STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
ClusterId = Field(pattern=r"^[0-9A-Za-z-]{1,64}$")
FORWARD_TIMEOUT = 10.0


# --------------------------------------------------------------------------------------------
# Schemas


class PeerCreate(BaseModel):
    model_config = STRICT

    local_cluster_id: str = ClusterId
    remote_cluster_id: str = ClusterId
    source: str = Field(min_length=1, max_length=500, description="The `source` of the remote's CloudEvents")
    secret: str = Field(min_length=24, max_length=200, description="The secret the remote's webhook returned")
    events_url: AnyHttpUrl | None = Field(default=None, description="The remote events API, to forward registrations")
    token: str | None = Field(default=None, max_length=4000, description="Our partner_cluster token at the remote")


class PeerPublic(BaseModel):
    id: str
    local_cluster_id: str
    remote_cluster_id: str
    source: str
    events_url: str | None
    created_at: str


class JointEvent(BaseModel):
    peer_id: str
    remote_cluster_id: str
    event_id: str
    status: str
    details: dict[str, Any]


class ForwardCreate(BaseModel):
    model_config = STRICT

    organisation_id: str = Field(max_length=36)
    contact_id: str = Field(max_length=36)
    b2b: bool | None = None


class ForwardedPublic(BaseModel):
    remote_participant_id: str
    remote_event_id: str
    peer_id: str
    organisation_id: str
    contact_id: str
    status: str
    created_at: str


class Received(BaseModel):
    status: str  # recorded | duplicate


# --------------------------------------------------------------------------------------------
# Read models (inline)


class InboxProjector:
    name = "federation.inbox"
    # Not `peers`: their secrets are not in the log, so a rebuild must leave that table alone.
    tables = (received, joint_events, forwarded)

    def handles(self, event_type: str) -> bool:
        return event_type in ("federation.FederatedItemReceived", "federation.RegistrationForwarded")

    def apply(self, conn: Connection, recorded: RecordedEvent) -> None:
        event = recorded.event
        if isinstance(event, FederatedItemReceived):
            self._received(conn, event, recorded.recorded_at)
        elif isinstance(event, RegistrationForwarded):
            local = conn.execute(select(peers.c.local_cluster_id).where(peers.c.id == event.peer_id)).scalar_one()
            conn.execute(insert(forwarded).values(
                remote_participant_id=event.remote_participant_id, peer_id=event.peer_id,
                remote_event_id=event.remote_event_id, local_cluster_id=local, organisation_id=event.organisation_id,
                contact_id=event.contact_id, status=event.status, created_at=recorded.recorded_at))

    @staticmethod
    def _received(conn: Connection, event: FederatedItemReceived, at: str) -> None:
        conn.execute(insert(received).values(peer_id=event.peer_id, cloud_event_id=event.cloud_event_id,
                                             received_at=at))
        kind = event.cloud_event_type.removeprefix(TYPE_PREFIX)
        j = joint_events.c
        order = event.sequence or ""
        if kind == "federation.AgreementEnded":
            conn.execute(update(joint_events).where(j.peer_id == event.peer_id, j.sequence < order)
                         .values(status="withdrawn", sequence=order, updated_at=at))
            return
        event_id = event.data.get("event_id")
        if kind not in ("events.EventShared", "events.EventUpdated", "events.EventWithdrawn") or not event_id:
            return
        key = (j.peer_id == event.peer_id, j.remote_event_id == event_id)
        found = conn.execute(select(j.sequence).where(*key)).first()
        if found is not None and found.sequence >= order:
            return  # a newer item about this event came first (deliveries may arrive out of order)
        if kind == "events.EventWithdrawn":
            values = {"status": "withdrawn"}
        else:
            values = {"status": event.data.get("status", "published"), "snapshot": event.data}
        values |= {"sequence": order, "updated_at": at}
        if found is not None:
            conn.execute(update(joint_events).where(*key).values(values))
        elif kind != "events.EventWithdrawn":
            local = conn.execute(select(peers.c.local_cluster_id).where(peers.c.id == event.peer_id)).scalar_one()
            conn.execute(insert(joint_events).values(peer_id=event.peer_id, remote_event_id=event_id,
                                                     local_cluster_id=local, **values))


INBOX_PROJECTOR = InboxProjector()


# --------------------------------------------------------------------------------------------
# Routes

router = APIRouter(prefix="/v1/federation", tags=["federation"])
Manager = Annotated[Principal, allow(CLUSTER_MANAGER)]
ManagerOrMember = Annotated[Principal, allow(CLUSTER_MANAGER, MEMBER)]
# Authenticated by its signature: a bearer token, if any, counts for nothing here.
Signed = Annotated[Principal, allow(ANONYMOUS, *ROLES)]


def _peer_public(row: Any) -> PeerPublic:
    return PeerPublic.model_validate({k: row[k] for k in PeerPublic.model_fields})


@router.post("/peers", status_code=201, responses=problems(401, 403, 422))
async def configure_peer(body: PeerCreate, db: Db, log_: Log, principal: Manager,
                         metadata: RequestMetadata) -> PeerPublic:
    """Accept a remote cluster's webhook deliveries for one of our clusters (its managers)."""
    if not principal.manages(body.local_cluster_id):
        raise Forbidden(f"body.local_cluster_id: you manage cluster {principal.managed_cluster}")
    peer_id, now = str(uuid.uuid4()), utc_now_text()
    events_url = str(body.events_url).rstrip("/") if body.events_url else None

    def run(conn: Connection) -> PeerPublic:
        log_.append(conn, stream_id("peer", peer_id), STREAM_TYPES["peer"], NO_STREAM, [PeerConfigured(
            peer_id=peer_id, local_cluster_id=body.local_cluster_id, remote_cluster_id=body.remote_cluster_id,
            source=body.source, events_url=events_url)], metadata)
        row = {"id": peer_id, "local_cluster_id": body.local_cluster_id, "remote_cluster_id": body.remote_cluster_id,
               "source": body.source, "secret": body.secret, "events_url": events_url, "token": body.token,
               "created_at": now}
        conn.execute(insert(peers).values(row))
        return _peer_public(row)

    return await db.write(run)


def _local_cluster(principal: Principal) -> str | None:
    return principal.managed_cluster or principal.member_cluster


@router.get("/peers", responses=problems(401, 403))
async def list_peers(db: Db, principal: Manager) -> list[PeerPublic]:
    """Our cluster's peers (platform admins: all), without their secrets."""
    def read(conn: Connection) -> list[PeerPublic]:
        query = select(peers).order_by(peers.c.created_at, peers.c.id)
        if not principal.is_admin:
            query = query.where(peers.c.local_cluster_id == principal.managed_cluster)
        return [_peer_public(row) for row in conn.execute(query).mappings()]

    return await db.read(read)


@router.post("/inbox", responses=problems(401, 413, 422))
async def inbox(request: Request, db: Db, log_: Log, _: Signed) -> Received:
    """Receive a signed CloudEvent from a peer's webhook (authenticated by `Clusterhub-Signature`)."""
    body = await request.body()
    try:
        source = orjson.loads(body).get("source")
    except (orjson.JSONDecodeError, AttributeError):
        raise InvalidInput.field("body", "expected a structured CloudEvent (JSON)") from None
    if not isinstance(source, str):
        raise InvalidInput.field("body.source", "required")
    candidates = await db.read(lambda conn: conn.execute(
        select(peers.c.id, peers.c.secret).where(peers.c.source == source)).all())
    try:
        secret = signing.verify([c.secret for c in candidates], request.headers.get(signing.HEADER), body)
    except signing.SignatureError as exc:
        log.warning("federation.inbox_refused", source=source[:200], reason=str(exc))
        raise Unauthorized(f"signature refused: {exc}") from None
    peer_id = next(c.id for c in candidates if c.secret == secret)
    try:
        event = JSONFormat().read(None, body)
    except Exception:
        raise InvalidInput.field("body", "not a valid CloudEvent 1.0") from None
    data = event.get_data()
    time = event.get_time()
    item = FederatedItemReceived(
        peer_id=peer_id, cloud_event_id=event.get_id()[:100], cloud_event_type=event.get_type()[:150],
        source=source, subject=event.get_subject(), time=time.isoformat() if time else None,
        sequence=_text(event.get_extension("sequence")), data=data if isinstance(data, dict) else {})

    def run(conn: Connection) -> Received:
        r = received.c
        if conn.execute(select(r.peer_id).where(r.peer_id == peer_id, r.cloud_event_id == item.cloud_event_id)).first():
            return Received(status="duplicate")
        log_.append(conn, stream_id("peer", peer_id), STREAM_TYPES["peer"], None, [item],
                    Metadata(actor=f"peer:{peer_id}", service="registry",
                             request_id=getattr(request.state, "request_id", None)))
        return Received(status="recorded")

    return await db.write(run)


def _text(value: Any) -> str | None:
    return value[:40] if isinstance(value, str) else None


def _joint(row: Any, remote: str) -> JointEvent:
    return JointEvent(peer_id=row.peer_id, remote_cluster_id=remote, event_id=row.remote_event_id,
                      status=row.status, details=row.snapshot)


@router.get("/events", responses=problems(401, 403))
async def list_joint_events(db: Db, principal: ManagerOrMember) -> list[JointEvent]:
    """Joint events partner clusters share with the caller's cluster (withdrawn ones left out)."""
    def read(conn: Connection) -> list[JointEvent]:
        j = joint_events.c
        query = (select(joint_events, peers.c.remote_cluster_id).join(peers, peers.c.id == j.peer_id)
                 .where(j.status != "withdrawn").order_by(j.remote_event_id))
        if not principal.is_admin:
            cluster = _local_cluster(principal)
            query = query.where(j.local_cluster_id == cluster if cluster else false())
        return [_joint(row, row.remote_cluster_id) for row in conn.execute(query)]

    return await db.read(read)


def _find_joint(conn: Connection, principal: Principal, event_id: str) -> Any:
    j = joint_events.c
    query = (select(joint_events, peers.c.remote_cluster_id, peers.c.events_url, peers.c.token)
             .join(peers, peers.c.id == j.peer_id).where(j.remote_event_id == event_id, j.status != "withdrawn"))
    if not principal.is_admin:
        cluster = _local_cluster(principal)
        query = query.where(j.local_cluster_id == cluster if cluster else false())
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"joint event {event_id} not found")
    return row


class RemoteRefused(DomainError):
    """The partner's events service refused the registration; its status and detail are passed on."""

    title, type_slug = "Refused by the partner cluster", "refused-by-partner"


@router.post("/events/{event_id}/registrations", status_code=201,
             responses=problems(401, 403, 404, 409, 422, 503))
async def forward_registration(event_id: str, body: ForwardCreate, db: Db, log_: Log, principal: ManagerOrMember,
                               metadata: RequestMetadata) -> ForwardedPublic:
    """Register one of our contacts for a partner's joint event, through the federation."""
    def read(conn: Connection) -> tuple[Any, Any, Any]:
        joint = _find_joint(conn, principal, event_id)
        if not principal.represents(body.organisation_id):
            # Managers (and admins) register organisations of their own cluster only.
            access.referenced_organisation(conn, principal, body.organisation_id, "organisation_id", owned=True)
        organisation = queries.get_organisation(conn, body.organisation_id)
        if organisation is None:
            raise InvalidInput.field("body.organisation_id", f"no organisation {body.organisation_id}")
        contact = queries.get_contact(conn, body.contact_id)
        if contact is None or contact.organisation_id != body.organisation_id:
            raise InvalidInput.field("body.contact_id", f"no contact {body.contact_id} at this organisation")
        return joint, organisation, contact

    joint, organisation, contact = await db.read(read)
    if not joint.events_url or not joint.token:
        raise ServiceUnavailable("this peer is not configured for forwarded registrations (events_url, token)")
    payload = {"organisation_id": body.organisation_id,
               "organisation_name": organisation.short_name or organisation.legal_name,
               "contact_id": body.contact_id, "name": contact.name, "email": contact.email,
               "b2b": body.b2b}
    try:
        async with httpx.AsyncClient(timeout=FORWARD_TIMEOUT) as http:
            response = await http.post(f"{joint.events_url}/v1/events/{event_id}/federated-registrations",
                                       json={k: v for k, v in payload.items() if v is not None},
                                       headers={"Authorization": f"Bearer {joint.token}"})
    except httpx.TransportError as exc:
        log.warning("federation.forward_unreachable", peer=joint.peer_id, error=type(exc).__name__)
        raise ServiceUnavailable("the partner cluster does not answer; try again later") from None
    if response.status_code != 201:
        error = RemoteRefused(f"the partner cluster answered {response.status_code}: "
                              f"{_detail(response)}", remote_status=response.status_code)
        error.status = response.status_code if response.status_code in (403, 404, 409, 422) else 503
        raise error
    participant = response.json()

    def run(conn: Connection) -> ForwardedPublic:
        event = RegistrationForwarded(peer_id=joint.peer_id, remote_event_id=event_id,
                                      remote_participant_id=participant["id"], organisation_id=body.organisation_id,
                                      contact_id=body.contact_id, status=participant.get("status", "registered"))
        log_.append(conn, stream_id("peer", joint.peer_id), STREAM_TYPES["peer"], None, [event], metadata)
        row = conn.execute(select(forwarded).where(forwarded.c.remote_participant_id == participant["id"])).mappings().one()
        return ForwardedPublic.model_validate(dict(row))

    return await db.write(run)


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", ""))[:300]
    except ValueError:
        return ""


@router.get("/events/{event_id}/registrations", responses=problems(401, 403, 404))
async def list_forwarded(event_id: str, db: Db, principal: ManagerOrMember) -> list[ForwardedPublic]:
    """Registrations forwarded for a joint event: a manager's cluster's, or a member's organisation's."""
    def read(conn: Connection) -> list[ForwardedPublic]:
        joint = _find_joint(conn, principal, event_id)
        f = forwarded.c
        query = select(forwarded).where(f.peer_id == joint.peer_id, f.remote_event_id == event_id)
        if not principal.is_admin and not principal.managed_cluster:
            query = query.where(f.organisation_id == principal.member_organisation)
        return [ForwardedPublic.model_validate(dict(r)) for r in
                conn.execute(query.order_by(f.created_at, f.remote_participant_id)).mappings()]

    return await db.read(read)

