"""E-mail notifications: outbox rows commit with their event; a worker delivers each one once to a
real SMTP server on loopback (aiosmtpd), retrying while it is down; rebuilds never re-send."""
from __future__ import annotations

import asyncio
import email
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import MetaData, func, select

from services.events import events as ev
from services.events.notifications import (
    OUTBOX_PROJECTOR,
    TABLES,
    OutboxWorker,
    SmtpSettings,
    notification_id,
    outbox,
    start_worker,
    stop_worker,
)
from shared.db import Database
from shared.eventlog import DomainEvent, EventLog, Metadata, RecordedEvent
from shared.migrate import upgrade
from shared.subscriptions import rebuild_projections
from shared.tables import events as events_table
from shared.tables import metadata
from tests.conftest import Store
from tests.events.conftest import Registry, brokerage, created, ok

# --------------------------------------------------------------------------------------------
# A real SMTP server


class Inbox:
    """aiosmtpd handler: keeps every accepted message; refuses recipients listed in `refuse`."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: set[str] = set()
        self.delay = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.delay:
            await asyncio.sleep(self.delay)
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        """The messages to `address`, in arrival order."""
        return [m for m in self.messages if address in m["To"]]


def text(message: EmailMessage) -> str:
    """The plain-text body, with the wire's CRLF line ends back to newlines."""
    return message.get_content().replace("\r\n", "\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def smtp_settings(port: int, **overrides: Any) -> SmtpSettings:
    values: dict[str, Any] = {"enabled": True, "host": "127.0.0.1", "port": port, "timeout_seconds": 2.0,
                              "batch_size": 3, "lease_seconds": 30.0, "backoff_seconds": 60.0,
                              "from_address": "RegMed Europe <noreply@regmed.example>", **overrides}
    return SmtpSettings(_env_file=None, **values)


# --------------------------------------------------------------------------------------------
# Domain events, appended straight into the log with the outbox projector


class Scene:
    """An event with participants, written through `EventLog.append` as the events service would."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.log = EventLog(db.dialect, projectors=[OUTBOX_PROJECTOR])
        self.event_id = str(uuid.uuid4())

    def append(self, kind: str, entity_id: str, *events: DomainEvent) -> list[RecordedEvent]:
        with self.db.writing() as conn:
            return self.log.append(conn, ev.stream_id(kind, entity_id), ev.STREAM_TYPES[kind], None, list(events),
                                   Metadata(actor="test", service="events"))

    def schedule_event(self) -> None:
        self.append("event", self.event_id, ev.EventScheduled(
            event_id=self.event_id, title="RegMed Europe 2025", kind="brokerage", organiser_cluster_ids=["biowin"],
            venue="Palais des Congrès, Liège", time_zone="Europe/Brussels",
            starts_at=datetime(2025, 5, 14, 7, 0, tzinfo=UTC), ends_at=datetime(2025, 5, 15, 16, 0, tzinfo=UTC)))

    def register(self, name: str, organisation: str, address: str | None) -> str:
        participant_id = str(uuid.uuid4())
        self.append("participant", participant_id, ev.ParticipantRegistered(
            participant_id=participant_id, event_id=self.event_id, contact_id=str(uuid.uuid4()),
            organisation_id=str(uuid.uuid4()), name=name, email=address, organisation_name=organisation, b2b=True))
        return participant_id

    def request(self, requester: str, receiver: str, message: str | None = None) -> str:
        meeting_id = str(uuid.uuid4())
        self.append("meeting", meeting_id, ev.MeetingRequested(
            meeting_id=meeting_id, event_id=self.event_id, requester_id=requester, receiver_id=receiver,
            requester_name="-", requester_organisation_name="-", receiver_name="-", receiver_organisation_name="-",
            message=message))
        return meeting_id

    def accept(self, meeting_id: str, requester: str, receiver: str) -> list[RecordedEvent]:
        return self.append("meeting", meeting_id, ev.MeetingAccepted(
            meeting_id=meeting_id, event_id=self.event_id, requester_id=requester, receiver_id=receiver))


def outbox_rows(db: Database) -> list[dict[str, Any]]:
    with db.reading() as conn:
        return [dict(row) for row in conn.execute(select(outbox).order_by(outbox.c.event_position,
                                                                          outbox.c.recipient)).mappings()]


async def drain(worker: OutboxWorker) -> int:
    total = 0
    while handled := await worker.run_once():
        total += handled
    return total


ANNE, LUC = "anne.dupont@iba.example", "luc.martin@uliege.example"


def two_participants(scene: Scene) -> tuple[str, str]:
    scene.schedule_event()
    return (scene.register("Anne Dupont", "IBA", ANNE), scene.register("Luc Martin", "Université de Liège", LUC))


# --------------------------------------------------------------------------------------------
# Delivery


async def test_an_accepted_request_mails_the_requester_exactly_once(store: Store, smtp: SmtpServer) -> None:
    scene = Scene(store.db)
    anne, luc = two_participants(scene)
    worker = OutboxWorker(store.db, smtp_settings(smtp.port))
    assert await drain(worker) == 2  # the two registration confirmations
    smtp.inbox.messages.clear()

    meeting = scene.request(anne, luc, message="Proton therapy QA: shall we talk?")
    scene.accept(meeting, anne, luc)
    await drain(worker)
    assert await drain(worker) == 0

    [accepted] = smtp.inbox.to(ANNE)
    assert accepted["Subject"] == "Luc Martin accepted your meeting request: RegMed Europe 2025"
    assert accepted["To"] == f"Anne Dupont <{ANNE}>"
    [requested] = smtp.inbox.to(LUC)
    assert requested["Subject"] == "Meeting request from Anne Dupont: RegMed Europe 2025"
    assert "> Proton therapy QA: shall we talk?" in text(requested)
    assert {row["status"] for row in outbox_rows(store.db)} == {"sent"}


async def test_smtp_down_is_retried_with_backoff_and_delivered_once_it_is_up(store: Store) -> None:
    server = SmtpServer()  # its port stays closed until started below
    scene = Scene(store.db)
    scene.schedule_event()
    scene.register("Anne Dupont", "IBA", ANNE)
    now = [datetime.now(UTC) + timedelta(seconds=1)]
    worker = OutboxWorker(store.db, smtp_settings(server.port, backoff_seconds=60.0), clock=lambda: now[0],
                          jitter=lambda: 0.5)
    try:
        assert await worker.run_once() == 1
        [row] = outbox_rows(store.db)
        assert (row["status"], row["attempts"], row["claimed_by"]) == ("pending", 1, None)
        assert "ConnectionRefusedError" in row["last_error"]
        first_retry = datetime.fromisoformat(row["next_attempt_at"])
        assert first_retry - now[0] == timedelta(seconds=45)  # 60 s, half of it jittered (0.5)

        assert await worker.run_once() == 0  # not due yet
        now[0] = first_retry
        assert await worker.run_once() == 1
        [row] = outbox_rows(store.db)
        assert row["attempts"] == 2
        assert datetime.fromisoformat(row["next_attempt_at"]) - now[0] == timedelta(seconds=90)  # doubled

        server.start()
        now[0] += timedelta(seconds=90)
        assert await worker.run_once() == 1
        now[0] += timedelta(hours=1)
        assert await worker.run_once() == 0
        assert len(server.inbox.messages) == 1
        [row] = outbox_rows(store.db)
        assert (row["status"], row["attempts"]) == ("sent", 3)
    finally:
        server.stop()


async def test_after_the_last_attempt_the_message_is_given_up_and_that_is_logged(store: Store) -> None:
    scene = Scene(store.db)
    scene.schedule_event()
    scene.register("Anne Dupont", "IBA", ANNE)
    now = [datetime.now(UTC) + timedelta(seconds=1)]
    worker = OutboxWorker(store.db, smtp_settings(free_port(), max_attempts=2), clock=lambda: now[0])
    await worker.run_once()
    now[0] += timedelta(hours=1)
    await worker.run_once()
    [row] = outbox_rows(store.db)
    assert (row["status"], row["attempts"]) == ("failed", 2)
    with store.db.reading() as conn:
        [failed] = scene.log.read(conn, event_types=["events.NotificationFailed"])
    assert failed.data["notification_id"] == row["id"]
    assert failed.data["reason"] == "ConnectionRefusedError"  # a category: no server text, no address
    now[0] += timedelta(days=1)
    assert await worker.run_once() == 0


async def test_a_recipient_refused_for_good_is_not_retried(store: Store, smtp: SmtpServer) -> None:
    smtp.inbox.refuse.add(ANNE)
    scene = Scene(store.db)
    two_participants(scene)
    await drain(OutboxWorker(store.db, smtp_settings(smtp.port)))
    by_recipient = {row["recipient"]: row for row in outbox_rows(store.db)}
    assert (by_recipient[ANNE]["status"], by_recipient[ANNE]["attempts"]) == ("failed", 1)
    assert by_recipient[ANNE]["last_error"].startswith("recipient refused (550)")
    assert by_recipient[LUC]["status"] == "sent"
    assert [m["To"] for m in smtp.inbox.messages] == [f"Luc Martin <{LUC}>"]


async def test_two_workers_on_one_store_deliver_each_message_once(store: Store, smtp: SmtpServer) -> None:
    scene = Scene(store.db)
    scene.schedule_event()
    addresses = [f"person{n}@cluster.example" for n in range(12)]
    for n, address in enumerate(addresses):
        scene.register(f"Person {n}", "Medicen", address)
    smtp.inbox.delay = 0.01  # keep the workers' batches overlapping
    replica = Database(store.db.url)  # the second worker has its own engine, as another replica would
    try:
        first = OutboxWorker(store.db, smtp_settings(smtp.port, batch_size=2), name="replica-1")
        second = OutboxWorker(replica, smtp_settings(smtp.port, batch_size=2), name="replica-2")
        await asyncio.gather(drain(first), drain(second))
        await asyncio.gather(drain(first), drain(second))
    finally:
        replica.dispose()
    delivered = sorted(m["To"].addresses[0].addr_spec for m in smtp.inbox.messages)
    assert delivered == sorted(addresses)
    assert len({m["Message-ID"] for m in smtp.inbox.messages}) == 12
    rows = outbox_rows(store.db)
    assert {row["status"] for row in rows} == {"sent"} and {row["attempts"] for row in rows} == {1}
    with store.db.reading() as conn:
        assert len(scene.log.read(conn, event_types=["events.NotificationSent"])) == 12


async def test_the_app_lifespan_helpers_deliver_in_the_background(store: Store, smtp: SmtpServer) -> None:
    app = FastAPI()
    app.state.db = store.db
    assert start_worker(app, smtp_settings(smtp.port, enabled=False)) is None
    worker = start_worker(app, smtp_settings(smtp.port, poll_seconds=0.05))
    assert worker is not None
    try:
        scene = Scene(store.db)
        two_participants(scene)
        for _ in range(200):
            if len(smtp.inbox.messages) == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await stop_worker(app)
    assert len(smtp.inbox.messages) == 2
    assert app.state.outbox_worker is None


# --------------------------------------------------------------------------------------------
# The outbox is written with the event


async def test_outbox_rows_commit_and_roll_back_with_their_event(store: Store) -> None:
    scene = Scene(store.db)
    anne, luc = two_participants(scene)
    before = len(outbox_rows(store.db))
    meeting_id = str(uuid.uuid4())
    requested = ev.MeetingRequested(meeting_id=meeting_id, event_id=scene.event_id, requester_id=anne,
                                    receiver_id=luc, requester_name="Anne Dupont", requester_organisation_name="IBA",
                                    receiver_name="Luc Martin", receiver_organisation_name="Université de Liège")

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned):
        with store.db.writing() as conn:
            [recorded] = scene.log.append(conn, ev.stream_id("meeting", meeting_id), "events.Meeting", 0, [requested])
            # Inside the append's transaction, the row is already there, tied to the event.
            row = conn.execute(select(outbox).where(outbox.c.event_position == recorded.position)).mappings().one()
            assert row["recipient"] == LUC
            raise Abandoned
    assert len(outbox_rows(store.db)) == before
    with store.db.reading() as conn:
        assert conn.execute(select(func.count()).select_from(events_table)
                            .where(events_table.c.stream_id == ev.stream_id("meeting", meeting_id))).scalar() == 0

    [recorded] = scene.append("meeting", meeting_id, requested)
    [row] = [r for r in outbox_rows(store.db) if r["event_position"] == recorded.position]
    assert row["id"] == notification_id(recorded.position, LUC)
    assert (row["status"], row["attempts"], row["created_at"]) == ("pending", 0, recorded.recorded_at)


async def test_a_rebuild_brings_the_outbox_back_as_it_was_and_sends_nothing_again(
        store: Store, smtp: SmtpServer) -> None:
    scene = Scene(store.db)
    anne, luc = two_participants(scene)
    meeting = scene.request(anne, luc)
    scene.accept(meeting, anne, luc)
    smtp.inbox.refuse.add(LUC)  # one message ends failed, for good
    worker = OutboxWorker(store.db, smtp_settings(smtp.port))
    await drain(worker)
    scene.register("Bart Peeters", "Guerbet", "bart@guerbet.example")  # and one stays pending
    before = outbox_rows(store.db)
    assert {row["status"] for row in before} == {"sent", "failed", "pending"}
    delivered = len(smtp.inbox.messages)

    rebuild_projections(store.db, scene.log, [OUTBOX_PROJECTOR])

    after = outbox_rows(store.db)
    # Everything is as it was, except the failed row's last_error: the log keeps only its reason.
    for row in before:
        if row["status"] == "failed":
            row["last_error"] = row["last_error"].split(":")[0]
    assert after == before
    smtp.inbox.refuse.clear()
    await drain(worker)
    assert len(smtp.inbox.messages) == delivered + 1
    assert smtp.inbox.messages[-1]["To"] == "Bart Peeters <bart@guerbet.example>"


async def test_mail_too_old_to_be_news_is_given_up_unsent(store: Store, smtp: SmtpServer) -> None:
    scene = Scene(store.db)
    two_participants(scene)
    later = datetime.now(UTC) + timedelta(hours=73)
    assert await drain(OutboxWorker(store.db, smtp_settings(smtp.port), clock=lambda: later)) == 2
    assert {(row["status"], row["last_error"]) for row in outbox_rows(store.db)} == {("failed", "expired")}
    assert smtp.inbox.messages == []


# --------------------------------------------------------------------------------------------
# What the messages say


def meeting_placed(scene: Scene, meeting_id: str, people: list[str], starts: datetime, table: str,
                   event: type[ev.MeetingScheduled] | type[ev.MeetingMoved] = ev.MeetingScheduled,
                   by: str = "scheduler") -> None:
    extra = {"from_slot_id": "S1-1"} if event is ev.MeetingMoved else {}
    scene.append("meeting", meeting_id, event(
        meeting_id=meeting_id, event_id=scene.event_id, participant_ids=people, slot_id="S1-2",
        starts_at=starts, ends_at=starts + timedelta(minutes=30), table=table, by=by, **extra))


async def test_agenda_and_moves_name_the_other_party_and_the_local_time(store: Store, smtp: SmtpServer) -> None:
    scene = Scene(store.db)
    anne, luc = two_participants(scene)
    eva = scene.register("Eva Nowak", "Nowak Diagnostics", None)  # no address: never mailed
    first, second = scene.request(anne, luc), scene.request(eva, anne)
    scene.accept(first, anne, luc)
    scene.accept(second, eva, anne)
    morning = datetime(2025, 5, 14, 8, 30, tzinfo=UTC)  # 10:30 in Brussels (summer time)
    meeting_placed(scene, first, [anne, luc], morning + timedelta(hours=1), "T4")
    meeting_placed(scene, second, [eva, anne], morning, "T2")
    meeting_placed(scene, first, [anne, luc], morning + timedelta(hours=2), "T5", ev.MeetingMoved)  # still preliminary
    worker = OutboxWorker(store.db, smtp_settings(smtp.port))
    await drain(worker)
    smtp.inbox.messages.clear()

    scene.append("event", scene.event_id, ev.AgendaPublished(event_id=scene.event_id, meetings=2,
                                                             participant_ids=[anne, luc, eva]))
    meeting_placed(scene, first, [anne, luc], morning + timedelta(days=1), "T1", ev.MeetingMoved, by="organiser")
    await drain(worker)

    agenda, moved = smtp.inbox.to(ANNE)
    assert agenda["Subject"] == "Your agenda for RegMed Europe 2025"
    assert agenda["From"] == "RegMed Europe <noreply@regmed.example>"
    assert agenda["Auto-Submitted"] == "auto-generated"
    body = text(agenda)
    assert body.startswith("Dear Anne Dupont,\n\nThe final agenda of RegMed Europe 2025 is published. "
                           "You have 2 meetings:\n")
    assert ("- Wednesday 14 May 2025, 10:30–11:00 (Europe/Brussels), table T2: Eva Nowak (Nowak Diagnostics)\n"
            "- Wednesday 14 May 2025, 12:30–13:00 (Europe/Brussels), table T5: Luc Martin (Université de Liège)"
            ) in body
    assert moved["Subject"] == "Meeting moved: Luc Martin, RegMed Europe 2025"
    assert ("Your meeting with Luc Martin (Université de Liège) at RegMed Europe 2025 has moved.\n\n"
            "New time: Thursday 15 May 2025, 10:30–11:00 (Europe/Brussels)\nPlace: table T1") in text(moved)
    [luc_agenda, luc_moved] = smtp.inbox.to(LUC)
    assert "You have 1 meeting:\n- Wednesday 14 May 2025, 12:30–13:00" in text(luc_agenda)
    assert "Your meeting with Anne Dupont (IBA)" in text(luc_moved)
    assert len(smtp.inbox.messages) == 4
    agenda_row = next(r for r in outbox_rows(store.db) if r["subject"].startswith("Your agenda")
                      and r["recipient"] == ANNE)
    assert agenda["Message-ID"] == f"<{agenda_row['id']}@regmed.example>"


async def test_registration_waitlist_and_cancellation_messages(store: Store, smtp: SmtpServer) -> None:
    scene = Scene(store.db)
    anne, luc = two_participants(scene)
    waiting = str(uuid.uuid4())
    scene.append("participant", waiting, ev.ParticipantWaitlisted(
        participant_id=waiting, event_id=scene.event_id, contact_id="c", organisation_id="o", name="Bart Peeters",
        email="bart@guerbet.example", organisation_name="Guerbet"))
    scene.append("participant", waiting, ev.WaitlistPromoted(participant_id=waiting, event_id=scene.event_id,
                                                              name="Bart Peeters", freed_by=luc))
    meeting = scene.request(anne, luc)
    scene.append("meeting", meeting, ev.MeetingCancelled(meeting_id=meeting, event_id=scene.event_id,
                                                         participant_ids=[anne, luc], by=anne, was_scheduled=False,
                                                         reason="Travel cancelled"))
    await drain(OutboxWorker(store.db, smtp_settings(smtp.port)))
    subjects = [m["Subject"] for m in smtp.inbox.messages]
    assert subjects.count("Registration confirmed: RegMed Europe 2025") == 2
    [confirmed] = smtp.inbox.to(ANNE)[:1]
    assert ("When: Wednesday 14 May 2025, 09:00 – Thursday 15 May 2025, 18:00 (Europe/Brussels)\n"
            "Where: Palais des Congrès, Liège") in text(confirmed)
    assert [m["Subject"] for m in smtp.inbox.to("bart@guerbet.example")] == [
        "On the waitlist: RegMed Europe 2025", "A seat is yours: RegMed Europe 2025"]
    # Anne cancelled, so only Luc hears about it.
    assert [m["Subject"] for m in smtp.inbox.to(ANNE)] == ["Registration confirmed: RegMed Europe 2025"]
    cancelled = smtp.inbox.to(LUC)[-1]
    assert cancelled["Subject"] == "Meeting cancelled: Anne Dupont, RegMed Europe 2025"
    assert "> Travel cancelled" in text(cancelled)


def test_names_cannot_inject_headers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(db.engine)
    scene = Scene(db)
    anne, luc = two_participants(scene)
    scene.register("Mallory\r\nBcc: victim@example.com", "Evil\nCorp", "mallory@evil.example")
    [row] = [r for r in outbox_rows(db) if r["recipient"] == "mallory@evil.example"]
    assert "\n" not in row["subject"] + row["recipient_name"]
    assert row["recipient_name"] == "Mallory Bcc: victim@example.com"
    db.dispose()


# --------------------------------------------------------------------------------------------
# Settings and schema


def test_settings_refuse_incoherent_smtp_configurations() -> None:
    with pytest.raises(ValidationError, match="starttls or ssl"):
        smtp_settings(25, starttls=True, ssl=True)
    with pytest.raises(ValidationError, match="username and password"):
        smtp_settings(25, username="mailer")
    with pytest.raises(ValidationError, match="lease_seconds"):
        smtp_settings(25, lease_seconds=5)
    with pytest.raises(ValidationError, match="from_address"):
        smtp_settings(25, from_address="nobody")
    assert SmtpSettings(_env_file=None).enabled is False


def test_smtp_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLUSTERHUB_SMTP_HOST", "mail.biowin.example")
    monkeypatch.setenv("CLUSTERHUB_SMTP_PORT", "587")
    monkeypatch.setenv("CLUSTERHUB_SMTP_STARTTLS", "true")
    settings = SmtpSettings(_env_file=None)
    assert (settings.host, settings.port, settings.starttls) == ("mail.biowin.example", 587, True)


def test_migration_creates_exactly_the_outbox_tables(store: Store) -> None:
    ours = MetaData()
    for table in TABLES:
        table.to_metadata(ours)
    with store.db.reading() as conn:
        context = MigrationContext.configure(conn)
        names = {t.name for t in TABLES}
        differences = [d for d in compare_metadata(context, ours)
                       if not (d[0] == "remove_table" and d[1].name not in names)
                       and not (d[0] == "remove_index" and d[1].table.name not in names)]
    assert differences == []
    assert names <= set(metadata.tables)


# --------------------------------------------------------------------------------------------
# Through the events app


async def test_the_events_app_writes_the_outbox_and_the_worker_delivers_it(
        store: Store, client: httpx.AsyncClient, registry: Registry, smtp: SmtpServer) -> None:
    session = {"title": "Morning meetings", "starts_at": "2026-03-10T09:00:00+01:00", "slot_minutes": 30,
               "slot_count": 3, "tables": 1, "room": "Hall 2"}
    scene = await brokerage(client, registry, {"Anne": "Ion Beam Applications", "Bruno": "Guerbet"},
                            b2b={"meeting_cap": 2}, session=session)
    requests = f"{scene.path}/meeting-requests"
    meeting = await created(client, requests, {"requester_id": scene.people["Anne"],
                                               "receiver_id": scene.people["Bruno"], "message": "Proton imaging?"})
    await ok(client.post(f"{requests}/{meeting['id']}/accept"))
    await ok(client.post(f"{scene.path}/agenda/publish"))
    worker = OutboxWorker(store.db, smtp_settings(smtp.port))
    await drain(worker)
    assert await drain(worker) == 0

    assert [m["Subject"] for m in smtp.inbox.to("anne@example.org")] == [
        "Registration confirmed: RegMed Europe 2026",
        "Bruno Tester accepted your meeting request: RegMed Europe 2026",
        "Your agenda for RegMed Europe 2026"]
    assert [m["Subject"] for m in smtp.inbox.to("bruno@example.org")] == [
        "Registration confirmed: RegMed Europe 2026",
        "Meeting request from Anne Tester: RegMed Europe 2026",
        "Your agenda for RegMed Europe 2026"]
    agenda = smtp.inbox.to("anne@example.org")[-1]
    assert ("You have 1 meeting:\n- Tuesday 10 March 2026, 09:00–09:30 (Europe/Brussels), table T1: "
            "Bruno Tester (Guerbet)") in text(agenda)
