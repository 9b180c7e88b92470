"""Sharing agreements: what an owner cluster shares with a partner cluster, and who may see them.

An agreement names the joint events explicitly (`event_ids`): publishing an event never shares
it by itself, so a manager cannot leak an event by forgetting a flag. Profiles and opportunities
are shared by category (`public_profiles`, `shareable_opportunities`), because those already
carry their own visibility rules (active membership; visibility `partner_clusters`/`public`).
One agreement in force per (owner, partner); the owner's managers conclude, amend and end it,
the partner cluster's system and managers read it.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Connection, false, insert, or_, select, true, update
from sqlalchemy.sql import ColumnElement

from services.registry.federation.events import (
    STREAM_TYPES,
    SharingAgreementAmended,
    SharingAgreementConcluded,
    SharingAgreementEnded,
    stream_id,
)
from services.registry.federation.tables import agreements
from services.registry.projections import clusters
from shared.auth import CLUSTER_MANAGER, PARTNER_CLUSTER, Principal, allow

from shared.errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed
from shared.eventlog import NO_STREAM, EventLog, Metadata, RecordedEvent
from shared.http import Db, IfMatch, Log, OptionalIfMatch, RequestMetadata, etag, problems

ClusterId = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z-]{1,64}$")]
EventId = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z-]{1,64}$")]
STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
IN_FORCE, ENDED = "in_force", "ended"


# --------------------------------------------------------------------------------------------
# Schemas


class AgreementCreate(BaseModel):
    model_config = STRICT

    owner_cluster_id: ClusterId = Field(description="The cluster that shares (a cluster of this platform)")
    partner_cluster_id: ClusterId = Field(description="The cluster it shares with (its `cluster` claim)")
    event_ids: list[EventId] = Field(default=[], max_length=500, description="Joint events, by id")
    public_profiles: bool = False
    shareable_opportunities: bool = False


class AgreementUpdate(BaseModel):
    model_config = STRICT

    event_ids: list[EventId] | None = Field(default=None, max_length=500)
    public_profiles: bool | None = None
    shareable_opportunities: bool | None = None


class AgreementEnd(BaseModel):
    model_config = STRICT

    reason: str | None = Field(default=None, max_length=500)


class AgreementPublic(BaseModel):
    id: str
    owner_cluster_id: str
    partner_cluster_id: str
    event_ids: list[str]
    public_profiles: bool
    shareable_opportunities: bool
    status: str
    concluded_at: str
    updated_at: str
    version: int


class AgreementPage(BaseModel):
    data: list[AgreementPublic]


# --------------------------------------------------------------------------------------------
# The aggregate


@dataclass
class Agreement:
    id: str
    version: int = 0
    owner_cluster_id: str = ""
    partner_cluster_id: str = ""
    terms: dict[str, Any] = field(default_factory=dict)
    in_force: bool = False

    @property
    def stream_id(self) -> str:
        return stream_id("agreement", self.id)

    @classmethod
    def load(cls, conn: Connection, log: EventLog, agreement_id: str) -> Agreement:
        agreement = cls(agreement_id)
        for recorded in log.read_stream(conn, agreement.stream_id):
            agreement.apply(recorded.event)
            agreement.version = recorded.version
        if not agreement.version:
            raise NotFound(f"agreement {agreement_id} not found")
        return agreement

    def at(self, version: int | None) -> Agreement:
        """412 when the caller's If-Match names another version than the stored one."""
        if version is not None and version != self.version:
            raise PreconditionFailed(f"agreement {self.id} is at version {self.version}, not {version}")
        return self

    def apply(self, event: Any) -> None:
        if isinstance(event, SharingAgreementConcluded):
            self.owner_cluster_id, self.partner_cluster_id = event.owner_cluster_id, event.partner_cluster_id
            self.terms = _terms(event)
            self.in_force = True
        elif isinstance(event, SharingAgreementAmended):
            self.terms = _terms(event)
        elif isinstance(event, SharingAgreementEnded):
            self.in_force = False

    def amend(self, changes: AgreementUpdate) -> list[Any]:
        self.live()
        terms = {**self.terms, **changes.model_dump(exclude_unset=True, exclude_none=True)}
        terms["event_ids"] = _unique(terms["event_ids"])
        if terms == self.terms:
            return []
        return [SharingAgreementAmended(agreement_id=self.id, **terms)]

    def end(self, reason: str | None) -> list[Any]:
        self.live()
        return [SharingAgreementEnded(agreement_id=self.id, reason=reason)]

    def live(self) -> Agreement:
        if not self.in_force:
            raise Conflict(f"agreement {self.id} has ended")
        return self

    def save(self, conn: Connection, log: EventLog, events: list[Any], metadata: Metadata) -> None:
        log.append(conn, self.stream_id, STREAM_TYPES["agreement"], self.version, events, metadata)


def _terms(event: Any) -> dict[str, Any]:
    return {"event_ids": list(event.event_ids), "public_profiles": event.public_profiles,
            "shareable_opportunities": event.shareable_opportunities}


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def conclude(conn: Connection, log: EventLog, body: AgreementCreate, metadata: Metadata) -> str:
    if body.owner_cluster_id == body.partner_cluster_id:
        raise InvalidInput.field("body.partner_cluster_id", "a cluster does not share with itself")
    if conn.execute(select(clusters.c.id).where(clusters.c.id == body.owner_cluster_id)).scalar() is None:
        raise InvalidInput.field("body.owner_cluster_id", f"no cluster {body.owner_cluster_id}")
    a = agreements.c
    existing = conn.execute(select(a.id).where(a.owner_cluster_id == body.owner_cluster_id,
                                               a.partner_cluster_id == body.partner_cluster_id,
                                               a.status == IN_FORCE)).scalar()
    if existing:
        raise Conflict("an agreement between these clusters is already in force; amend it", agreement_id=existing)
    agreement_id = str(uuid.uuid4())
    event = SharingAgreementConcluded(agreement_id=agreement_id, owner_cluster_id=body.owner_cluster_id,
                                      partner_cluster_id=body.partner_cluster_id,
                                      event_ids=_unique(body.event_ids), public_profiles=body.public_profiles,
                                      shareable_opportunities=body.shareable_opportunities)
    log.append(conn, stream_id("agreement", agreement_id), STREAM_TYPES["agreement"], NO_STREAM, [event], metadata)
    return agreement_id


# --------------------------------------------------------------------------------------------
# Read model (inline)


class AgreementProjector:
    name = "federation.agreements"
    tables = (agreements,)

    def handles(self, event_type: str) -> bool:
        return event_type.startswith("federation.SharingAgreement")

    def apply(self, conn: Connection, recorded: RecordedEvent) -> None:
        event = recorded.event
        stamps = {"updated_at": recorded.recorded_at, "version": recorded.version}
        if isinstance(event, SharingAgreementConcluded):
            conn.execute(insert(agreements).values(
                id=event.agreement_id, owner_cluster_id=event.owner_cluster_id,
                partner_cluster_id=event.partner_cluster_id, status=IN_FORCE, concluded_at=recorded.recorded_at,
                **_terms(event), **stamps))
        elif isinstance(event, SharingAgreementAmended):
            conn.execute(update(agreements).where(agreements.c.id == event.agreement_id)
                         .values(**_terms(event), **stamps))
        elif isinstance(event, SharingAgreementEnded):
            conn.execute(update(agreements).where(agreements.c.id == event.agreement_id)
                         .values(status=ENDED, **stamps))


AGREEMENT_PROJECTOR = AgreementProjector()


# --------------------------------------------------------------------------------------------
# Access: the owner's managers change; they and the partner (its system and managers) see


def visible(principal: Principal) -> ColumnElement[bool]:
    if principal.is_admin:
        return true()
    a = agreements.c
    seen: list[ColumnElement[bool]] = []
    if principal.managed_cluster:
        seen += [a.owner_cluster_id == principal.managed_cluster, a.partner_cluster_id == principal.managed_cluster]
    if PARTNER_CLUSTER in principal.roles and principal.cluster:
        seen.append(a.partner_cluster_id == principal.cluster)
    return or_(*seen) if seen else false()


def _row(conn: Connection, principal: Principal, agreement_id: str, *, to_change: bool) -> AgreementPublic:
    row = conn.execute(select(agreements).where(agreements.c.id == agreement_id, visible(principal))).mappings().first()
    if row is None:
        raise NotFound(f"agreement {agreement_id} not found")
    if to_change and not principal.manages(row["owner_cluster_id"]):
        raise Forbidden("only the owner cluster's managers change an agreement")
    return AgreementPublic.model_validate(dict(row))


# --------------------------------------------------------------------------------------------
# Routes

router = APIRouter(prefix="/v1/agreements", tags=["federation"])
Manager = Annotated[Principal, allow(CLUSTER_MANAGER)]
Reader = Annotated[Principal, allow(CLUSTER_MANAGER, PARTNER_CLUSTER)]
WRITE_ERRORS = problems(401, 403, 404, 409, 412, 422, 428)


def _tagged(response: Response, agreement: AgreementPublic) -> AgreementPublic:
    response.headers["ETag"] = etag(agreement.version)
    return agreement


@router.post("", status_code=201, responses=WRITE_ERRORS)
async def conclude_agreement(body: AgreementCreate, response: Response, db: Db, log: Log, principal: Manager,
                             metadata: RequestMetadata) -> AgreementPublic:
    """Conclude a sharing agreement (the owner cluster's managers)."""
    if not principal.manages(body.owner_cluster_id):
        raise Forbidden(f"body.owner_cluster_id: you manage cluster {principal.managed_cluster}")

    def run(conn: Connection) -> AgreementPublic:
        return _row(conn, principal, conclude(conn, log, body, metadata), to_change=False)

    agreement = await db.write(run)
    response.headers["Location"] = f"/v1/agreements/{agreement.id}"
    return _tagged(response, agreement)


@router.get("", responses=problems(401, 403, 422))
async def list_agreements(db: Db, principal: Reader,
                          status: Annotated[str | None, Query(pattern="^(in_force|ended)$")] = None) -> AgreementPage:
    """Agreements the caller is a party to (owner or partner)."""

    def read(conn: Connection) -> AgreementPage:
        query = select(agreements).where(visible(principal)).order_by(agreements.c.concluded_at, agreements.c.id)
        if status:
            query = query.where(agreements.c.status == status)
        return AgreementPage(data=[AgreementPublic.model_validate(dict(r)) for r in conn.execute(query).mappings()])

    return await db.read(read)


@router.get("/{agreement_id}", responses=problems(401, 403, 404))
async def get_agreement(agreement_id: str, response: Response, db: Db, principal: Reader) -> AgreementPublic:
    """One agreement the caller is a party to."""
    return _tagged(response, await db.read(lambda conn: _row(conn, principal, agreement_id, to_change=False)))


@router.patch("/{agreement_id}", responses=WRITE_ERRORS)
async def amend_agreement(agreement_id: str, body: AgreementUpdate, response: Response, db: Db, log: Log,
                          principal: Manager, version: IfMatch, metadata: RequestMetadata) -> AgreementPublic:
    """Amend what is shared (the terms sent replace those in force; If-Match required)."""

    def run(conn: Connection) -> AgreementPublic:
        _row(conn, principal, agreement_id, to_change=True)
        agreement = Agreement.load(conn, log, agreement_id).at(version)
        agreement.save(conn, log, agreement.amend(body), metadata)
        return _row(conn, principal, agreement_id, to_change=False)

    return _tagged(response, await db.write(run))


@router.post("/{agreement_id}/end", responses=WRITE_ERRORS)
async def end_agreement(agreement_id: str, body: AgreementEnd, response: Response, db: Db, log: Log,
                        principal: Manager, version: OptionalIfMatch, metadata: RequestMetadata) -> AgreementPublic:
    """End the agreement: nothing more is shared from this point of the log on."""

    def run(conn: Connection) -> AgreementPublic:
        _row(conn, principal, agreement_id, to_change=True)
        agreement = Agreement.load(conn, log, agreement_id).at(version)
        agreement.save(conn, log, agreement.end(body.reason), metadata)
        return _row(conn, principal, agreement_id, to_change=False)

    return _tagged(response, await db.write(run))
