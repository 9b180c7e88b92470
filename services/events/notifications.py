"""E-mail notifications: an outbox written with the event, delivered over SMTP by a worker.

Why an outbox. What to send is decided by an inline projector, in the transaction that appends
the event: a rolled-back command sends nothing, and a committed one cannot lose its mail.
Delivery happens later and outside any transaction, because SMTP is slow and may be down, and
SQLite's single writer must never wait on it.

No message twice. One row per (event position, recipient), so an event yields one message per
person however it is projected. A worker claims due rows with a lease (PostgreSQL: `FOR UPDATE
SKIP LOCKED`; SQLite: the write lock), sends them, and records each outcome as an event on the
message's own stream with expected version NO_STREAM: a second "sent" for one message fails as
a ConcurrencyError instead of passing unnoticed. What SMTP itself leaves open is a crash between
the server accepting a message and the outcome committing; the lease then expires and the
message goes again, with the same Message-ID so that mail systems can drop the copy. Recording
each outcome right after its message keeps that window to one message.

Why delivery outcomes are events (`events.NotificationSent`, `events.NotificationFailed`). The
outbox is then a read model like the others: `projections rebuild` clears it and replays the
log, and sent or abandoned messages come back sent or abandoned, so a rebuild never re-sends
mail. Retry bookkeeping (attempts, next try, last error) is operational state, not history, and
stays out of the log: after a rebuild a message still pending starts its retries again. A
message older than `max_age_hours` is abandoned unsent, so a rebuild that resurrects a message
nobody ever sent (say, from before this projector was wired in) cannot mail stale news.

The projector keeps the few facts it needs to address and word messages (names, addresses,
time zones, meeting places) in its own small tables, fed by the same events, so it depends on
the log alone, not on another read model's schema or on the order of projectors.
"""
from __future__ import annotations

import asyncio
import os
import random
import smtplib
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any
from zoneinfo import ZoneInfo

import anyio.to_thread
import structlog
from fastapi import FastAPI
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from services.events import events as ev
from shared import pii
from shared.db import ByIds, Database
from shared.eventlog import (
    NO_STREAM,
    ConcurrencyError,
    DomainEvent,
    EventLog,
    Metadata,
    RecordedEvent,
    to_timestamp_text,
)
from shared.tables import metadata

log = structlog.get_logger()

PENDING, SENT, FAILED = "pending", "sent", "failed"
_ID_NAMESPACE = uuid.UUID("5f0e2a52-3c1d-4a51-9b0e-6e6f74696679")


# --------------------------------------------------------------------------------------------
# Settings


class SmtpSettings(BaseSettings):
    """Where and how mail goes (CLUSTERHUB_SMTP_*), and how hard the worker tries."""

    model_config = SettingsConfigDict(env_prefix="CLUSTERHUB_SMTP_", env_file=".env", env_ignore_empty=True,
                                      extra="ignore")

    # Off unless asked for: a development machine never mails real people by accident. The
    # outbox still fills, and turning delivery on later sends what is pending and still fresh.
    enabled: bool = False
    host: str = "localhost"
    port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    ssl: bool = False  # implicit TLS (port 465), as opposed to STARTTLS on a plain connection
    username: str | None = None
    password: SecretStr | None = None
    from_address: str = "clusterhub <noreply@clusterhub.localhost>"
    timeout_seconds: float = Field(default=10.0, gt=0)
    batch_size: int = Field(default=5, ge=1, le=100)
    max_attempts: int = Field(default=8, ge=1)
    backoff_seconds: float = Field(default=30.0, gt=0)  # first retry; doubles with each failure
    backoff_max_seconds: float = Field(default=3600.0, gt=0)
    lease_seconds: float = Field(default=300.0, gt=0)
    poll_seconds: float = Field(default=2.0, gt=0)
    max_age_hours: float = Field(default=72.0, gt=0)

    @model_validator(mode="after")
    def _coherent(self) -> SmtpSettings:
        if self.starttls and self.ssl:
            raise ValueError("choose starttls or ssl, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if "@" not in parseaddr(self.from_address)[1]:
            raise ValueError(f"from_address {self.from_address!r} is not an e-mail address")
        # A claimed batch must be sent before its lease runs out, or a second worker may take
        # it over and send it again: allow each message its connect, TLS, login and data steps.
        if self.lease_seconds < 4 * self.timeout_seconds * self.batch_size:
            raise ValueError("lease_seconds must cover a batch: at least 4 x timeout_seconds x batch_size")
        return self


# --------------------------------------------------------------------------------------------
# Tables (migration 0004 creates exactly these)

outbox = Table(
    "events_outbox",
    metadata,
    Column("id", String(36), primary_key=True),  # uuid5 of (event position, recipient): stable over rebuilds
    Column("event_position", BigInteger, nullable=False),
    Column("event_type", String(150), nullable=False),
    Column("participant_id", String(64)),
    # Recipient, name, subject and body: sealed for every person they name (shared/pii.py).
    Column("recipient", Text, nullable=False),
    Column("recipient_name", Text),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", String(32), nullable=False),
    Column("last_error", Text),
    Column("claimed_by", String(100)),
    Column("claimed_until", String(32)),
    Column("sent_at", String(32)),
    Column("created_at", String(32), nullable=False),
    UniqueConstraint("event_position", "recipient", name="uq_events_outbox_event_recipient"),
    Index("ix_events_outbox_due", "status", "next_attempt_at"),
    Index("ix_events_outbox_participant", "participant_id"),
)

directory_events = Table(
    "events_notify_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("title", String(300), nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("starts_at", String(32), nullable=False),
    Column("ends_at", String(32), nullable=False),
    Column("venue", String(300)),
    Column("online_url", String(500)),
    Column("agenda_published", Boolean, nullable=False),
)

directory_participants = Table(
    "events_notify_participants",
    metadata,
    Column("participant_id", String(64), primary_key=True),
    Column("event_id", String(64), nullable=False),
    Column("name", Text, nullable=False),  # sealed, as in the events
    Column("email", Text),
    Column("organisation_name", String(300), nullable=False),
)

directory_meetings = Table(
    "events_notify_meetings",
    metadata,
    Column("meeting_id", String(64), primary_key=True),
    Column("event_id", String(64), nullable=False),
    Column("requester_id", String(64), nullable=False),
    Column("receiver_id", String(64), nullable=False),
    Column("starts_at", String(32)),
    Column("ends_at", String(32)),
    Column("place", String(100)),
    Index("ix_events_notify_meetings_event", "event_id"),
)

TABLES = (directory_events, directory_participants, directory_meetings, outbox)


# --------------------------------------------------------------------------------------------
# Delivery outcomes, on stream `notification-{id}` (events.Notification)


class NotificationSent(DomainEvent):
    """The SMTP server accepted the message."""

    event_type = "events.NotificationSent"
    schema_version = 1

    notification_id: str
    event_position: int
    attempts: int


class NotificationFailed(DomainEvent):
    """Delivery was given up: refused for good, out of attempts, or too old to be worth sending.

    `reason` is a category and an SMTP code, never the server's text, which may quote the address.
    """

    event_type = "events.NotificationFailed"
    schema_version = 1

    notification_id: str
    event_position: int
    attempts: int
    reason: str


# --------------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True)
class Person:
    participant_id: str
    name: str
    email: str | None
    organisation_name: str
    person_id: str | None = None  # the contact whose key sealed name and e-mail (None: old plaintext)


@dataclass(frozen=True)
class Message:
    recipient: Person
    subject: str
    body: str


def _line(text: str | None) -> str:
    """Names go into subjects and headers: one line, whatever was typed."""
    return " ".join((text or "").split())


def _local(moment: str | datetime, time_zone: str) -> datetime:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(ZoneInfo(time_zone))


def _stamp(moment: str | datetime) -> str:
    return to_timestamp_text(datetime.fromisoformat(moment) if isinstance(moment, str) else moment)


def when(starts_at: str | datetime, ends_at: str | datetime, time_zone: str) -> str:
    """'Tuesday 14 May 2024, 10:30–11:00 (Europe/Brussels)': in the event's own time zone."""
    start, end = _local(starts_at, time_zone), _local(ends_at, time_zone)
    day = f"{start:%A} {start.day} {start:%B %Y}"
    if start.date() == end.date():
        return f"{day}, {start:%H:%M}–{end:%H:%M} ({time_zone})"
    return f"{day}, {start:%H:%M} – {end:%A} {end.day} {end:%B %Y}, {end:%H:%M} ({time_zone})"


def _who(person: Person) -> str:
    return f"{_line(person.name)} ({_line(person.organisation_name)})"


def _letter(person: Person, *paragraphs: str) -> str:
    text = "\n\n".join([f"Dear {_line(person.name)},", *[p for p in paragraphs if p]])
    return f"{text}\n\n-- \nSent by clusterhub on behalf of the organisers. Please do not reply to this message.\n"


def _quoted(text: str | None) -> str:
    return "\n".join(f"> {line}" for line in text.strip().splitlines()) if text and text.strip() else ""


def _where(event: Row[Any]) -> str:
    return ", ".join(part for part in (event.venue, event.online_url) if part) or "the venue to be announced"


# --------------------------------------------------------------------------------------------
# The outbox projector


class OutboxProjector:
    """Turns the events that concern people into outbox rows, and delivery outcomes into states."""

    name = "events.notifications"
    tables: Sequence[Table] = TABLES

    def _method(self, event_type: str) -> Any:
        prefix, _, name = event_type.partition(".")
        return getattr(self, f"on_{name}", None) if prefix == "events" else None

    def handles(self, event_type: str) -> bool:
        return self._method(event_type) is not None

    def apply(self, conn: Connection, recorded: RecordedEvent) -> None:
        try:
            with pii.tracking() as seen:
                directory = Directory(conn)
                messages = self._method(recorded.event_type)(directory, recorded.event, recorded)
        except _Unknown as missing:
            # Only possible for events older than this projector's tables (a rebuild fixes it);
            # a message that cannot be addressed must not fail the command that caused it.
            log.warning("outbox.recipient_unknown", event_type=recorded.event_type,
                        position=recorded.position, missing=str(missing))
            return
        if messages:
            _enqueue(directory, recorded, messages, seen)

    # -- what the messages need to know ----------------------------------------------------

    def on_EventScheduled(self, d: Directory, e: ev.EventScheduled, _: RecordedEvent) -> None:
        d.conn.execute(insert(directory_events).values(
            event_id=e.event_id, title=_line(e.title), time_zone=e.time_zone,
            starts_at=to_timestamp_text(e.starts_at), ends_at=to_timestamp_text(e.ends_at),
            venue=e.venue, online_url=e.online_url, agenda_published=False))

    def on_EventUpdated(self, d: Directory, e: ev.EventUpdated, _: RecordedEvent) -> None:
        changes = {k: v for k, v in e.changes.items() if k in ("title", "time_zone", "venue", "online_url")}
        for key in ("starts_at", "ends_at"):
            if e.changes.get(key):
                changes[key] = _stamp(e.changes[key])
        if "title" in changes:
            changes["title"] = _line(changes["title"])
        if changes:
            d.conn.execute(update(directory_events).where(directory_events.c.event_id == e.event_id)
                           .values(changes))

    def on_ParticipantRegistered(self, d: Directory, e: ev.ParticipantRegistered,
                                 _: RecordedEvent) -> list[Message]:
        person = self._add_participant(d, e)
        event = d.event(e.event_id)
        return [Message(person, f"Registration confirmed: {event.title}", _letter(
            person, f"Your registration for {event.title} on behalf of {_line(person.organisation_name)} "
                    "is confirmed.",
            f"When: {when(event.starts_at, event.ends_at, event.time_zone)}\nWhere: {_where(event)}"))]

    def on_ParticipantWaitlisted(self, d: Directory, e: ev.ParticipantWaitlisted,
                                 _: RecordedEvent) -> list[Message]:
        person = self._add_participant(d, e)
        event = d.event(e.event_id)
        return [Message(person, f"On the waitlist: {event.title}", _letter(
            person, f"{event.title} is full for now, so you are on its waitlist. If a seat frees up, "
                    "it goes to the next person on the list and we will write to you at once."))]

    def on_WaitlistPromoted(self, d: Directory, e: ev.WaitlistPromoted, _: RecordedEvent) -> list[Message]:
        person, event = d.person(e.participant_id), d.event(e.event_id)
        return [Message(person, f"A seat is yours: {event.title}", _letter(
            person, f"A seat freed up at {event.title} and it is now yours: your registration is confirmed.",
            f"When: {when(event.starts_at, event.ends_at, event.time_zone)}\nWhere: {_where(event)}"))]

    def on_MeetingRequested(self, d: Directory, e: ev.MeetingRequested, _: RecordedEvent) -> list[Message]:
        d.conn.execute(_ADD_MEETING, {"meeting_id": e.meeting_id, "event_id": e.event_id,
                                      "requester_id": e.requester_id, "receiver_id": e.receiver_id})
        requester, receiver = d.people([e.requester_id, e.receiver_id])
        event = d.event(e.event_id)
        return [Message(receiver, f"Meeting request from {_line(requester.name)}: {event.title}", _letter(
            receiver, f"{_who(requester)} would like to meet you at {event.title}.",
            f"Their message:\n{_quoted(e.message)}" if _quoted(e.message) else "",
            "Please accept or decline the request in your participant space."))]

    def on_MeetingAccepted(self, d: Directory, e: ev.MeetingAccepted, _: RecordedEvent) -> list[Message]:
        requester, receiver = d.people([e.requester_id, e.receiver_id])
        event = d.event(e.event_id)
        return [Message(requester, f"{_line(receiver.name)} accepted your meeting request: {event.title}", _letter(
            requester, f"{_who(receiver)} accepted your request to meet at {event.title}.",
            "The time and table will appear in your agenda."))]

    def on_MeetingDeclined(self, d: Directory, e: ev.MeetingDeclined, _: RecordedEvent) -> list[Message]:
        d.conn.execute(delete(directory_meetings).where(directory_meetings.c.meeting_id == e.meeting_id))
        requester, receiver = d.people([e.requester_id, e.receiver_id])
        event = d.event(e.event_id)
        return [Message(requester, f"{_line(receiver.name)} declined your meeting request: {event.title}", _letter(
            requester, f"{_who(receiver)} declined your request to meet at {event.title}.",
            f"Their reason:\n{_quoted(e.reason)}" if _quoted(e.reason) else "",
            "You can send requests to other participants in your participant space."))]

    def on_MeetingScheduled(self, d: Directory, e: ev.MeetingScheduled, _: RecordedEvent) -> None:
        # No message: a preliminary agenda changes with every scheduler run; the published one is mailed.
        self._place(d.conn, e.meeting_id, e.starts_at, e.ends_at, e.table, e.booth)

    def on_MeetingUnscheduled(self, d: Directory, e: ev.MeetingUnscheduled, _: RecordedEvent) -> None:
        self._place(d.conn, e.meeting_id, None, None, None, None)

    def on_MeetingMoved(self, d: Directory, e: ev.MeetingMoved, _: RecordedEvent) -> list[Message]:
        self._place(d.conn, e.meeting_id, e.starts_at, e.ends_at, e.table, e.booth)
        event = d.event(e.event_id)
        # Before the agenda is first published, the scheduler's re-runs move meetings freely and
        # nobody has an agenda to correct; a hand move by the organiser is worth telling anyway.
        if not (event.agenda_published or e.by == "organiser"):
            return []
        people = d.people(e.participant_ids)
        place = _place_text(e.table, e.booth)
        return [Message(person, f"Meeting moved: {_line(other.name)}, {event.title}", _letter(
            person, f"Your meeting with {_who(other)} at {event.title} has moved.",
            f"New time: {when(e.starts_at, e.ends_at, event.time_zone)}" + (f"\nPlace: {place}" if place else "")))
            for person, other in _pairs(people)]

    def on_MeetingCancelled(self, d: Directory, e: ev.MeetingCancelled, _: RecordedEvent) -> list[Message]:
        d.conn.execute(delete(directory_meetings).where(directory_meetings.c.meeting_id == e.meeting_id))
        event = d.event(e.event_id)
        people = d.people(e.participant_ids)
        # Whoever cancelled knows; the organiser's cancellations are news to both sides.
        return [Message(person, f"Meeting cancelled: {_line(other.name)}, {event.title}", _letter(
            person, f"Your meeting with {_who(other)} at {event.title} is cancelled.",
            f"Reason:\n{_quoted(e.reason)}" if _quoted(e.reason) else ""))
            for person, other in _pairs(people) if person.participant_id != e.by]

    def on_AgendaPublished(self, d: Directory, e: ev.AgendaPublished, _: RecordedEvent) -> list[Message]:
        d.conn.execute(update(directory_events).where(directory_events.c.event_id == e.event_id)
                       .values(agenda_published=True))
        event = d.event(e.event_id)
        return [self._agenda(d, event, d.person(pid)) for pid in e.participant_ids]

    # -- delivery outcomes -----------------------------------------------------------------

    def on_NotificationSent(self, d: Directory, e: NotificationSent, recorded: RecordedEvent) -> None:
        d.conn.execute(update(outbox).where(outbox.c.id == e.notification_id).values(
            status=SENT, attempts=e.attempts, sent_at=recorded.recorded_at, claimed_by=None, claimed_until=None))

    def on_NotificationFailed(self, d: Directory, e: NotificationFailed, _: RecordedEvent) -> None:
        d.conn.execute(update(outbox).where(outbox.c.id == e.notification_id).values(
            status=FAILED, attempts=e.attempts, last_error=e.reason, claimed_by=None, claimed_until=None))

    # -- helpers ---------------------------------------------------------------------------

    def _add_participant(self, d: Directory, e: ev.ParticipantRegistered | ev.ParticipantWaitlisted) -> Person:
        d.conn.execute(insert(directory_participants).values(
            participant_id=e.participant_id, event_id=e.event_id, name=_line(e.name), email=e.email,
            organisation_name=_line(e.organisation_name)))
        return d.person(e.participant_id)

    def _place(self, conn: Connection, meeting_id: str, starts_at: datetime | None, ends_at: datetime | None,
               table: str | None, booth: str | None) -> None:
        conn.execute(update(directory_meetings).where(directory_meetings.c.meeting_id == meeting_id).values(
            starts_at=to_timestamp_text(starts_at) if starts_at else None,
            ends_at=to_timestamp_text(ends_at) if ends_at else None,
            place=_place_text(table, booth)))

    def _agenda(self, d: Directory, event: Row[Any], person: Person) -> Message:
        m = directory_meetings.c
        rows = d.conn.execute(
            select(m.requester_id, m.receiver_id, m.starts_at, m.ends_at, m.place)
            .where(m.event_id == event.event_id, m.starts_at.is_not(None),
                   or_(m.requester_id == person.participant_id, m.receiver_id == person.participant_id))
            .order_by(m.starts_at)).all()
        lines = []
        for row in rows:
            other = d.person(row.receiver_id if row.requester_id == person.participant_id else row.requester_id)
            place = f", {row.place}" if row.place else ""
            lines.append(f"- {when(row.starts_at, row.ends_at, event.time_zone)}{place}: {_who(other)}")
        count = f"{len(rows)} meeting{'s' if len(rows) != 1 else ''}" if rows else "no meetings"
        return Message(person, f"Your agenda for {event.title}", _letter(
            person, "\n".join([f"The final agenda of {event.title} is published. You have {count}:", *lines]),
            "Your agenda is also in your participant space, as a calendar file (.ics) and as a printable page."))


def _place_text(table: str | None, booth: str | None) -> str | None:
    if booth:
        return f"booth {booth}"
    return f"table {table}" if table else None


def _pairs(people: list[Person]) -> Iterable[tuple[Person, Person]]:
    """Each party of a two-party meeting with the other one."""
    if len(people) == 2:
        yield people[0], people[1]
        yield people[1], people[0]


class _Unknown(LookupError):
    """An event or participant this projector has not seen."""


# The statements every meeting request runs, built once: building costs SQLAlchemy more than running.
_EVENT = select(directory_events).where(directory_events.c.event_id == bindparam("event_id"))
_PEOPLE = ByIds(select(directory_participants.c.participant_id, directory_participants.c.name,
                       directory_participants.c.email, directory_participants.c.organisation_name),
                directory_participants.c.participant_id)
_ADD_MEETING = insert(directory_meetings)
# One row per (event, address) even if two recipients share an address.
_ENQUEUE = {"postgresql": postgresql.insert(outbox).on_conflict_do_nothing(),
            "sqlite": sqlite.insert(outbox).on_conflict_do_nothing()}


class Directory:
    """The projector's own tables, read for one event's messages; one keyring opens and seals them all."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.keys = pii.Keyring(conn)

    def event(self, event_id: str) -> Row[Any]:
        row = self.conn.execute(_EVENT, {"event_id": event_id}).first()
        if row is None:
            raise _Unknown(f"event {event_id}")
        return row

    def person(self, participant_id: str) -> Person:
        return self.people([participant_id])[0]

    def people(self, participant_ids: Sequence[str]) -> list[Person]:
        """The participants, in that order, with names and e-mails opened (sealed in the table, as in
        the events): one query and one key lookup for them all."""
        wanted = sorted(set(participant_ids))
        rows = {row.participant_id: row for row in _PEOPLE.execute(self.conn, wanted)}
        missing = [pid for pid in participant_ids if pid not in rows]
        if missing:
            raise _Unknown(f"participant {missing[0]}")
        self.keys.load(person for row in rows.values() if (person := pii.person_of(row.name)))
        return [Person(pid, self.keys.open(rows[pid].name), self.keys.open(rows[pid].email),
                       rows[pid].organisation_name, pii.person_of(rows[pid].name)) for pid in participant_ids]


def notification_id(position: int, email: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"{position}/{email.lower()}"))


def _named(message: Message, seen: dict[str, frozenset[str]]) -> set[str]:
    """The people a message is about: its recipient, and everyone whose name or address it quotes."""
    persons = {message.recipient.person_id} if message.recipient.person_id else set()
    for text, owners in seen.items():
        if text in message.subject or text in message.body:
            persons |= owners
    return persons


def _enqueue(d: Directory, recorded: RecordedEvent, messages: list[Message],
             seen: dict[str, frozenset[str]] | None = None) -> None:
    rows = []
    for m in messages:
        if not m.recipient.email or m.recipient.email == pii.ERASED:
            continue  # a participant without an address (or erased) gets no mail
        # Sealed for every person it names: erasing any of them makes the whole message unreadable.
        persons = _named(m, seen or {})
        rows.append({
            "id": notification_id(recorded.position, m.recipient.email),
            "event_position": recorded.position,
            "event_type": recorded.event_type,
            "participant_id": m.recipient.participant_id,
            "recipient": d.keys.seal_for_all(persons, m.recipient.email.lower()),
            "recipient_name": d.keys.seal_for_all(persons, _line(m.recipient.name)),
            "subject": d.keys.seal_for_all(persons, _line(m.subject)[:300]),
            "body": d.keys.seal_for_all(persons, m.body),
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": recorded.recorded_at,
            "created_at": recorded.recorded_at,
        })
    if rows:
        d.conn.execute(_ENQUEUE[d.conn.dialect.name], rows)


OUTBOX_PROJECTOR = OutboxProjector()


# --------------------------------------------------------------------------------------------
# Delivery


def _reason(exc: BaseException) -> str:
    """A category and an SMTP code, never the server's text (it may quote the address)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in exc.recipients.values()})
        return f"recipient refused ({', '.join(map(str, codes))})"
    code = getattr(exc, "smtp_code", None)
    return f"{type(exc).__name__} ({code})" if code else type(exc).__name__


def _is_permanent(exc: BaseException) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    # Authentication and sender errors are configuration: fixed once, they should not lose mail.
    return isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code >= 500


class SmtpTransport:
    """One SMTP session, opened on first use and reopened after an error; blocking, so threaded."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def send(self, message: EmailMessage) -> None:
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused:
            raise  # the session is fine; the next message can use it
        except Exception:
            self.close()
            raise

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        smtp_class = smtplib.SMTP_SSL if s.ssl else smtplib.SMTP
        smtp = smtp_class(s.host, s.port, timeout=s.timeout_seconds)
        try:
            if s.starttls:
                smtp.starttls()
            if s.username and s.password:
                smtp.login(s.username, s.password.get_secret_value())
        except Exception:
            smtp.close()
            raise
        return smtp

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def build_message(row: Row[Any], settings: SmtpSettings) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.from_address
    message["To"] = formataddr((row.recipient_name or "", row.recipient))
    message["Subject"] = row.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    # The same id on every attempt: if a crash makes us send twice, mail systems can drop the copy.
    message["Message-ID"] = f"<{row.id}@{Address(addr_spec=parseaddr(settings.from_address)[1]).domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies, please
    message.set_content(row.body)
    return message


@dataclass
class OutboxWorker:
    """Claims due outbox rows in small batches, sends them, records each outcome.

    Several workers (one per replica) may run on one store: a lease keeps a claimed row theirs.
    """

    db: Database
    settings: SmtpSettings
    name: str = ""
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    jitter: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        self.name = self.name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.event_log = EventLog(self.db.dialect, projectors=[OUTBOX_PROJECTOR])
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="outbox-worker")

    async def stop(self, *, grace_seconds: float = 30.0) -> None:
        """Finish the message in hand, record it, hand back the rest of the batch, then stop."""
        self._stopping.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._task, grace_seconds)
        except TimeoutError:
            log.warning("outbox.stop_timed_out", worker=self.name)

    async def run(self) -> None:
        log.info("outbox.worker_started", worker=self.name, host=self.settings.host, port=self.settings.port)
        while not self._stopping.is_set():
            try:
                handled = await self.run_once()
            except Exception:
                # The store is down or similar: say so and try again later, the rows wait.
                log.exception("outbox.batch_failed", worker=self.name)
                handled = 0
            if not handled:
                try:
                    await asyncio.wait_for(self._stopping.wait(), self.settings.poll_seconds)
                except TimeoutError:
                    pass
        log.info("outbox.worker_stopped", worker=self.name)

    async def run_once(self) -> int:
        """Claim one batch and deliver it; returns how many rows were claimed or expired."""
        batch, expired = await self.db.write(self._claim)
        if not batch:
            return expired
        transport = SmtpTransport(self.settings)
        try:
            for index, row in enumerate(batch):
                if self._stopping.is_set():
                    await self.db.write(lambda conn, rest=batch[index:]: self._release(conn, rest))
                    break
                await self._deliver(transport, row)
        finally:
            await anyio.to_thread.run_sync(transport.close)
        return len(batch) + expired

    async def _deliver(self, transport: SmtpTransport, row: Row[Any]) -> None:
        try:
            await anyio.to_thread.run_sync(transport.send, build_message(row, self.settings))
        except Exception as exc:  # every way SMTP can fail is an outcome to record, not a crash
            await self.db.write(lambda conn: self._failed(conn, row, exc))
        else:
            await self.db.write(lambda conn: self._sent(conn, row))
            # Logged once committed: a replica killed between the two must not claim a send
            # that its successor, finding the row still claimed, makes again.
            log.info("outbox.sent", worker=self.name, notification=row.id, event_type=row.event_type)

    # -- transactions ----------------------------------------------------------------------

    def _claim(self, conn: Connection) -> tuple[list[SimpleNamespace], int]:
        """Due rows, claimed under a lease, with their sealed fields opened (erased ones recorded
        as failed instead); the count includes those and the expired ones."""
        now = self.clock()
        now_text = to_timestamp_text(now)
        expired = self._expire(conn, now)
        o = outbox.c
        due = (select(o.id).where(o.status == PENDING, o.next_attempt_at <= now_text,
                                  or_(o.claimed_until.is_(None), o.claimed_until <= now_text))
               .order_by(o.next_attempt_at, o.event_position).limit(self.settings.batch_size))
        if conn.dialect.name == "postgresql":
            # Another worker's claim in progress is skipped, not waited for; SQLite's write lock
            # already lets one claim run at a time.
            due = due.with_for_update(skip_locked=True)
        ids = conn.execute(due).scalars().all()
        if not ids:
            return [], expired
        lease_end = to_timestamp_text(now + timedelta(seconds=self.settings.lease_seconds))
        conn.execute(update(outbox).where(o.id.in_(ids)).values(claimed_by=self.name, claimed_until=lease_end))
        rows = conn.execute(select(outbox).where(o.id.in_(ids))
                            .order_by(o.next_attempt_at, o.event_position)).mappings().all()
        batch = []
        for row in pii.open_rows(conn, rows):
            message = SimpleNamespace(**row)
            if pii.ERASED in (message.recipient, message.body):
                # Someone the message names was erased: it is never sent.
                self._record(conn, message, NotificationFailed(notification_id=message.id, attempts=message.attempts,
                                                               event_position=message.event_position, reason="erased"))
                expired += 1
            else:
                batch.append(message)
        return batch, expired

    def _expire(self, conn: Connection, now: datetime) -> int:
        """Give up on pending mail too old to be news (e.g. resurrected by a rebuild)."""
        o = outbox.c
        cutoff = to_timestamp_text(now - timedelta(hours=self.settings.max_age_hours))
        stale = select(o.id, o.event_position, o.attempts).where(
            o.status == PENDING, o.created_at < cutoff,
            or_(o.claimed_until.is_(None), o.claimed_until <= to_timestamp_text(now))).limit(100)
        if conn.dialect.name == "postgresql":
            stale = stale.with_for_update(skip_locked=True)
        rows = conn.execute(stale).all()
        for row in rows:
            self._record(conn, row, NotificationFailed(notification_id=row.id, event_position=row.event_position,
                                                       attempts=row.attempts, reason="expired"))
        return len(rows)

    def _sent(self, conn: Connection, row: Row[Any]) -> None:
        self._record(conn, row, NotificationSent(notification_id=row.id, event_position=row.event_position,
                                                 attempts=row.attempts + 1))

    def _failed(self, conn: Connection, row: Row[Any], exc: BaseException) -> None:
        attempts = row.attempts + 1
        reason = _reason(exc)
        if _is_permanent(exc) or attempts >= self.settings.max_attempts:
            self._record(conn, row, NotificationFailed(notification_id=row.id, event_position=row.event_position,
                                                       attempts=attempts, reason=reason))
            conn.execute(update(outbox).where(outbox.c.id == row.id).values(last_error=f"{reason}: {exc}"[:2000]))
            log.warning("outbox.gave_up", worker=self.name, notification=row.id, attempts=attempts, reason=reason)
            return
        delay = self.backoff(attempts)
        conn.execute(update(outbox).where(outbox.c.id == row.id, outbox.c.claimed_by == self.name).values(
            attempts=attempts, last_error=f"{reason}: {exc}"[:2000], claimed_by=None, claimed_until=None,
            next_attempt_at=to_timestamp_text(self.clock() + timedelta(seconds=delay))))
        log.info("outbox.retry_later", worker=self.name, notification=row.id, attempts=attempts,
                 reason=reason, delay=round(delay, 1))

    def backoff(self, attempts: int) -> float:
        """Exponential, capped, with jitter: half fixed, half random, so retries of many rows spread out."""
        s = self.settings
        delay = min(s.backoff_max_seconds, s.backoff_seconds * 2 ** (attempts - 1))
        return delay / 2 + delay / 2 * self.jitter()

    def _release(self, conn: Connection, rows: Sequence[Row[Any]]) -> None:
        conn.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows]), outbox.c.claimed_by == self.name)
                     .values(claimed_by=None, claimed_until=None))

    def _record(self, conn: Connection, row: Row[Any], outcome: DomainEvent) -> None:
        try:
            self.event_log.append(conn, f"notification-{row.id}", "events.Notification", NO_STREAM, [outcome],
                            Metadata(actor="system:outbox", service="events"))
        except ConcurrencyError:
            # Someone recorded this message's outcome first: the lease ran out while we sent it.
            log.error("outbox.outcome_already_recorded", worker=self.name, notification=row.id)


# --------------------------------------------------------------------------------------------
# App lifespan


def start_worker(app: FastAPI, settings: SmtpSettings | None = None) -> OutboxWorker | None:
    """Start delivering in the background if SMTP is enabled; call from the app's lifespan."""
    settings = settings or getattr(app.state, "smtp_settings", None) or SmtpSettings()
    if not settings.enabled:
        log.info("outbox.delivery_disabled")
        return None
    worker = OutboxWorker(app.state.db, settings)
    worker.start()
    app.state.outbox_worker = worker
    return worker


async def stop_worker(app: FastAPI) -> None:
    worker: OutboxWorker | None = getattr(app.state, "outbox_worker", None)
    if worker is not None:
        await worker.stop()
        app.state.outbox_worker = None
