"""Events service rules: aggregates (they own the rules) and command handlers (lock, load, decide, append).

State comes from the read model, not from folding streams: a brokerage event's rules span many
streams at once (capacity over every registration; who is busy in which slot; tables per
slot), and the inline projectors keep those tables exactly as current as the log within the
append's own transaction. Every command first locks its event's row (`FOR UPDATE` on
PostgreSQL; SQLite has a single writer anyway), so commands on one event run one at a time and
checks that span streams cannot race. Each stream is still appended at the version that was
read, so a write that slipped past the lock would be a 409, never a lost update.

The final agenda freezes the schedule: whatever would place, move, unschedule, lock or cancel a
scheduled meeting answers 409 until the organiser unlocks it. One exception: a participant who
cancels their registration loses their meetings even then (they will not come either way).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import ValidationError
from sqlalchemy import Connection, and_, bindparam, func, literal, or_, select

from services.events.board import Board, Place, parse_utc
from services.events.events import (
    STREAM_TYPES,
    AgendaPublished,
    AgendaUnlocked,
    AvailabilityUpdated,
    B2BProfileUpdated,
    B2BSessionAdded,
    B2BSessionRemoved,
    BoothAssigned,
    EventArchived,
    EventHeld,
    EventPublished,
    EventScheduled,
    EventUpdated,
    MeetingAccepted,
    MeetingCancelled,
    MeetingDeclined,
    MeetingLocked,
    MeetingMoved,
    MeetingOutcomeRecorded,
    MeetingRequested,
    MeetingScheduled,
    MeetingUnlocked,
    NoShowRecorded,
    ParticipantCheckedIn,
    ParticipantRegistered,
    ParticipantWaitlisted,
    RegistrationCancelled,
    RegistrationClosed,
    WaitlistPromoted,
    stream_id,
)
from services.events.models import (
    AcceptRequest,
    AvailabilityUpdate,
    B2BSessionCreate,
    EventCreate,
    EventUpdate,
    MeetingCancel,
    MeetingMove,
    MeetingRequestCreate,
    OutcomeCreate,
    ProfileUpdate,
    SchedulingMode,
)
from services.events.projections import events, meetings, participants, session_slots, slots, utc_text
from services.events.registry_client import Registrant
from shared import pii
from shared.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from shared.eventlog import DomainEvent, EventLog, Metadata

OPEN_MEETING = ("requested", "accepted")


def new_id() -> str:
    return str(uuid.uuid4())


def utc_now() -> datetime:
    return datetime.now(UTC)


def invalid_input(exc: ValidationError, prefix: str = "body") -> InvalidInput:
    errors = [{"field": ".".join([prefix, *map(str, e["loc"])]), "message": e["msg"]} for e in exc.errors()]
    return InvalidInput("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors)


# --------------------------------------------------------------------------------------------
# Aggregates


@dataclass
class Entity:
    """One stream's state, as its read-model row holds it; `row["version"]` is the stream version."""

    row: dict[str, Any]
    kind: ClassVar[str]  # stream prefix
    label: ClassVar[str]  # what errors call it

    @classmethod
    def new(cls, entity_id: str) -> Self:
        return cls({"id": entity_id, "version": 0})

    @property
    def id(self) -> str:
        return self.row["id"]

    @property
    def version(self) -> int:
        return self.row["version"]

    def at(self, expected_version: int | None) -> Self:
        """This entity, if (when the caller says) it is still at `expected_version` (If-Match)."""
        if expected_version is not None and expected_version != self.version:
            raise PreconditionFailed(f"{self.label} {self.id} is at version {self.version}, not {expected_version}",
                                     current_version=self.version)
        return self

    def save(self, conn: Connection, log: EventLog, new_events: list[DomainEvent], metadata: Metadata) -> None:
        if new_events:
            log.append(conn, stream_id(self.kind, self.id), STREAM_TYPES[self.kind], self.version, new_events,
                       metadata)
            self.row["version"] += len(new_events)


@dataclass
class Event(Entity):
    """draft -> published -> registration_closed -> held; any of them -> archived."""

    kind, label = "event", "event"

    @property
    def status(self) -> str:
        return self.row["status"]

    def b2b(self) -> dict[str, Any]:
        """The brokerage settings; an event without them has no B2B meetings."""
        if not self.row["b2b"]:
            raise Conflict(f"event {self.id} has no B2B meetings")
        return self.row["b2b"]

    def live(self) -> Self:
        if self.status == "archived":
            raise Conflict(f"event {self.id} is archived")
        return self

    def expect(self, action: str, *allowed: str) -> Self:
        if self.status not in allowed:
            raise Conflict(f"cannot {action} while the event is {self.status}", status=self.status)
        return self

    def unfrozen(self) -> Self:
        if self.row["agenda_published"]:
            raise Conflict("the final agenda is published and the schedule is frozen; unlock the agenda first",
                           agenda_published=True)
        return self

    def record(self) -> dict[str, Any]:
        """The event's fields as EventCreate reads them (JSON values)."""
        names = EventCreate.model_fields.keys()
        return {name: self.row[name] for name in names if self.row.get(name) is not None}

    def schedule(self, data: EventCreate) -> list[DomainEvent]:
        values = data.model_dump(mode="json")
        values["sessions"] = [{**s, "id": s["id"] or new_id()} for s in values["sessions"]]
        return [EventScheduled(event_id=self.id, **values)]

    def update(self, changes: EventUpdate, *, meeting_count: int) -> list[DomainEvent]:
        self.live()
        current = EventCreate.model_validate(self.record()).model_dump(mode="json")
        sent = changes.model_dump(mode="json", include=changes.model_fields_set)
        if "sessions" in sent:
            sent["sessions"] = [{**s, "id": s["id"] or new_id()} for s in sent["sessions"]]
        try:
            merged = EventCreate.model_validate({**current, **sent}).model_dump(mode="json")
        except ValidationError as exc:
            raise invalid_input(exc) from None
        diff = {name: merged[name] for name in merged if merged[name] != current.get(name)}
        if "b2b" in diff and merged["b2b"] is None and meeting_count:
            raise Conflict("the event has B2B meetings; it cannot drop its brokerage settings")
        return [EventUpdated(event_id=self.id, changes=diff)] if diff else []

    def publish(self) -> list[DomainEvent]:
        self.expect("publish", "draft")
        return [EventPublished(event_id=self.id)]

    def close_registration(self) -> list[DomainEvent]:
        self.expect("close registration", "published")
        return [RegistrationClosed(event_id=self.id)]

    def mark_held(self) -> list[DomainEvent]:
        self.expect("mark as held", "published", "registration_closed")
        return [EventHeld(event_id=self.id)]

    def archive(self, reason: str | None) -> list[DomainEvent]:
        self.live()
        return [EventArchived(event_id=self.id, reason=reason)]

    def open_for_registration(self, now: datetime) -> None:
        self.expect("register", "published")
        opens, closes = self.row["registration_opens_at"], self.row["registration_closes_at"]
        if opens and now < parse_utc(opens):
            raise Conflict(f"registration opens at {opens}", registration_opens_at=opens)
        if closes and now >= parse_utc(closes):
            raise Conflict(f"registration closed at {closes}", registration_closes_at=closes)

    def taking_requests(self) -> dict[str, Any]:
        settings = self.b2b()
        self.expect("handle meeting requests", "published", "registration_closed")
        return settings

    def add_session(self, data: B2BSessionCreate, existing: list[dict[str, Any]]) -> list[DomainEvent]:
        self.live().unfrozen().b2b()
        session_id = f"S{self.row['session_count'] + 1}"
        new_slots = session_slots(session_id, data.starts_at, data.slot_minutes, data.slot_count)
        first, last = new_slots[0]["starts_at"], new_slots[-1]["ends_at"]
        if first < parse_utc(self.row["starts_at"]) or last > parse_utc(self.row["ends_at"]):
            raise InvalidInput.field("body.starts_at", f"the session ({utc_text(first)} to {utc_text(last)}) "
                                     "must lie within the event")
        for slot in existing:
            if parse_utc(slot["starts_at"]) < last and first < parse_utc(slot["ends_at"]):
                raise Conflict(f"the session overlaps slot {slot['id']}: nobody can be in two meetings at once",
                               slot_id=slot["id"])
        return [B2BSessionAdded(event_id=self.id, session_id=session_id, **data.model_dump())]

    def remove_session(self, session_id: str, *, placed: int) -> list[DomainEvent]:
        self.live().unfrozen()
        if placed:
            raise Conflict(f"{placed} meetings are scheduled in session {session_id}; move or cancel them first")
        return [B2BSessionRemoved(event_id=self.id, session_id=session_id)]

    def publish_agenda(self, placed: list[dict[str, Any]]) -> list[DomainEvent]:
        self.live().b2b()
        self.expect("publish the agenda", "published", "registration_closed", "held")
        if self.row["agenda_published"]:
            raise Conflict("the final agenda is already published")
        people = sorted({p for m in placed for p in (m["requester_id"], m["receiver_id"])})
        return [AgendaPublished(event_id=self.id, meetings=len(placed), participant_ids=people)]

    def unlock_agenda(self, reason: str | None) -> list[DomainEvent]:
        self.live()
        if not self.row["agenda_published"]:
            raise Conflict("the agenda is not published")
        return [AgendaUnlocked(event_id=self.id, reason=reason)]


@dataclass
class Participant(Entity):
    """A registration: registered (holds a seat) or waitlisted -> cancelled; attendance apart."""

    kind, label = "participant", "participant"

    @property
    def status(self) -> str:
        return self.row["status"]

    def save(self, conn: Connection, log: EventLog, new_events: list[DomainEvent], metadata: Metadata) -> None:
        """Seal the registrant's name and e-mail under their contact's key before they are logged."""
        sealed = [event.model_copy(update=pii.seal_fields(conn, event.contact_id, event.model_dump(),
                                                          ("name", "email")))
                  if isinstance(event, (ParticipantRegistered, ParticipantWaitlisted)) else event
                  for event in new_events]
        super().save(conn, log, sealed, metadata)

    def register(self, event: Event, registrant: Registrant, *, b2b: bool, waitlist: bool) -> list[DomainEvent]:
        kind = ParticipantWaitlisted if waitlist else ParticipantRegistered
        return [kind(participant_id=self.id, event_id=event.id, contact_id=registrant.contact_id,
                     organisation_id=registrant.organisation_id, name=registrant.name, email=registrant.email,
                     organisation_name=registrant.organisation_name, b2b=b2b)]

    def active(self) -> Self:
        if self.status == "cancelled":
            raise Conflict(f"participant {self.id} has cancelled their registration")
        return self

    def seated(self) -> Self:
        self.active()
        if self.status != "registered":
            raise Conflict(f"participant {self.id} is on the waitlist")
        return self

    def in_b2b(self) -> Self:
        if not self.row["b2b"]:
            raise Conflict(f"participant {self.id} does not take part in B2B meetings")
        return self

    def cancel(self, reason: str | None) -> list[DomainEvent]:
        self.active()
        return [RegistrationCancelled(participant_id=self.id, event_id=self.row["event_id"],
                                      was_waitlisted=self.status == "waitlisted", reason=reason)]

    def promote(self, freed_by: str | None) -> list[DomainEvent]:
        return [WaitlistPromoted(participant_id=self.id, event_id=self.row["event_id"], name=self.row["name"],
                                 freed_by=freed_by)]

    def check_in(self) -> list[DomainEvent]:
        self.seated()
        if self.row["attendance"] == "checked_in":
            raise Conflict(f"participant {self.id} is already checked in")
        return [ParticipantCheckedIn(participant_id=self.id, event_id=self.row["event_id"])]

    def no_show(self) -> list[DomainEvent]:
        self.seated()
        if self.row["attendance"]:
            raise Conflict(f"participant {self.id} is already recorded as {self.row['attendance']}")
        return [NoShowRecorded(participant_id=self.id, event_id=self.row["event_id"])]

    def update_profile(self, profile: ProfileUpdate) -> list[DomainEvent]:
        self.active().in_b2b()
        values = profile.model_dump()
        if all(self.row[name] == value for name, value in values.items()):
            return []
        return [B2BProfileUpdated(participant_id=self.id, event_id=self.row["event_id"], **values)]

    def update_availability(self, unavailable: list[str], *, known: set[str],
                            busy: dict[str, str]) -> list[DomainEvent]:
        """`known`: the event's slot ids; `busy`: slot id -> the participant's meeting there."""
        self.active().in_b2b()
        for i, slot in enumerate(unavailable):
            if slot not in known:
                raise InvalidInput.field(f"body.unavailable_slots.{i}", f"no slot {slot} in this event")
            if slot in busy:
                raise Conflict(f"meeting {busy[slot]} is scheduled in slot {slot}; move or cancel it first",
                               meeting_id=busy[slot], slot_id=slot)
        if sorted(unavailable) == sorted(self.row["unavailable_slots"]):
            return []
        return [AvailabilityUpdated(participant_id=self.id, event_id=self.row["event_id"],
                                    unavailable_slots=unavailable)]

    def assign_booth(self, booth: str | None, *, placed: int) -> list[DomainEvent]:
        self.seated().in_b2b()
        if booth == self.row["booth"]:
            return []
        if placed:
            raise Conflict(f"participant {self.id} has {placed} scheduled meetings; their place would change "
                           "under them: move or cancel them first")
        return [BoothAssigned(participant_id=self.id, event_id=self.row["event_id"], booth=booth)]


@dataclass
class Meeting(Entity):
    """requested -> accepted | declined; requested/accepted -> cancelled. An accepted meeting may
    have a place (slot + table or booth), may be locked there, and gets outcomes."""

    kind, label = "meeting", "meeting"

    @property
    def status(self) -> str:
        return self.row["status"]

    @property
    def participant_ids(self) -> list[str]:
        return [self.row["requester_id"], self.row["receiver_id"]]

    @property
    def placed(self) -> bool:
        return self.row["slot_id"] is not None

    def _ids(self) -> dict[str, str]:
        return {"meeting_id": self.id, "event_id": self.row["event_id"]}

    def _pair(self) -> dict[str, str]:
        return {**self._ids(), "requester_id": self.row["requester_id"], "receiver_id": self.row["receiver_id"]}

    def expect(self, action: str, *allowed: str) -> Self:
        if self.status not in allowed:
            raise Conflict(f"cannot {action} a meeting that is {self.status}", status=self.status)
        return self

    def request(self, event: Event, requester: Participant, receiver: Participant,
                data: MeetingRequestCreate) -> list[DomainEvent]:
        self.row.update(event_id=event.id, requester_id=requester.id, receiver_id=receiver.id,
                        status="requested", slot_id=None, locked=False)
        return [MeetingRequested(
            meeting_id=self.id, event_id=event.id, requester_id=requester.id, receiver_id=receiver.id,
            requester_name=requester.row["name"], requester_organisation_name=requester.row["organisation_name"],
            receiver_name=receiver.row["name"], receiver_organisation_name=receiver.row["organisation_name"],
            message=data.message, priority=data.priority)]

    def accept(self, *, automatically: bool = False) -> list[DomainEvent]:
        self.expect("accept", "requested")
        self.row["status"] = "accepted"
        return [MeetingAccepted(**self._pair(), automatically=automatically)]

    def decline(self, reason: str | None) -> list[DomainEvent]:
        self.expect("decline", "requested")
        return [MeetingDeclined(**self._pair(), reason=reason)]

    def place(self, place: Place, *, by: str) -> list[DomainEvent]:
        """Schedule the meeting at `place`, or move it there; nothing if it is there already."""
        self.expect("schedule", "accepted")
        where = {"slot_id": place.slot.id, "starts_at": place.slot.starts_at, "ends_at": place.slot.ends_at,
                 "table": place.table, "booth": place.booth}
        if not self.placed:
            return [MeetingScheduled(**self._ids(), participant_ids=self.participant_ids, **where, by=by)]
        if (self.row["slot_id"], self.row["table_name"], self.row["booth"]) == (place.slot.id, place.table,
                                                                               place.booth):
            return []
        return [MeetingMoved(**self._ids(), participant_ids=self.participant_ids, from_slot_id=self.row["slot_id"],
                             **where, by=by)]

    def lock(self) -> list[DomainEvent]:
        self.expect("lock", "accepted")
        if not self.placed:
            raise Conflict(f"meeting {self.id} has no slot to be locked in")
        return [] if self.row["locked"] else [MeetingLocked(**self._ids())]

    def unlock(self) -> list[DomainEvent]:
        self.expect("unlock", "accepted")
        return [MeetingUnlocked(**self._ids())] if self.row["locked"] else []

    def cancel(self, by: str, reason: str | None) -> list[DomainEvent]:
        self.expect("cancel", *OPEN_MEETING)
        return [MeetingCancelled(**self._ids(), participant_ids=self.participant_ids, by=by,
                                 was_scheduled=self.placed, reason=reason)]

    def record_outcome(self, data: OutcomeCreate) -> list[DomainEvent]:
        if data.participant_id not in self.participant_ids:
            raise InvalidInput.field("body.participant_id", f"participant {data.participant_id} is not in this meeting")
        self.expect("record an outcome of", "accepted")
        if not self.placed:
            raise Conflict(f"meeting {self.id} was never scheduled")
        return [MeetingOutcomeRecorded(**self._ids(), **data.model_dump(mode="json"))]


# --------------------------------------------------------------------------------------------
# Loading


# Statements of the busiest commands, built once: building a statement costs SQLAlchemy more than
# running it (its compiled form is cached either way).
_LOCK_EVENT = select(events).where(events.c.id == bindparam("event_id")).with_for_update()
_M = meetings.c
_OPEN_BETWEEN = select(_M.id).where(or_(and_(_M.requester_id == bindparam("a"), _M.receiver_id == bindparam("b")),
                                        and_(_M.requester_id == bindparam("b"), _M.receiver_id == bindparam("a"))),
                                    _M.status.in_([literal(status) for status in OPEN_MEETING]))  # fixed, not expanding
_ACCEPTED_OF = select(func.count()).select_from(meetings).where(
    or_(_M.requester_id == bindparam("participant_id"), _M.receiver_id == bindparam("participant_id")),
    _M.status == "accepted")
_P = participants.c
# What a meeting request needs of its two participants (the rest holds JSON not worth decoding there).
_B2B_CANDIDATES = select(_P.id, _P.event_id, _P.status, _P.b2b, _P.name, _P.organisation_name, _P.version).where(
    _P.id.in_([bindparam("requester_id"), bindparam("receiver_id")]), _P.event_id == bindparam("event_id"))
# A pair's open request either way round, and the requester's accepted meetings: one statement.
_OPEN_BETWEEN_AND_ACCEPTED = select(_OPEN_BETWEEN.limit(1).scalar_subquery(), _ACCEPTED_OF.scalar_subquery())


def lock_event(conn: Connection, event_id: str) -> Event:
    """The event, its row locked until commit: commands on one event run one at a time."""
    row = conn.execute(_LOCK_EVENT, {"event_id": event_id}).mappings().first()
    if row is None:
        raise NotFound(f"event {event_id} not found")
    return Event(dict(row))


def load_participant(conn: Connection, event_id: str, participant_id: str, *, field: str | None = None) -> Participant:
    """A participant of this event; unknown is a 404, or bad input when named in a body `field`."""
    row = conn.execute(select(participants).where(participants.c.id == participant_id,
                                                  participants.c.event_id == event_id)).mappings().first()
    if row is None:
        if field:
            raise InvalidInput.field(field, f"no participant {participant_id} in this event")
        raise NotFound(f"participant {participant_id} not found in event {event_id}")
    return Participant(dict(row))


def load_meeting(conn: Connection, event_id: str, meeting_id: str) -> Meeting:
    row = conn.execute(select(meetings).where(meetings.c.id == meeting_id,
                                              meetings.c.event_id == event_id)).mappings().first()
    if row is None:
        raise NotFound(f"meeting {meeting_id} not found in event {event_id}")
    return Meeting(dict(row))


def _meetings_of(conn: Connection, participant_id: str, *statuses: str) -> list[Meeting]:
    rows = conn.execute(select(meetings).where(
        or_(meetings.c.requester_id == participant_id, meetings.c.receiver_id == participant_id),
        meetings.c.status.in_(statuses)).order_by(meetings.c.created_at, meetings.c.id)).mappings()
    return [Meeting(dict(row)) for row in rows]


def _count(conn: Connection, table: Any, *where: Any) -> int:
    return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def _check_cap(conn: Connection, participant: Participant, cap: int, *, accepted: int | None = None) -> None:
    """`accepted`: the participant's accepted meetings, when counted already."""
    if accepted is None:
        accepted = conn.execute(_ACCEPTED_OF, {"participant_id": participant.id}).scalar_one()
    if accepted >= cap:
        raise Conflict(f"participant {participant.id} has reached the cap of {cap} meetings",
                       participant_id=participant.id, meeting_cap=cap)


def _b2b_participants(conn: Connection, event_id: str, named: dict[str, str]) -> list[Participant]:
    """A meeting's two sides, registered B2B participants of this event, by the body field naming each
    (one query for both); checked in that order, so the first field at fault is the one reported."""
    requester_id, receiver_id = named.values()
    rows = {row["id"]: row for row in conn.execute(_B2B_CANDIDATES, {
        "requester_id": requester_id, "receiver_id": receiver_id, "event_id": event_id}).mappings()}
    found = []
    for field, participant_id in named.items():
        row = rows.get(participant_id)
        if row is None:
            raise InvalidInput.field(field, f"no participant {participant_id} in this event")
        if row["status"] != "registered" or not row["b2b"]:
            raise InvalidInput.field(field, f"participant {participant_id} is not a registered B2B participant")
        found.append(Participant(dict(row)))
    return found


# --------------------------------------------------------------------------------------------
# Events


def schedule_event(conn: Connection, log: EventLog, data: EventCreate, metadata: Metadata, *,
                   event_id: str | None = None) -> str:
    event = Event.new(event_id or new_id())
    event.save(conn, log, event.schedule(data), metadata)
    return event.id


def update_event(conn: Connection, log: EventLog, event_id: str, expected_version: int, changes: EventUpdate,
                 metadata: Metadata) -> None:
    event = lock_event(conn, event_id).at(expected_version)
    meeting_count = _count(conn, meetings, meetings.c.event_id == event_id)
    event.save(conn, log, event.update(changes, meeting_count=meeting_count), metadata)
    event = lock_event(conn, event_id)
    _promote_waitlisted(conn, log, event, metadata, freed_by=None)  # the capacity may have grown


def change_event_status(conn: Connection, log: EventLog, event_id: str, action: str, metadata: Metadata, *,
                        expected_version: int | None = None, reason: str | None = None) -> None:
    event = lock_event(conn, event_id).at(expected_version)
    decide = {"publish": event.publish, "close-registration": event.close_registration, "held": event.mark_held,
              "archive": lambda: event.archive(reason)}[action]
    event.save(conn, log, decide(), metadata)


def add_b2b_session(conn: Connection, log: EventLog, event_id: str, data: B2BSessionCreate,
                    metadata: Metadata) -> str:
    event = lock_event(conn, event_id)
    existing = conn.execute(select(slots).where(slots.c.event_id == event_id)).mappings().all()
    new_events = event.add_session(data, [dict(row) for row in existing])
    event.save(conn, log, new_events, metadata)
    return new_events[0].session_id  # type: ignore[attr-defined]


def remove_b2b_session(conn: Connection, log: EventLog, event_id: str, session_id: str, metadata: Metadata) -> None:
    event = lock_event(conn, event_id)
    session_slots_ids = select(slots.c.id).where(slots.c.event_id == event_id, slots.c.session_id == session_id)
    if not conn.execute(session_slots_ids).first():
        raise NotFound(f"B2B session {session_id} not found in event {event_id}")
    placed = _count(conn, meetings, meetings.c.event_id == event_id, meetings.c.status == "accepted",
                    meetings.c.slot_id.in_(session_slots_ids))
    event.save(conn, log, event.remove_session(session_id, placed=placed), metadata)


def publish_agenda(conn: Connection, log: EventLog, event_id: str, metadata: Metadata) -> None:
    event = lock_event(conn, event_id)
    placed = conn.execute(select(meetings.c.requester_id, meetings.c.receiver_id).where(
        meetings.c.event_id == event_id, meetings.c.status == "accepted",
        meetings.c.slot_id.is_not(None))).mappings().all()
    event.save(conn, log, event.publish_agenda([dict(row) for row in placed]), metadata)


def unlock_agenda(conn: Connection, log: EventLog, event_id: str, reason: str | None, metadata: Metadata) -> None:
    event = lock_event(conn, event_id)
    event.save(conn, log, event.unlock_agenda(reason), metadata)


# --------------------------------------------------------------------------------------------
# Registrations


def registration_rules(conn: Connection, event_id: str, *, now: datetime | None = None) -> tuple[bool, list[str]]:
    """Whether the event takes registrations now, and its members-only rule: checked before
    asking the registry, so that a closed event costs no remote call."""
    row = conn.execute(select(events).where(events.c.id == event_id)).mappings().first()
    if row is None:
        raise NotFound(f"event {event_id} not found")
    Event(dict(row)).live().open_for_registration(now or utc_now())
    return row["members_only"], row["organiser_cluster_ids"]


def register(conn: Connection, log: EventLog, event_id: str, registrant: Registrant, metadata: Metadata, *,
             b2b: bool | None, checked_for: tuple[bool, list[str]], now: datetime | None = None) -> str:
    """Register a person the registry has vouched for (`checked_for`: the members-only rule it was
    checked against); a seat if one is free and nobody waits, else the waitlist."""
    event = lock_event(conn, event_id).live()
    if (event.row["members_only"], event.row["organiser_cluster_ids"]) != checked_for:
        raise Conflict("the event's access rules changed during registration; try again")
    event.open_for_registration(now or utc_now())
    same = conn.execute(select(participants.c.id).where(
        participants.c.event_id == event_id, participants.c.contact_id == registrant.contact_id,
        participants.c.status != "cancelled")).scalar()
    if same:
        raise Conflict(f"contact {registrant.contact_id} is already registered for this event", participant_id=same)
    if b2b is None:
        b2b = event.row["b2b"] is not None
    elif b2b and event.row["b2b"] is None:
        raise InvalidInput.field("body.b2b", "this event has no B2B meetings")
    capacity = event.row["capacity"]
    waitlist = capacity is not None and (
        _count(conn, participants, participants.c.event_id == event_id, participants.c.status == "registered")
        >= capacity
        # First come, first served: while anyone waits, newcomers queue behind them.
        or _count(conn, participants, participants.c.event_id == event_id, participants.c.status == "waitlisted") > 0)
    participant = Participant.new(new_id())
    participant.save(conn, log, participant.register(event, registrant, b2b=b2b, waitlist=waitlist), metadata)
    return participant.id


def _promote_waitlisted(conn: Connection, log: EventLog, event: Event, metadata: Metadata, *,
                        freed_by: str | None) -> None:
    """Give free seats to the waitlist, in registration order."""
    capacity = event.row["capacity"]
    seated = _count(conn, participants, participants.c.event_id == event.id, participants.c.status == "registered")
    free = None if capacity is None else capacity - seated
    if free is not None and free <= 0:
        return
    query = (select(participants).where(participants.c.event_id == event.id, participants.c.status == "waitlisted")
             .order_by(participants.c.queue_position))
    if free is not None:
        query = query.limit(free)
    for row in conn.execute(query).mappings().all():
        participant = Participant(dict(row))
        participant.save(conn, log, participant.promote(freed_by), metadata)


def cancel_registration(conn: Connection, log: EventLog, event_id: str, participant_id: str, reason: str | None,
                        metadata: Metadata, *, expected_version: int | None = None) -> None:
    event = lock_event(conn, event_id).live()
    event.expect("cancel a registration", "draft", "published", "registration_closed")
    participant = load_participant(conn, event_id, participant_id).at(expected_version)
    seated = participant.status == "registered"
    participant.save(conn, log, participant.cancel(reason), metadata)
    for meeting in _meetings_of(conn, participant_id, *OPEN_MEETING):
        meeting.save(conn, log, meeting.cancel(participant_id, "registration cancelled"), metadata)
    if seated:
        _promote_waitlisted(conn, log, event, metadata, freed_by=participant_id)


def record_attendance(conn: Connection, log: EventLog, event_id: str, participant_id: str, action: str,
                      metadata: Metadata, *, expected_version: int | None = None) -> None:
    event = lock_event(conn, event_id).live()
    event.expect("record attendance", "published", "registration_closed", "held")
    participant = load_participant(conn, event_id, participant_id).at(expected_version)
    participant.save(conn, log, participant.check_in() if action == "check-in" else participant.no_show(), metadata)


def update_profile(conn: Connection, log: EventLog, event_id: str, participant_id: str, expected_version: int,
                   profile: ProfileUpdate, metadata: Metadata) -> None:
    lock_event(conn, event_id).live().b2b()
    participant = load_participant(conn, event_id, participant_id).at(expected_version)
    participant.save(conn, log, participant.update_profile(profile), metadata)


def update_availability(conn: Connection, log: EventLog, event_id: str, participant_id: str,
                        data: AvailabilityUpdate, metadata: Metadata, *, expected_version: int | None = None) -> None:
    lock_event(conn, event_id).live().unfrozen().b2b()
    participant = load_participant(conn, event_id, participant_id).at(expected_version)
    known = set(conn.execute(select(slots.c.id).where(slots.c.event_id == event_id)).scalars())
    busy = {m.row["slot_id"]: m.id for m in _meetings_of(conn, participant_id, "accepted") if m.placed}
    new_events = participant.update_availability(data.unavailable_slots, known=known, busy=busy)
    participant.save(conn, log, new_events, metadata)


def assign_booth(conn: Connection, log: EventLog, event_id: str, participant_id: str, booth: str | None,
                 metadata: Metadata, *, expected_version: int | None = None) -> None:
    lock_event(conn, event_id).live().unfrozen().b2b()
    participant = load_participant(conn, event_id, participant_id).at(expected_version)
    placed = sum(1 for m in _meetings_of(conn, participant_id, "accepted") if m.placed)
    participant.save(conn, log, participant.assign_booth(booth, placed=placed), metadata)


# --------------------------------------------------------------------------------------------
# Meetings


def request_meeting(conn: Connection, log: EventLog, event: Event, data: MeetingRequestCreate,
                    metadata: Metadata) -> str:
    """Request a meeting on a locked event (`lock_event`); in opt-out mode it is accepted at once
    (and, self-scheduling, placed)."""
    event_id = event.live().id
    settings = event.taking_requests()
    requester, receiver = _b2b_participants(conn, event_id, {"body.requester_id": data.requester_id,
                                                             "body.receiver_id": data.receiver_id})
    if requester.id == receiver.id:
        raise InvalidInput.field("body.receiver_id", "a participant cannot meet themselves")
    same, accepted = conn.execute(_OPEN_BETWEEN_AND_ACCEPTED, {
        "a": requester.id, "b": receiver.id, "participant_id": requester.id}).one()
    if same:
        raise Conflict("these two participants already have an open meeting request", meeting_id=same)
    _check_cap(conn, requester, settings["meeting_cap"], accepted=accepted)
    meeting = Meeting.new(new_id())
    new_events = meeting.request(event, requester, receiver, data)
    if settings["request_mode"] == "opt_out":
        _check_cap(conn, receiver, settings["meeting_cap"])
        new_events += meeting.accept(automatically=True)
        new_events += _self_schedule(conn, event, settings, meeting, None)
    meeting.save(conn, log, new_events, metadata)
    return meeting.id


def _self_schedule(conn: Connection, event: Event, settings: dict[str, Any], meeting: Meeting,
                   slot_id: str | None) -> list[DomainEvent]:
    """Self-scheduling mode: the picked slot, else the first common free one (none: stays unplaced)."""
    if settings["scheduling_mode"] != SchedulingMode.self:
        if slot_id:
            raise InvalidInput.field("body.slot_id", "the organiser schedules this event's meetings")
        return []
    event.unfrozen()
    board = Board.load(conn, event.id)
    place = board.place_at(meeting, slot_id) if slot_id else board.first_place(meeting)
    return meeting.place(place, by="participant") if place else []


def accept_meeting(conn: Connection, log: EventLog, event_id: str, meeting_id: str, data: AcceptRequest,
                   metadata: Metadata, *, expected_version: int | None = None) -> None:
    event = lock_event(conn, event_id).live()
    settings = event.taking_requests()
    meeting = load_meeting(conn, event_id, meeting_id).at(expected_version)
    new_events = meeting.accept()
    for participant_id in meeting.participant_ids:
        _check_cap(conn, load_participant(conn, event_id, participant_id), settings["meeting_cap"])
    new_events += _self_schedule(conn, event, settings, meeting, data.slot_id)
    meeting.save(conn, log, new_events, metadata)


def decline_meeting(conn: Connection, log: EventLog, event_id: str, meeting_id: str, reason: str | None,
                    metadata: Metadata, *, expected_version: int | None = None) -> None:
    lock_event(conn, event_id).live()
    meeting = load_meeting(conn, event_id, meeting_id).at(expected_version)
    meeting.save(conn, log, meeting.decline(reason), metadata)


def cancel_meeting(conn: Connection, log: EventLog, event_id: str, meeting_id: str, data: MeetingCancel,
                   metadata: Metadata, *, expected_version: int | None = None) -> None:
    event = lock_event(conn, event_id).live()
    meeting = load_meeting(conn, event_id, meeting_id).at(expected_version)
    if data.by is not None and data.by not in meeting.participant_ids:
        raise InvalidInput.field("body.by", f"participant {data.by} is not in this meeting")
    if meeting.placed:
        event.unfrozen()
    meeting.save(conn, log, meeting.cancel(data.by or "organiser", data.reason), metadata)


def move_meeting(conn: Connection, log: EventLog, event_id: str, meeting_id: str, data: MeetingMove,
                 metadata: Metadata, *, expected_version: int | None = None) -> None:
    """The organiser places a meeting by hand: nobody double-booked, table free, everyone available."""
    lock_event(conn, event_id).live().unfrozen().b2b()
    meeting = load_meeting(conn, event_id, meeting_id).at(expected_version).expect("move", "accepted")
    board = Board.load(conn, event_id)
    board.release(meeting)
    place = board.place_at(meeting, data.slot_id, data.table)
    meeting.save(conn, log, meeting.place(place, by="organiser"), metadata)


def lock_meeting(conn: Connection, log: EventLog, event_id: str, meeting_id: str, locked: bool, metadata: Metadata,
                 *, expected_version: int | None = None) -> None:
    lock_event(conn, event_id).live().unfrozen()
    meeting = load_meeting(conn, event_id, meeting_id).at(expected_version)
    meeting.save(conn, log, meeting.lock() if locked else meeting.unlock(), metadata)


def record_outcome(conn: Connection, log: EventLog, event_id: str, meeting_id: str, data: OutcomeCreate,
                   metadata: Metadata) -> None:
    lock_event(conn, event_id).expect("record meeting outcomes", "published", "registration_closed", "held")
    meeting = load_meeting(conn, event_id, meeting_id)
    meeting.save(conn, log, meeting.record_outcome(data), metadata)
