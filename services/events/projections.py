"""The events service's read models, fed by its events in the append's own transaction.

Each projector handles `events.<Name>` with a method `on_<Name>`, reading the typed (upcast)
event. The tables hold nothing the log does not (`clusterhub projections rebuild` replays
them), and they are also what the domain decides on: see `domain.py`.

Times are stored as UTC text (`2026-03-10T08:00:00Z`), which sorts and compares the same on
SQLite and PostgreSQL.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    delete,
    insert,
    update,
)

from services.events.notifications import OUTBOX_PROJECTOR
from shared.eventlog import Projector, RecordedEvent
from shared.projections import DispatchingProjector, created, stamps, touched
from shared.tables import metadata


def utc_text(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slot_id(session_id: str, number: int) -> str:
    return f"{session_id}-{number}"


def session_slots(session_id: str, starts_at: datetime, slot_minutes: int, slot_count: int) -> list[dict[str, Any]]:
    """The slots of a B2B session: ids `S1-1`, `S1-2`…, back to back."""
    length = timedelta(minutes=slot_minutes)
    return [{"id": slot_id(session_id, n + 1), "starts_at": starts_at + n * length,
             "ends_at": starts_at + (n + 1) * length} for n in range(slot_count)]


# --------------------------------------------------------------------------------------------
# Tables (migration 0003 creates exactly these)


events = Table(
    "events_events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("title", String(300), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("organiser_cluster_ids", JSON, nullable=False),
    Column("members_only", Boolean, nullable=False),
    Column("description", Text),
    Column("venue", String(500)),
    Column("online_url", String(300)),
    Column("time_zone", String(60), nullable=False),
    Column("starts_at", String(20), nullable=False),
    Column("ends_at", String(20), nullable=False),
    Column("capacity", Integer),
    Column("registration_opens_at", String(20)),
    Column("registration_closes_at", String(20)),
    Column("sessions", JSON, nullable=False),
    Column("b2b", JSON),
    Column("status", String(20), nullable=False),
    Column("agenda_published", Boolean, nullable=False),
    Column("session_count", Integer, nullable=False),  # B2B sessions ever added: names the next one
    Column("last_schedule", JSON),
    *stamps(),
    Index("ix_events_events_starts_at", "starts_at", "id"),
)

b2b_sessions = Table(
    "events_b2b_sessions",
    metadata,
    Column("event_id", String(36), nullable=False),
    Column("id", String(10), nullable=False),
    Column("title", String(200)),
    Column("starts_at", String(20), nullable=False),
    Column("slot_minutes", Integer, nullable=False),
    Column("slot_count", Integer, nullable=False),
    Column("tables", Integer, nullable=False),
    Column("room", String(200)),
    PrimaryKeyConstraint("event_id", "id", name="pk_events_b2b_sessions"),
)

slots = Table(
    "events_slots",
    metadata,
    Column("event_id", String(36), nullable=False),
    Column("id", String(20), nullable=False),
    Column("session_id", String(10), nullable=False),
    Column("starts_at", String(20), nullable=False),
    Column("ends_at", String(20), nullable=False),
    Column("tables", Integer, nullable=False),
    PrimaryKeyConstraint("event_id", "id", name="pk_events_slots"),
    Index("ix_events_slots_start", "event_id", "starts_at"),
)

participants = Table(
    "events_participants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("event_id", String(36), nullable=False),
    Column("contact_id", String(36), nullable=False),
    Column("organisation_id", String(36), nullable=False),
    Column("name", Text, nullable=False),  # name and e-mail: sealed envelopes (shared/pii.py)
    Column("email", Text),
    Column("organisation_name", String(300), nullable=False),
    Column("b2b", Boolean, nullable=False),
    Column("status", String(12), nullable=False),  # registered, waitlisted, cancelled
    Column("attendance", String(12)),  # checked_in, no_show
    Column("queue_position", BigInteger, nullable=False),  # log position of the registration: waitlist order
    Column("offer", Text),
    Column("seek", Text),
    Column("keywords", JSON, nullable=False),
    Column("unavailable_slots", JSON, nullable=False),
    Column("booth", String(40)),
    *stamps(),
    Index("ix_events_participants_event", "event_id", "status", "queue_position"),
    Index("ix_events_participants_contact", "event_id", "contact_id"),
)

meetings = Table(
    "events_meetings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("event_id", String(36), nullable=False),
    Column("requester_id", String(36), nullable=False),
    Column("receiver_id", String(36), nullable=False),
    Column("requester_name", Text, nullable=False),  # sealed, as the participants' names
    Column("requester_organisation_name", String(300), nullable=False),
    Column("receiver_name", Text, nullable=False),
    Column("receiver_organisation_name", String(300), nullable=False),
    Column("message", Text),
    Column("priority", Integer, nullable=False),
    Column("status", String(10), nullable=False),  # requested, accepted, declined, cancelled
    Column("slot_id", String(20)),
    Column("starts_at", String(20)),
    Column("ends_at", String(20)),
    Column("table_name", String(10)),
    Column("booth", String(40)),
    Column("locked", Boolean, nullable=False),
    Column("decline_reason", String(500)),
    Column("cancelled_by", String(36)),
    Column("cancel_reason", String(500)),
    *stamps(),
    Index("ix_events_meetings_event", "event_id", "status", "created_at"),
    Index("ix_events_meetings_slot", "event_id", "slot_id"),
    Index("ix_events_meetings_requester", "requester_id", "status"),
    Index("ix_events_meetings_receiver", "receiver_id", "status"),
)

outcomes = Table(
    "events_meeting_outcomes",
    metadata,
    Column("meeting_id", String(36), nullable=False),
    Column("participant_id", String(36), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("note", Text),
    Column("recorded_at", String(32), nullable=False),
    PrimaryKeyConstraint("meeting_id", "participant_id", name="pk_events_meeting_outcomes"),
    Index("ix_events_meeting_outcomes_event", "event_id"),
)

TABLES = (events, b2b_sessions, slots, participants, meetings, outcomes)


# --------------------------------------------------------------------------------------------
# Projectors


class _Projector(DispatchingProjector):
    prefix = "events"


_EVENT_TIMES = ("starts_at", "ends_at", "registration_opens_at", "registration_closes_at")


def _event_columns(values: dict[str, Any]) -> dict[str, Any]:
    """Event fields as stored: times as UTC text, the rest as the events carry them (JSON values)."""
    return {name: utc_text(datetime.fromisoformat(value)) if name in _EVENT_TIMES and value else value
            for name, value in values.items()}


class EventProjector(_Projector):
    name = "events.events"
    tables: Sequence[Table] = (events, b2b_sessions, slots)

    def _set(self, conn: Connection, event_id: str, recorded: RecordedEvent, **values: Any) -> None:
        conn.execute(update(events).where(events.c.id == event_id).values(**values, **touched(recorded)))

    def on_EventScheduled(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        values = _event_columns(event.model_dump(mode="json", exclude={"event_id"}))
        conn.execute(insert(events).values(id=event.event_id, **values, status="draft", agenda_published=False,
                                           session_count=0, **created(recorded)))

    def on_EventUpdated(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.event_id, recorded, **_event_columns(event.changes))

    def on_EventPublished(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.event_id, recorded, status="published")

    def on_RegistrationClosed(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.event_id, recorded, status="registration_closed")

    def on_EventHeld(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.event_id, recorded, status="held")

    def on_EventArchived(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.event_id, recorded, status="archived")

    def on_B2BSessionAdded(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(insert(b2b_sessions).values(
            event_id=event.event_id, id=event.session_id, title=event.title, starts_at=utc_text(event.starts_at),
            slot_minutes=event.slot_minutes, slot_count=event.slot_count, tables=event.tables, room=event.room))
        rows = [{"event_id": event.event_id, "id": slot["id"], "session_id": event.session_id,
                 "starts_at": utc_text(slot["starts_at"]), "ends_at": utc_text(slot["ends_at"]),
                 "tables": event.tables}
                for slot in session_slots(event.session_id, event.starts_at, event.slot_minutes, event.slot_count)]
        conn.execute(insert(slots), rows)
        self._set(conn, event.event_id, recorded, session_count=events.c.session_count + 1)

    def on_B2BSessionRemoved(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(delete(slots).where(slots.c.event_id == event.event_id, slots.c.session_id == event.session_id))
        conn.execute(delete(b2b_sessions).where(b2b_sessions.c.event_id == event.event_id,
                                                b2b_sessions.c.id == event.session_id))
        self._set(conn, event.event_id, recorded)

    def on_ScheduleGenerated(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        summary = event.model_dump(mode="json", exclude={"event_id"}) | {"at": recorded.recorded_at}
        self._set(conn, event.event_id, recorded, last_schedule=summary)

    def on_AgendaPublished(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.event_id, recorded, agenda_published=True)

    def on_AgendaUnlocked(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.event_id, recorded, agenda_published=False)


class ParticipantProjector(_Projector):
    name = "events.participants"
    tables: Sequence[Table] = (participants,)

    def _set(self, conn: Connection, participant_id: str, recorded: RecordedEvent, **values: Any) -> None:
        conn.execute(update(participants).where(participants.c.id == participant_id)
                     .values(**values, **touched(recorded)))

    def _insert(self, conn: Connection, event: Any, recorded: RecordedEvent, status: str) -> None:
        conn.execute(insert(participants).values(
            id=event.participant_id, **event.model_dump(exclude={"participant_id"}), status=status,
            queue_position=recorded.position, keywords=[], unavailable_slots=[], **created(recorded)))

    def on_ParticipantRegistered(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._insert(conn, event, recorded, "registered")

    def on_ParticipantWaitlisted(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._insert(conn, event, recorded, "waitlisted")

    def on_WaitlistPromoted(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.participant_id, recorded, status="registered")

    def on_RegistrationCancelled(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.participant_id, recorded, status="cancelled")

    def on_ParticipantCheckedIn(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.participant_id, recorded, attendance="checked_in")

    def on_NoShowRecorded(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.participant_id, recorded, attendance="no_show")

    def on_B2BProfileUpdated(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.participant_id, recorded, offer=event.offer, seek=event.seek, keywords=event.keywords)

    def on_AvailabilityUpdated(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.participant_id, recorded, unavailable_slots=event.unavailable_slots)

    def on_BoothAssigned(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.participant_id, recorded, booth=event.booth)


_INSERT_MEETING = insert(meetings)


class MeetingProjector(_Projector):
    name = "events.meetings"
    tables: Sequence[Table] = (meetings, outcomes)

    def _set(self, conn: Connection, meeting_id: str, recorded: RecordedEvent, **values: Any) -> None:
        conn.execute(update(meetings).where(meetings.c.id == meeting_id).values(**values, **touched(recorded)))

    def on_MeetingRequested(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        # Values as parameters, not .values(): the statement is then the same object every time.
        conn.execute(_INSERT_MEETING, {"id": event.meeting_id, **event.model_dump(exclude={"meeting_id"}),
                                       "status": "requested", "locked": False, **created(recorded)})

    def on_MeetingAccepted(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.meeting_id, recorded, status="accepted")

    def on_MeetingDeclined(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.meeting_id, recorded, status="declined", decline_reason=event.reason)

    def _place(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.meeting_id, recorded, slot_id=event.slot_id, starts_at=utc_text(event.starts_at),
                  ends_at=utc_text(event.ends_at), table_name=event.table, booth=event.booth)

    on_MeetingScheduled = _place
    on_MeetingMoved = _place

    def on_MeetingUnscheduled(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.meeting_id, recorded, slot_id=None, starts_at=None, ends_at=None, table_name=None,
                  booth=None, locked=False)

    def on_MeetingLocked(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.meeting_id, recorded, locked=True)

    def on_MeetingUnlocked(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.meeting_id, recorded, locked=False)

    def on_MeetingCancelled(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        # A cancelled meeting frees its slot and table; where it was stays in the log.
        self._set(conn, event.meeting_id, recorded, status="cancelled", cancelled_by=event.by,
                  cancel_reason=event.reason, slot_id=None, starts_at=None, ends_at=None, table_name=None,
                  booth=None, locked=False)

    def on_MeetingOutcomeRecorded(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        key = (outcomes.c.meeting_id == event.meeting_id) & (outcomes.c.participant_id == event.participant_id)
        conn.execute(delete(outcomes).where(key))
        conn.execute(insert(outcomes).values(meeting_id=event.meeting_id, participant_id=event.participant_id,
                                             event_id=event.event_id, outcome=event.outcome, note=event.note,
                                             recorded_at=recorded.recorded_at))
        self._set(conn, event.meeting_id, recorded)


# The outbox is rebuildable too: delivery outcomes are events (NotificationSent/Failed), so a
# replay restores sent rows as sent and never mails anyone twice.
PROJECTORS: list[Projector] = [EventProjector(), ParticipantProjector(), MeetingProjector(), OUTBOX_PROJECTOR]
