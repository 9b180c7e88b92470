"""GDPR for contact persons: erasure (crypto-shredding), access and portability, consents.

- `DELETE /v1/persons/{id}`: the person's key goes (shared/pii.py) and `registry.PersonErased`
  is appended to their stream. Every event stays and the hash chain still verifies; every sealed
  value about them (contact fields, registrations, meeting names, outbox mail, stored responses)
  reads "erased" from then on. A second erasure changes nothing and answers 204 as well.
  Platform admins and the managers of the person's cluster may erase; members may not.
- `GET /v1/persons/{id}/export`: everything held about the person, as JSON. The person has no
  account of their own: platform admins, their cluster's managers and their organisation's
  members ask for them.
- `PUT /v1/persons/{id}/consents`: the whole set of consents, recorded with its time.

A person is a contact (`person-{id}` stream); one removed from their organisation is still a
person whose data we hold, so these routes find them by their stream, not by the contacts table.
"""
from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Response
from sqlalchemy import Connection, literal, select

from services.registry import access, domain, queries
from services.registry.api import Db, Log, Manager, ManagerOrMember
from services.registry.events import stream_id
from services.registry.models import Consents, ContactPublic
from services.registry.projections import memberships, organisations
from shared import pii
from shared.auth import Principal
from shared.db import Database
from shared.errors import NotFound
from shared.eventlog import EventLog, Metadata
from shared.http import RequestMetadata, etag, problems

router = APIRouter(prefix="/v1", tags=["persons"])

# Event types of the events service that start a registration of a person (by contact id).
REGISTRATIONS = ("events.ParticipantRegistered", "events.ParticipantWaitlisted")


def organisation_of(conn: Connection, log: EventLog, person_id: str) -> str:
    """The person's organisation, from the first event of their stream; 404 if there is none."""
    first = log.read_stream(conn, stream_id("person", person_id))[:1]
    if not first or "organisation_id" not in first[0].data:
        raise NotFound(f"person {person_id} not found")
    return first[0].data["organisation_id"]


def _check(conn: Connection, log: EventLog, principal: Principal, person_id: str) -> str:
    """The person's organisation, if the caller owns it (404 otherwise, as if nobody were there)."""
    organisation_id = organisation_of(conn, log, person_id)
    owned = conn.execute(select(access.organisation_owned(principal, literal(organisation_id)))).scalar()
    if not owned:
        raise NotFound(f"person {person_id} not found")
    return organisation_id


def after_erasure(db: Database) -> None:
    """Push the deleted key out of what the store keeps beside its tables.

    SQLite: checkpoint the WAL into the file and truncate it (secure_delete, set on every
    connection, has zeroed the key's bytes in the page). PostgreSQL keeps the old row version
    until VACUUM, which only the tables' owner may run: tried here, a no-op (with a warning) for
    the services' role; operators vacuum `person_keys` (see the README).
    """
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        if db.dialect == "sqlite":
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            autocommit = raw.autocommit
            raw.rollback()
            raw.autocommit = True
            try:
                raw.execute("VACUUM person_keys")
            finally:
                raw.autocommit = autocommit


def erase(db: Database, log: EventLog, person_id: str, metadata: Metadata) -> bool:
    """`clusterhub gdpr erase`: erase in one transaction, then clean up. False if erased already."""
    with db.writing() as conn:
        erased = domain.erase_person(conn, log, person_id, metadata)
    after_erasure(db)
    return erased


@router.delete("/persons/{person_id}", status_code=204, responses=problems(401, 403, 404))
async def erase_person(person_id: str, principal: Manager, db: Db, log: Log, metadata: RequestMetadata) -> Response:
    """Erase a person (GDPR art. 17): their key is deleted, their data reads "erased" everywhere.
    Erasing an erased person again changes nothing and answers 204 too."""
    def run(conn: Connection) -> bool:
        _check(conn, log, principal, person_id)
        return domain.erase_person(conn, log, person_id, metadata)

    await db.write(run)
    await anyio.to_thread.run_sync(after_erasure, db)
    return Response(status_code=204)


@router.put("/persons/{person_id}/consents", responses=problems(401, 403, 404, 409, 422))
async def record_consents(person_id: str, body: Consents, response: Response, principal: ManagerOrMember, db: Db,
                          log: Log, metadata: RequestMetadata) -> ContactPublic:
    """Record the person's consents (newsletter, sharing their profile with partner clusters)."""
    def run(conn: Connection) -> ContactPublic:
        _check(conn, log, principal, person_id)
        return domain.record_consents(conn, log, person_id, body, metadata)

    contact = await db.write(run)
    response.headers["ETag"] = etag(contact.version)
    return contact


@router.get("/persons/{person_id}/export", responses=problems(401, 403, 404))
async def export_person(person_id: str, principal: ManagerOrMember, db: Db, log: Log) -> dict[str, Any]:
    """Everything held about a person, as JSON (GDPR art. 15 and 20)."""
    def read(conn: Connection) -> dict[str, Any]:
        organisation_id = _check(conn, log, principal, person_id)
        return export(conn, log, person_id, organisation_id)

    return await db.read(read)


def export(conn: Connection, log: EventLog, person_id: str, organisation_id: str) -> dict[str, Any]:
    """The person's contact record, organisation, consents, event registrations and their
    histories, and the whole of their own stream; sealed values opened ("erased" once erased)."""
    contact = queries.get_contact(conn, person_id)
    o, m = organisations.c, memberships.c
    organisation = conn.execute(select(o.id, o.legal_name, o.short_name).where(o.id == organisation_id)).first()
    clusters = conn.execute(select(m.cluster_id, m.status).where(m.organisation_id == organisation_id)
                            .order_by(m.created_at, m.id)).all()
    history = [event.public() for event in log.read_stream(conn, stream_id("person", person_id))]
    participations = []
    after = 0
    while True:
        page = log.read(conn, after=after, limit=5000, event_types=REGISTRATIONS)
        for started in page:
            if started.data.get("contact_id") == person_id:
                events = log.read_stream(conn, started.stream_id)
                participations.append({"participant_id": started.data["participant_id"],
                                       "event_id": started.data["event_id"],
                                       "history": [event.public() for event in events]})
        if len(page) < 5000:
            break
        after = page[-1].position
    return pii.open_tree(conn, {
        "person_id": person_id,
        "erasure": pii.status(conn, person_id),
        "contact": contact.model_dump() if contact else None,
        "consents": contact.consents.model_dump() if contact and contact.consents else None,
        "organisation": ({"id": organisation.id, "legal_name": organisation.legal_name,
                          "short_name": organisation.short_name} if organisation else {"id": organisation_id}),
        "organisation_memberships": [{"cluster_id": row.cluster_id, "status": row.status} for row in clusters],
        "event_participations": participations,
        "history": history,
    })
