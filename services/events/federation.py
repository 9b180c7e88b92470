"""Registrations from partner clusters: a partner's system registers its members for a joint event.

A joint event is one that a sharing agreement in force (services/registry/federation) names,
between one of the event's organiser clusters and the calling partner cluster. The partner vouches
for the person and their organisation (they are in its registry, not ours), so the registry is not
asked; the registration is otherwise the ordinary one (seats, waitlist, e-mail), recorded with the
partner's system as actor and its cluster as tenant.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, EmailStr, Field
from sqlalchemy import Connection, select

from services.events import domain, queries
from services.events.models import STRICT, ParticipantPublic, Uuid
from services.events.projections import events
from services.events.registry_client import Registrant
from services.registry.federation.tables import agreements
from shared.auth import PARTNER_CLUSTER, Principal, allow
from shared.db import Database
from shared.errors import NotFound
from shared.eventlog import EventLog
from shared.http import RequestMetadata, etag, problems

router = APIRouter(prefix="/v1/events", tags=["registrations"])
Partner = Annotated[Principal, allow(PARTNER_CLUSTER)]
LISTED = ("published", "registration_closed", "held")


class FederatedRegistrationCreate(BaseModel):
    model_config = STRICT

    organisation_id: Uuid = Field(description="The organisation, in the partner cluster's registry")
    organisation_name: str = Field(min_length=1, max_length=300)
    contact_id: Uuid = Field(description="The person, in the partner cluster's registry")
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr | None = None
    b2b: bool | None = None


def shared_with(conn: Connection, event_id: str, partner_cluster_id: str | None) -> bool:
    """The event is listed and an agreement in force shares it with this partner cluster."""
    row = conn.execute(select(events.c.status, events.c.organiser_cluster_ids).where(events.c.id == event_id)).first()
    if row is None or row.status not in LISTED or not partner_cluster_id:
        return False
    a = agreements.c
    terms = conn.execute(select(a.event_ids).where(a.status == "in_force", a.partner_cluster_id == partner_cluster_id,
                                                   a.owner_cluster_id.in_(list(row.organiser_cluster_ids)))).scalars()
    return any(event_id in event_ids for event_ids in terms)


def _db(request: Request) -> Database:
    return request.app.state.db


def _log(request: Request) -> EventLog:
    return request.app.state.log


@router.post("/{event_id}/federated-registrations", status_code=201, responses=problems(401, 403, 404, 409, 422))
async def register_from_partner(event_id: str, body: FederatedRegistrationCreate, response: Response,
                                db: Annotated[Database, Depends(_db)], log: Annotated[EventLog, Depends(_log)],
                                principal: Partner, metadata: RequestMetadata) -> ParticipantPublic:
    """A partner cluster registers one of its members' people for a joint event shared with it."""
    registrant = Registrant(organisation_id=body.organisation_id, organisation_name=body.organisation_name,
                            contact_id=body.contact_id, name=body.name, email=body.email)

    def run(conn: Connection) -> ParticipantPublic:
        if not principal.is_admin and not shared_with(conn, event_id, principal.cluster):
            raise NotFound(f"event {event_id} not found")
        rules = domain.registration_rules(conn, event_id)
        participant_id = domain.register(conn, log, event_id, registrant, metadata, b2b=body.b2b, checked_for=rules)
        participant = queries.get_participant(conn, event_id, participant_id)
        assert participant is not None
        return participant

    participant = await db.write(run)
    response.headers["Location"] = f"/v1/events/{event_id}/participants/{participant.id}"
    response.headers["ETag"] = etag(participant.version)
    return participant
