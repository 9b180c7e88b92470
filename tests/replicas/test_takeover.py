"""Two replicas of the events service on one store: the outbox worker runs in one of them, and when
that one is killed with SIGKILL in the middle of a stream of registrations, the other takes over
and every confirmation is delivered, once.

Real processes (uvicorn), a real SMTP server (aiosmtpd) and a real store: PostgreSQL (advisory
lock) and, on one machine, SQLite (a lease row that expires). The one message that may go twice
is the one the killed replica had handed to SMTP without recording it as sent: it goes again
with the same Message-ID, which mail systems use to drop the copy.
"""
from __future__ import annotations

import asyncio
import email
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, text

from services.events import events as ev
from services.events.app import OUTBOX_LEASE
from services.events.notifications import SENT, outbox
from services.events.projections import PROJECTORS
from shared.db import Database
from shared.eventlog import EventLog, Metadata, verify_chain
from shared.leases import lease_holder
from tests.conftest import Store, _postgres_store, _sqlite_store
from tests.replicas.processes import ServiceProcess, free_port

REGISTRATIONS = 60
HELD = "clusterhub_worker_lease_held"


class Inbox:
    """aiosmtpd handler: every accepted message with when it arrived; each DATA takes `delay` s."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.messages: list[tuple[float, EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        with self.lock:
            self.messages.append((time.monotonic(), message))
        return "250 Message accepted for delivery"

    def ids(self) -> list[str]:
        with self.lock:
            return [message["Message-ID"] for _, message in self.messages]


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler, port = Inbox(delay=0.03), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def shared_store(request, tmp_path) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    made = (_sqlite_store(tmp_path) if request.param == "sqlite"
            else _postgres_store(request.getfixturevalue("postgres_server")))
    try:
        yield made
    finally:
        made.db.dispose()


@pytest.fixture
def replicas() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    try:
        yield started
    finally:
        for replica in started:
            replica.kill()


class Registrations:
    """Registrations for one event written into the log as the events service writes them."""

    def __init__(self, db: Database) -> None:
        self.db, self.log = db, EventLog(db.dialect, projectors=PROJECTORS)
        self.event_id = str(uuid.uuid4())

    def append(self, kind: str, entity_id: str, event: ev.DomainEvent) -> None:
        with self.db.writing() as conn:
            self.log.append(conn, ev.stream_id(kind, entity_id), ev.STREAM_TYPES[kind], None, [event],
                            Metadata(actor="test", service="events"))

    def schedule(self) -> None:
        self.append("event", self.event_id, ev.EventScheduled(
            event_id=self.event_id, title="RegMed Europe 2026", kind="brokerage", organiser_cluster_ids=["biowin"],
            venue="Palais des Congrès, Liège", time_zone="Europe/Brussels",
            starts_at=datetime(2026, 5, 14, 7, 0, tzinfo=UTC), ends_at=datetime(2026, 5, 15, 16, 0, tzinfo=UTC)))

    def register(self, number: int) -> None:
        participant_id = str(uuid.uuid4())
        self.append("participant", participant_id, ev.ParticipantRegistered(
            participant_id=participant_id, event_id=self.event_id, contact_id=str(uuid.uuid4()),
            organisation_id=str(uuid.uuid4()), name=f"Participant {number}", email=f"p{number}@example.org",
            organisation_name=f"Organisation {number}", b2b=True))

    def stream(self, count: int, interval: float) -> threading.Thread:
        def run() -> None:
            for number in range(count):
                self.register(number)
                time.sleep(interval)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def wait_for(condition, timeout: float, what: str,  # type: ignore[no-untyped-def]
             processes: list[ServiceProcess] = ()) -> float:
    """Poll `condition` until true; returns the seconds it took (the processes' logs tell why not)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            logs = "\n".join(f"--- {p.log_path.name}\n{p.log_text()[-4000:]}" for p in processes)
            raise AssertionError(f"{what}: not within {timeout} s\n{logs}")
        time.sleep(0.05)
    return time.monotonic() - started


def sent_ids(replica: ServiceProcess) -> set[str]:
    return {record["notification"] for record in replica.log_events("outbox.sent")}


def test_killing_the_active_replica_hands_the_outbox_over_and_every_message_goes_once(
        shared_store: Store, inbox: tuple[Inbox, int], replicas: list[ServiceProcess], tmp_path: Path) -> None:
    handler, smtp_port = inbox
    env = {"CLUSTERHUB_SMTP_ENABLED": "true", "CLUSTERHUB_SMTP_HOST": "127.0.0.1",
           "CLUSTERHUB_SMTP_PORT": str(smtp_port), "CLUSTERHUB_SMTP_POLL_SECONDS": "0.2",
           "CLUSTERHUB_SMTP_TIMEOUT_SECONDS": "2", "CLUSTERHUB_SMTP_BATCH_SIZE": "5",
           "CLUSTERHUB_SMTP_LEASE_SECONDS": "60",  # claims of a dead worker would wait a minute without takeover
           "CLUSTERHUB_SMTP_FROM_ADDRESS": "RegMed Europe <noreply@regmed.example>",
           "CLUSTERHUB_LEASE_TTL_SECONDS": "1.5", "CLUSTERHUB_LEASE_CHECK_SECONDS": "0.5"}
    replicas.extend(ServiceProcess("events", shared_store.db.url, tmp_path, env=env) for _ in range(2))
    for replica in replicas:
        replica.wait_healthy()

    # Exactly one replica holds the outbox lease; the other stands by.
    def holders() -> list[float | None]:
        return [replica.metric(HELD, worker=OUTBOX_LEASE) for replica in replicas]

    wait_for(lambda: sorted(holders()) == [0.0, 1.0], 10, "one replica holding the lease", replicas)
    active, standby = (replicas[0], replicas[1]) if holders()[0] == 1.0 else (replicas[1], replicas[0])

    producer = Registrations(shared_store.db)
    producer.schedule()
    stream = producer.stream(REGISTRATIONS, interval=0.04)

    # Mid-stream: the active replica has delivered some, more are queued or in flight.
    wait_for(lambda: len(handler.ids()) >= 15, 15, "the first deliveries", replicas)
    assert not sent_ids(standby), "the standby delivered while the other held the lease"
    assert holders() == ([1.0, 0.0] if active is replicas[0] else [0.0, 1.0])
    active.kill()
    delivered_at_kill = len(handler.ids())
    took_over = wait_for(lambda: standby.metric(HELD, worker=OUTBOX_LEASE) == 1.0, 10, "the takeover", replicas)
    print(f"{delivered_at_kill} delivered before SIGKILL; standby took over after {took_over:.2f} s")
    # PostgreSQL frees a dead session's lock at once; SQLite waits for the lease row to expire (1.5 s).
    assert took_over < (3.0 if shared_store.backend == "postgres" else 5.0)

    stream.join(timeout=30)
    wait_for(lambda: len(set(handler.ids())) == REGISTRATIONS, 20, "every confirmation delivered", replicas)
    time.sleep(0.5)  # anything sent twice would arrive now

    counts = Counter(handler.ids())
    twice = [message_id for message_id, count in counts.items() if count > 1]
    # At most the one message in flight at the kill: accepted by SMTP, not yet recorded as sent.
    assert len(twice) <= 1 and all(counts[m] == 2 for m in twice), counts
    print(f"sent twice (same Message-ID): {twice}")

    by_active, by_standby = sent_ids(active), sent_ids(standby)
    assert not by_active & by_standby  # each row was recorded sent by one replica only
    with shared_store.db.reading() as conn:
        rows = conn.execute(select(outbox.c.id, outbox.c.status)).all()
        outcomes = conn.execute(text("SELECT stream_id, count(*) FROM events "
                                     "WHERE event_type = 'events.NotificationSent' GROUP BY stream_id")).all()
        report = verify_chain(conn)
        log_size = conn.execute(select(func.count()).select_from(text("events"))).scalar_one()
    assert len(rows) == REGISTRATIONS and {status for _, status in rows} == {SENT}
    # "outbox.sent" is logged after the commit: a replica killed between the two leaves its last
    # send recorded in the store but in no log, at most the one message in flight at the kill.
    logged, recorded = by_active | by_standby, {row.id for row in rows}
    assert logged <= recorded and len(recorded - logged) <= 1, recorded - logged
    assert len(outcomes) == REGISTRATIONS and {count for _, count in outcomes} == {1}
    assert report.ok, report
    assert log_size == 1 + 2 * REGISTRATIONS  # the event, the registrations, one outcome each
    # The Message-ID is the outbox id: the copy, if any, is of a row the killed replica held.
    assert {m.split("@")[0].lstrip("<") for m in counts} == {row.id for row in rows}
    for message_id in twice:
        assert message_id.split("@")[0].lstrip("<") not in by_active

    assert asyncio.run(lease_holder(shared_store.db, OUTBOX_LEASE)).split(":")[1] == str(standby.pid)
    standby.stop()  # SIGTERM: the lifespan stops the worker and releases the lease
    assert asyncio.run(lease_holder(shared_store.db, OUTBOX_LEASE)) is None
