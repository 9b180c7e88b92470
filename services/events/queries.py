"""Reads over the events service's read models: one row by id, filtered lists with keyset pagination.

Participants' names and e-mails are sealed in the tables (shared/pii.py): each read opens them,
one key lookup per page, and they read "erased" once the person is erased.
"""
from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Connection, Select, String, bindparam, cast, func, or_, select
from sqlalchemy.sql import ColumnElement

from services.events.models import (
    B2BSessionPublic,
    EventPublic,
    MeetingPublic,
    OutcomePublic,
    Page,
    ParticipantCard,
    ParticipantPublic,
    SlotPublic,
)
from services.events.projections import b2b_sessions, events, meetings, outcomes, participants, slots
from shared import pii
from shared.pagination import decode_cursor, encode_cursor, paged
from shared.text import fold, words

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Events


def _headcount(status: str) -> Any:
    return (select(func.count()).select_from(participants)
            .where(participants.c.event_id == events.c.id, participants.c.status == status)
            .scalar_subquery().label(status))


def _events() -> Select:
    return select(events, _headcount("registered"), _headcount("waitlisted"))


def get_event(conn: Connection, event_id: str) -> EventPublic | None:
    row = conn.execute(_events().where(events.c.id == event_id)).mappings().first()
    return EventPublic.model_validate(dict(row)) if row else None


def list_events(conn: Connection, *, status: str | None = None, kind: str | None = None,
                cluster_id: str | None = None, cursor: str | None = None, limit: int = 50,
                visible: ColumnElement[bool] | None = None) -> Page[EventPublic]:
    """`visible` limits the rows to what the caller may see."""
    stmt = _events() if visible is None else _events().where(visible)
    if status:
        stmt = stmt.where(events.c.status == status)
    else:
        stmt = stmt.where(events.c.status != "archived")
    if kind:
        stmt = stmt.where(events.c.kind == kind)
    if cluster_id:
        # The JSON list as text holds each id in quotes, on SQLite and PostgreSQL alike.
        stmt = stmt.where(cast(events.c.organiser_cluster_ids, String).like(f'%"{cluster_id}"%'))
    return paged(conn, stmt, [(events.c.starts_at, str), (events.c.id, str)], cursor, limit,
                 EventPublic.model_validate)


def list_b2b_sessions(conn: Connection, event_id: str) -> list[B2BSessionPublic]:
    slot_rows = conn.execute(select(slots).where(slots.c.event_id == event_id)
                             .order_by(slots.c.starts_at)).mappings().all()
    sessions = conn.execute(select(b2b_sessions).where(b2b_sessions.c.event_id == event_id)
                            .order_by(b2b_sessions.c.starts_at)).mappings().all()
    return [B2BSessionPublic.model_validate({**row, "slots": [SlotPublic.model_validate(dict(s)) for s in slot_rows
                                                               if s["session_id"] == row["id"]]})
            for row in sessions]


# --------------------------------------------------------------------------------------------
# Participants


def get_participant(conn: Connection, event_id: str, participant_id: str) -> ParticipantPublic | None:
    row = conn.execute(select(participants).where(participants.c.id == participant_id,
                                                  participants.c.event_id == event_id)).mappings().first()
    return ParticipantPublic.model_validate(pii.open_rows(conn, [row])[0]) if row else None


def list_registrations(conn: Connection, event_id: str, *, status: str | None = None, cursor: str | None = None,
                       limit: int = 50) -> Page[ParticipantPublic]:
    """Registrations in the order they came (which is also the waitlist's order)."""
    stmt = select(participants).where(participants.c.event_id == event_id)
    if status:
        stmt = stmt.where(participants.c.status == status)
    page = paged(conn, stmt, [(participants.c.queue_position, int)], cursor, limit, lambda row: row)
    return Page[ParticipantPublic](
        data=[ParticipantPublic.model_validate(row) for row in pii.open_rows(conn, page.data)],
        next_cursor=page.next_cursor)


def list_cards(conn: Connection, event_id: str, *, q: str | None = None, keyword: str | None = None,
               cursor: str | None = None, limit: int = 50) -> Page[ParticipantCard]:
    """B2B participants to browse, by organisation name; `q` matches all its words in name,
    organisation, offer, seek and keywords (accents and case folded)."""
    rows = conn.execute(select(participants).where(
        participants.c.event_id == event_id, participants.c.status == "registered", participants.c.b2b.is_(True))
        .order_by(participants.c.organisation_name, participants.c.id)).mappings().all()
    rows = pii.open_rows(conn, rows)
    wanted = words(q) if q else []
    found = []
    for row in rows:
        text = fold(" ".join([row["name"], row["organisation_name"], row["offer"] or "", row["seek"] or "",
                              *row["keywords"]]))
        if all(word in text for word in wanted) and (
                keyword is None or fold(keyword) in {fold(k) for k in row["keywords"]}):
            found.append(row)
    if cursor:
        after = tuple(decode_cursor(cursor, [str, str]))
        found = [row for row in found if (row["organisation_name"], row["id"]) > after]
    page, rest = found[:limit], found[limit:]
    next_cursor = encode_cursor([page[-1]["organisation_name"], page[-1]["id"]]) if rest else None
    return Page[ParticipantCard](data=[ParticipantCard.model_validate(dict(row)) for row in page],
                                 next_cursor=next_cursor)


# --------------------------------------------------------------------------------------------
# Meetings


def _meeting(row: dict[str, Any], outcome_rows: list[dict[str, Any]]) -> MeetingPublic:
    return MeetingPublic.model_validate({**row, "table": row["table_name"],
                                         "outcomes": [OutcomePublic.model_validate(o) for o in outcome_rows]})


def _outcomes(conn: Connection, meeting_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    if meeting_ids:
        rows = conn.execute(select(outcomes).where(outcomes.c.meeting_id.in_(meeting_ids))
                            .order_by(outcomes.c.recorded_at)).mappings()
        for row in rows:
            found.setdefault(row["meeting_id"], []).append(dict(row))
    return found


# Built once (every meeting write reads its meeting back with it): building costs more than running.
_MEETING = select(meetings).where(meetings.c.id == bindparam("meeting_id"),
                                  meetings.c.event_id == bindparam("event_id"))


def get_meeting(conn: Connection, event_id: str, meeting_id: str) -> MeetingPublic | None:
    row = conn.execute(_MEETING, {"meeting_id": meeting_id, "event_id": event_id}).mappings().first()
    if row is None:
        return None
    # Outcomes are recorded on accepted meetings only (which may be cancelled later): a meeting
    # still requested, or declined, has none to look up.
    found = _outcomes(conn, [meeting_id]) if row["status"] in ("accepted", "cancelled") else {}
    return _meeting(pii.open_rows(conn, [row])[0], found.get(meeting_id, []))


def list_meetings(conn: Connection, event_id: str, *, participant_id: str | None = None,
                  status: str | None = None, cursor: str | None = None, limit: int = 50,
                  visible: ColumnElement[bool] | None = None) -> Page[MeetingPublic]:
    stmt = select(meetings).where(meetings.c.event_id == event_id)
    if visible is not None:
        stmt = stmt.where(visible)
    if participant_id:
        stmt = stmt.where(or_(meetings.c.requester_id == participant_id, meetings.c.receiver_id == participant_id))
    if status:
        stmt = stmt.where(meetings.c.status == status)
    page = paged(conn, stmt, [(meetings.c.created_at, str), (meetings.c.id, str)], cursor, limit,
                 lambda row: row)
    found = _outcomes(conn, [row["id"] for row in page.data])
    return Page[MeetingPublic](data=[_meeting(row, found.get(row["id"], [])) for row in pii.open_rows(conn, page.data)],
                               next_cursor=page.next_cursor)
