"""Who sees and changes what in the events service: the tenant rules, as SQL conditions and checks.

An event belongs to its organiser clusters; a registration (participant) also to the organisation
it was made for; a meeting to its event and to the organisations of both its sides.

Public (anyone, without credentials too): listed events (published, registration closed, held)
that are not members-only, with their B2B sessions. Members also see the listed events of their
own cluster, members-only ones included. Organisers (platform admins, and managers of an organiser
cluster) see and change everything about their events. A member sees and changes their own
organisation's registrations and meetings, and browses the participant cards of events they see.

What a caller may not see answers 404, as if it did not exist; what they see but may not change
answers 403.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, and_, cast, exists, false, or_, select, true
from sqlalchemy.orm import aliased

from services.events.projections import events, meetings, participants
from shared.auth import Principal
from shared.errors import Forbidden, NotFound

LISTED = ("published", "registration_closed", "held")
ev = events.c


def _organised_by(cluster_id: str) -> ColumnElement[bool]:
    # The JSON list as text holds each id in quotes; token cluster ids hold no LIKE wildcards.
    return cast(ev.organiser_cluster_ids, String).like(f'%"{cluster_id}"%')


def event_visible(principal: Principal) -> ColumnElement[bool]:
    if principal.is_admin:
        return true()
    listed = ev.status.in_(LISTED)
    seen = [and_(listed, ev.members_only.is_(False))]
    if principal.managed_cluster:
        seen.append(_organised_by(principal.managed_cluster))
    if principal.member_cluster:
        seen.append(and_(listed, _organised_by(principal.member_cluster)))
    return or_(*seen)


def meeting_visible(principal: Principal) -> ColumnElement[bool] | None:
    """For the meetings list of an event the caller does not organise: their organisation's meetings."""
    organisation = principal.member_organisation
    if organisation is None:
        return false()
    p = participants.c
    return exists().where(p.id.in_([meetings.c.requester_id, meetings.c.receiver_id]),
                          p.organisation_id == organisation)


@dataclass(frozen=True)
class EventAccess:
    organiser: bool
    members_only: bool
    organiser_cluster_ids: list[str]


def _organises(principal: Principal, organiser_cluster_ids: list[str]) -> bool:
    return principal.is_admin or (principal.managed_cluster is not None
                                  and principal.managed_cluster in organiser_cluster_ids)


def _sees(principal: Principal, row: Mapping[str, Any]) -> bool:
    if _organises(principal, row["organiser_cluster_ids"]):
        return True
    if row["status"] not in LISTED:
        return False
    return not row["members_only"] or principal.member_cluster in row["organiser_cluster_ids"]


def event(conn: Connection, principal: Principal, event_id: str, *, organiser: bool = False,
          row: Mapping[str, Any] | None = None) -> EventAccess:
    """404 unless the caller sees the event; with `organiser`, 403 unless they organise it. `row`: the
    event's row, when the caller has read it already (locked, say)."""
    if row is None:
        row = conn.execute(select(ev.organiser_cluster_ids, ev.status, ev.members_only)
                           .where(ev.id == event_id)).mappings().first()
    if row is None or not _sees(principal, row):
        raise NotFound(f"event {event_id} not found")
    organises = _organises(principal, row["organiser_cluster_ids"])
    if organiser and not organises:
        raise Forbidden("only the event's organisers may do this")
    return EventAccess(organises, row["members_only"], list(row["organiser_cluster_ids"]))


def attendee(principal: Principal, found: EventAccess) -> None:
    """Participant cards and meeting lists: for organisers, and members (who see their own side)."""
    if not found.organiser and principal.member_organisation is None:
        raise Forbidden("only the event's organisers and members of organisations may do this")


def participant(conn: Connection, principal: Principal, event_id: str, participant_id: str, *,
                organiser: bool = False) -> str:
    """The participant's organisation; 404 unless the caller organises the event or the participant is
    theirs; with `organiser`, 403 for the participant's own organisation."""
    found = event(conn, principal, event_id)
    p = participants.c
    organisation = conn.execute(select(p.organisation_id).where(p.id == participant_id,
                                                                p.event_id == event_id)).scalar()
    if organisation is None or not (found.organiser or principal.represents(organisation)):
        raise NotFound(f"participant {participant_id} not found")
    if organiser and not found.organiser:
        raise Forbidden("only the event's organisers may do this")
    return organisation


def own_participant(conn: Connection, principal: Principal, event_id: str, participant_id: str | None,
                    field: str, *, event_row: Mapping[str, Any] | None = None) -> None:
    """A participant named in a request body must be the caller's (organisers act for anyone)."""
    found = event(conn, principal, event_id, row=event_row)
    if found.organiser:
        return
    p = participants.c
    organisation = conn.execute(select(p.organisation_id).where(p.id == participant_id,
                                                                p.event_id == event_id)).scalar()
    if participant_id is None or not principal.represents(organisation):
        raise Forbidden(f"{field}: act for your own organisation's participant")


def meeting(conn: Connection, principal: Principal, event_id: str, meeting_id: str, *,
            organiser: bool = False, receiver: bool = False) -> None:
    """404 unless the caller organises the event or one side is theirs; 403 when it is theirs but the
    action is the organiser's (`organiser`) or the receiver's (`receiver`)."""
    found = event(conn, principal, event_id)
    requester, receiver_side = aliased(participants), aliased(participants)
    row = conn.execute(
        select(requester.c.organisation_id.label("requester"), receiver_side.c.organisation_id.label("receiver"))
        .select_from(meetings)
        .join(requester, requester.c.id == meetings.c.requester_id)
        .join(receiver_side, receiver_side.c.id == meetings.c.receiver_id)
        .where(meetings.c.id == meeting_id, meetings.c.event_id == event_id)).first()
    if found.organiser and row is not None:
        return
    if row is None or not (principal.represents(row.requester) or principal.represents(row.receiver)):
        raise NotFound(f"meeting {meeting_id} not found")
    if organiser:
        raise Forbidden("only the event's organisers may do this")
    if receiver and not principal.represents(row.receiver):
        raise Forbidden("only the receiver of the request may answer it")
