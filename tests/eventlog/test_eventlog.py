"""Contract tests of the shared event log, run on SQLite and on PostgreSQL alike."""
from __future__ import annotations

import sqlite3
import threading
from typing import ClassVar

import psycopg
import pytest
import sqlalchemy
from sqlalchemy import Column, Connection, Integer, String, Table, delete, insert, select

from shared.db import Database
from shared.eventlog import (
    EVENT_TYPES,
    GENESIS_HASH,
    NO_STREAM,
    ConcurrencyError,
    DomainEvent,
    EventLog,
    Metadata,
    RecordedEvent,
    decode_event,
    verify_chain,
)
from shared.migrate import upgrade
from shared.subscriptions import CatchUpSubscription, rebuild_projections


class ParcelWeighed(DomainEvent):
    event_type: ClassVar[str] = "test.ParcelWeighed"
    parcel: str
    grams: int


META = Metadata(actor="user-1", tenant="biowin", service="tests", request_id="r-1", correlation_id="c-1")


def append(store, stream: str, expected: int | None, *grams: int, log: EventLog | None = None) -> list[RecordedEvent]:
    log = log or EventLog(store.db.dialect)
    with store.db.writing() as conn:
        return log.append(conn, stream, "test.Parcel", expected, [ParcelWeighed(parcel=stream, grams=g) for g in grams], META)


def all_events(store) -> list[RecordedEvent]:
    log = EventLog(store.db.dialect)
    with store.db.reading() as conn:
        return list(log.iterate(conn))


class TestAppend:
    def test_events_get_consecutive_positions_and_stream_versions(self, store):
        append(store, "parcel-a", NO_STREAM, 10, 20)
        append(store, "parcel-b", NO_STREAM, 5)
        append(store, "parcel-a", 2, 30)
        events = all_events(store)
        assert [(e.position, e.stream_id, e.version) for e in events] == [
            (1, "parcel-a", 1), (2, "parcel-a", 2), (3, "parcel-b", 1), (4, "parcel-a", 3)]
        assert events[0].prev_hash == GENESIS_HASH
        assert all(later.prev_hash == earlier.hash for earlier, later in zip(events, events[1:]))
        assert events[0].metadata == META.as_dict()
        assert events[3].event == ParcelWeighed(parcel="parcel-a", grams=30)

    def test_wrong_expected_version_is_a_conflict_that_names_the_current_version(self, store):
        append(store, "parcel-a", NO_STREAM, 1, 2)
        with pytest.raises(ConcurrencyError) as caught:
            append(store, "parcel-a", 1, 3)
        assert caught.value.current_version == 2
        assert caught.value.status == 409
        assert caught.value.problem()["current_version"] == 2
        assert len(all_events(store)) == 2

    def test_must_not_exist_refuses_an_existing_stream(self, store):
        append(store, "parcel-a", NO_STREAM, 1)
        with pytest.raises(ConcurrencyError):
            append(store, "parcel-a", NO_STREAM, 2)

    def test_none_skips_the_version_check(self, store):
        append(store, "parcel-a", None, 1)
        append(store, "parcel-a", None, 2)
        assert [e.version for e in all_events(store)] == [1, 2]

    def test_a_failure_inside_the_transaction_writes_nothing(self, store):
        log = EventLog(store.db.dialect)
        append(store, "parcel-a", NO_STREAM, 1)
        with pytest.raises(RuntimeError):
            with store.db.writing() as conn:
                log.append(conn, "parcel-b", "test.Parcel", NO_STREAM, [ParcelWeighed(parcel="b", grams=1)] * 3, META)
                raise RuntimeError("crash after the append, before commit")
        assert [e.stream_id for e in all_events(store)] == ["parcel-a"]
        append(store, "parcel-b", NO_STREAM, 1)  # and the next append chains on cleanly
        assert verify_chain_now(store).ok


    def test_a_log_chains_onto_its_last_append_and_onto_others_appends(self, store):
        # A log guesses that the head is where its own last append ended: hits, misses after
        # another log appended, and conflicts all go through the guessed path here.
        first, second = EventLog(store.db.dialect), EventLog(store.db.dialect)
        append(store, "parcel-a", NO_STREAM, 1, log=first)
        append(store, "parcel-a", 1, 2, log=first)
        append(store, "parcel-b", NO_STREAM, 3, 4, log=second)
        append(store, "parcel-a", 2, 5, log=first)
        with pytest.raises(ConcurrencyError) as caught:
            append(store, "parcel-a", 2, 6, log=first)
        assert caught.value.current_version == 3
        with pytest.raises(ConcurrencyError):
            append(store, "parcel-b", NO_STREAM, 7, log=second)
        append(store, "parcel-b", 2, 8, 9, log=second)
        events = all_events(store)
        assert [(e.stream_id, e.version, e.event.grams) for e in events] == [
            ("parcel-a", 1, 1), ("parcel-a", 2, 2), ("parcel-b", 1, 3), ("parcel-b", 2, 4), ("parcel-a", 3, 5),
            ("parcel-b", 3, 8), ("parcel-b", 4, 9)]
        assert verify_chain_now(store).ok

    def test_an_append_the_database_rejects_rolls_back_and_the_log_goes_on(self, postgres_store):
        # PostgreSQL sends the first append of a transaction together with its BEGIN; a failure
        # there must leave the connection as any failed statement does.
        store = postgres_store
        log = EventLog(store.db.dialect)
        append(store, "parcel-a", NO_STREAM, 1, log=log)
        with pytest.raises(psycopg.errors.StringDataRightTruncation):
            append(store, "parcel-" + "b" * 300, NO_STREAM, 2, log=log)  # longer than the stream_id column
        append(store, "parcel-b", NO_STREAM, 3, log=log)
        assert [(e.stream_id, e.position) for e in all_events(store)] == [("parcel-a", 1), ("parcel-b", 2)]
        assert verify_chain_now(store).ok


    def test_a_rolled_back_append_leaves_a_wrong_guess_that_costs_nothing(self, store):
        # The log remembers where its last append ended, even one whose transaction then rolled
        # back: the next append must notice that this is not the head and chain onto the real one.
        log = EventLog(store.db.dialect)
        append(store, "parcel-a", NO_STREAM, 1, log=log)
        with pytest.raises(RuntimeError):
            with store.db.writing() as conn:
                log.append(conn, "parcel-a", "test.Parcel", 1, [ParcelWeighed(parcel="a", grams=2)] * 2, META)
                raise RuntimeError("rolled back")
        append(store, "parcel-a", 1, 3, log=log)
        append(store, "parcel-b", NO_STREAM, 4, log=log)
        assert [(e.position, e.stream_id, e.version) for e in all_events(store)] == [
            (1, "parcel-a", 1), (2, "parcel-a", 2), (3, "parcel-b", 1)]
        assert verify_chain_now(store).ok

    def test_an_append_rolled_back_to_a_savepoint_leaves_a_wrong_guess_in_the_same_transaction(self, store):
        # As the SQLite group committer does with a write that fails: the next write in the same
        # transaction appends with a log whose last append is gone.
        log = EventLog(store.db.dialect)
        append(store, "parcel-a", NO_STREAM, 1, log=log)
        with store.db.writing() as conn:
            driver = conn.connection.driver_connection
            driver.execute("SAVEPOINT write")
            log.append(conn, "parcel-b", "test.Parcel", NO_STREAM, [ParcelWeighed(parcel="b", grams=2)], META)
            driver.execute("ROLLBACK TO SAVEPOINT write")
            driver.execute("RELEASE SAVEPOINT write")
            [recorded] = log.append(conn, "parcel-a", "test.Parcel", 1, [ParcelWeighed(parcel="a", grams=3)], META)
        assert (recorded.position, recorded.version) == (2, 2)
        assert [(e.position, e.stream_id) for e in all_events(store)] == [(1, "parcel-a"), (2, "parcel-a")]
        assert verify_chain_now(store).ok

    def test_recorded_events_of_an_append_equal_those_read_back(self, store):
        appended = append(store, "parcel-a", NO_STREAM, 1, 2)
        [first, second] = all_events(store)
        assert appended == [first, second]
        assert [e.data for e in appended] == [first.data, second.data] == [
            {"parcel": "parcel-a", "grams": 1}, {"parcel": "parcel-a", "grams": 2}]
        assert appended[1].event == second.event == ParcelWeighed(parcel="parcel-a", grams=2)
        assert appended[0].public() == first.public()


def verify_chain_now(store):
    with store.db.reading() as conn:
        return verify_chain(conn)


class TestAppendOnly:
    @pytest.mark.parametrize("statement", ["UPDATE events SET data = '{}'", "DELETE FROM events"])
    def test_the_database_rejects_changes_even_from_the_owner(self, store, statement):
        append(store, "parcel-a", NO_STREAM, 1)
        owner = store.admin()
        try:
            with pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"):
                with owner.writing() as conn:
                    conn.exec_driver_sql(statement)
        finally:
            owner.dispose()
        assert len(all_events(store)) == 1

    def test_postgres_service_role_has_no_update_delete_or_truncate_grant(self, postgres_store):
        store = postgres_store
        append(store, "parcel-a", NO_STREAM, 1)
        for statement in ("UPDATE events SET data = '{}'", "DELETE FROM events", "TRUNCATE events"):
            with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied"):
                with store.db.writing() as conn:
                    conn.exec_driver_sql(statement)

    def test_owner_truncate_is_rejected_on_postgres(self, postgres_store):
        owner = postgres_store.admin()
        try:
            with pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"):
                with owner.writing() as conn:
                    conn.exec_driver_sql("TRUNCATE events")
        finally:
            owner.dispose()


class TestSQLiteRefusesRowsThatDoNotContinueTheLog:
    """Migration 0013: whoever inserts into the log, SQLite refuses a row whose position,
    prev_hash or stream version does not follow what is stored (PostgreSQL checks the same in
    its append functions)."""

    @pytest.fixture
    def sqlite(self, tmp_path):
        db = Database(f"sqlite:///{tmp_path / 'log.db'}")
        upgrade(db.engine)
        log = EventLog(db.dialect)
        with db.writing() as conn:
            log.append(conn, "parcel-a", "test.Parcel", NO_STREAM, [ParcelWeighed(parcel="a", grams=1)], META)
            log.append(conn, "parcel-b", "test.Parcel", NO_STREAM, [ParcelWeighed(parcel="b", grams=2)], META)
        try:
            yield db
        finally:
            db.dispose()

    @staticmethod
    def insert(db: Database, **changes):
        """Insert a copy of the last event, changed, straight through the driver."""
        with db.writing() as conn:
            driver = conn.connection.driver_connection
            columns = [c[1] for c in driver.execute("PRAGMA table_info(events)")]
            row = dict(zip(columns, driver.execute("SELECT * FROM events ORDER BY position DESC LIMIT 1").fetchone()))
            row.update(position=row["position"] + 1, prev_hash=row["hash"], stream_id="parcel-c", version=1,
                       hash="f" * 64)
            row.update(changes)
            driver.execute(f"INSERT INTO events ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                           tuple(row.values()))

    def test_a_row_that_continues_the_log_goes_in(self, sqlite):
        self.insert(sqlite)
        self.insert(sqlite, position=4, prev_hash="f" * 64, version=2, hash="e" * 64)
        with sqlite.reading() as conn:
            assert [e.position for e in EventLog(sqlite.dialect).read(conn)] == [1, 2, 3, 4]

    @pytest.mark.parametrize("changes, refusal", [
        ({"prev_hash": "0" * 64}, "prev_hash must follow the head"),
        ({"position": 4}, "prev_hash must follow the head"),             # a gap
        ({"position": 2}, "prev_hash must follow the head"),             # onto an older head
        ({"version": 2}, "version must follow the stream"),              # a new stream starts at 1
        ({"stream_id": "parcel-a", "version": 1}, "version must follow the stream"),  # exists already
        ({"stream_id": "parcel-a", "version": 3}, "version must follow the stream"),  # a gap
    ])
    def test_a_row_that_does_not_is_refused(self, sqlite, changes, refusal):
        with pytest.raises(sqlite3.IntegrityError, match=f"event log refused: .*{refusal}"):
            self.insert(sqlite, **changes)
        with sqlite.reading() as conn:
            assert EventLog(sqlite.dialect).head_position(conn) == 2
            assert verify_chain(conn).ok

    def test_the_first_row_must_follow_the_genesis_hash(self, tmp_path):
        db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
        upgrade(db.engine)
        try:
            row = (1, "parcel-a", "test.Parcel", 1, "test.ParcelWeighed", 1, "{}", "{}", None, None,
                   "2026-12-06T00:00:00.000000Z", "1" * 64, "f" * 64)
            with pytest.raises(sqlite3.IntegrityError, match="event log refused"):
                with db.writing() as conn:
                    conn.connection.driver_connection.execute(
                        "INSERT INTO events (position, stream_id, stream_type, version, event_type, schema_version, "
                        "data, metadata, actor, tenant, recorded_at, prev_hash, hash) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        finally:
            db.dispose()


def tamper(store, sql: str) -> None:
    """Change stored events behind the triggers' back, as someone with file or superuser access could."""
    owner = store.admin()
    try:
        with owner.writing() as conn:
            if store.backend == "sqlite":
                conn.exec_driver_sql("DROP TRIGGER events_no_update")
                conn.exec_driver_sql("DROP TRIGGER events_no_delete")
                conn.exec_driver_sql(sql)
            else:
                conn.exec_driver_sql("ALTER TABLE events DISABLE TRIGGER USER")
                conn.exec_driver_sql(sql)
                conn.exec_driver_sql("ALTER TABLE events ENABLE TRIGGER USER")
    finally:
        owner.dispose()


class TestTamperEvidence:
    def test_an_intact_log_verifies(self, store):
        for i in range(5):
            append(store, f"parcel-{i}", NO_STREAM, i, i + 1)
        report = verify_chain_now(store)
        assert (report.ok, report.count) == (True, 10)

    def test_edited_data_is_reported_at_its_position(self, store):
        for i in range(5):
            append(store, f"parcel-{i}", NO_STREAM, i, i + 1)
        tamper(store, """UPDATE events SET data = '{"grams":999,"parcel":"parcel-3"}' WHERE position = 7""")
        report = verify_chain_now(store)
        assert (report.ok, report.broken_at, report.count) == (False, 7, 6)
        assert "content" in report.reason

    def test_a_removed_event_is_reported(self, store):
        for i in range(3):
            append(store, f"parcel-{i}", NO_STREAM, i)
        tamper(store, "DELETE FROM events WHERE position = 2")
        report = verify_chain_now(store)
        assert (report.ok, report.broken_at) == (False, 2)

    def test_a_recomputed_hash_still_breaks_the_next_link(self, store):
        for i in range(3):
            append(store, f"parcel-{i}", NO_STREAM, i)
        tamper(store, "UPDATE events SET hash = CASE WHEN substr(hash, 1, 1) = '0' THEN '1' ELSE '0' END "
                      "|| substr(hash, 2) WHERE position = 2")
        assert verify_chain_now(store).broken_at == 2

    def test_a_changed_actor_column_is_reported(self, store):
        append(store, "parcel-a", NO_STREAM, 1)
        tamper(store, "UPDATE events SET actor = 'someone-else' WHERE position = 1")
        report = verify_chain_now(store)
        assert (report.ok, report.broken_at) == (False, 1)


class TestReaders:
    def test_filters_by_type_stream_actor_tenant_and_time(self, store):
        moments = iter([f"2026-03-1{d}T09:00:00.000000Z" for d in range(10)])
        log = EventLog(store.db.dialect, clock=lambda: next(moments))
        with store.db.writing() as conn:
            log.append(conn, "parcel-a", "test.Parcel", NO_STREAM, [ParcelWeighed(parcel="a", grams=1)], META)
            log.append(conn, "parcel-b", "test.Parcel", NO_STREAM, [ParcelWeighed(parcel="b", grams=1)],
                       Metadata(actor="user-2", tenant="medicen"))
            log.append(conn, "parcel-a", "test.Parcel", 1, [ParcelWeighed(parcel="a", grams=2)], META)
        with store.db.reading() as conn:
            assert [e.position for e in log.read(conn, actor="user-2")] == [2]
            assert [e.position for e in log.read(conn, tenant="biowin")] == [1, 3]
            assert [e.position for e in log.read(conn, stream_id="parcel-a")] == [1, 3]
            assert [e.position for e in log.read(conn, event_types=["test.ParcelWeighed"], after=1, limit=1)] == [2]
            assert [e.position for e in log.read(conn, event_types=["test.Other"])] == []
            assert [e.position for e in log.read(conn, since="2026-03-11T00:00:00Z")] == [2, 3]
            assert [e.position for e in log.read(conn, until="2026-03-11T00:00:00Z")] == [1]
            assert [e.version for e in log.read_stream(conn, "parcel-a", after_version=1)] == [2]


class TestUpcasting:
    def test_a_stored_v1_event_reads_back_as_v2(self, store):
        name = "test.ParcelLabelled"

        class ParcelLabelledV1(DomainEvent):
            event_type: ClassVar[str] = name
            schema_version: ClassVar[int] = 1
            label: str

        with store.db.writing() as conn:
            EventLog(store.db.dialect).append(conn, "parcel-a", "test.Parcel", NO_STREAM,
                                              [ParcelLabelledV1(label="Fragile, this side up")], META)
        del EVENT_TYPES[name]  # "deploy" the next version of the code

        class ParcelLabelled(DomainEvent):
            event_type: ClassVar[str] = name
            schema_version: ClassVar[int] = 2
            text: str
            language: str

            @staticmethod
            def upcast_v1_v2(data):
                return {"text": data["label"], "language": "en"}

        try:
            [stored] = all_events(store)
            assert stored.schema_version == 1 and stored.data == {"label": "Fragile, this side up"}
            assert stored.event == ParcelLabelled(text="Fragile, this side up", language="en")
            assert verify_chain_now(store).ok
        finally:
            del EVENT_TYPES[name]

    def test_an_append_hands_over_the_event_unless_its_class_is_no_longer_the_current_one(self, store):
        name = "test.ParcelSealed"

        class ParcelSealedV1(DomainEvent):
            event_type: ClassVar[str] = name
            schema_version: ClassVar[int] = 1
            seal: str

        current = ParcelSealedV1(seal="red")
        with store.db.writing() as conn:
            [recorded] = EventLog(store.db.dialect).append(conn, "parcel-a", "test.Parcel", NO_STREAM, [current], META)
        assert recorded.event is current
        del EVENT_TYPES[name]

        class ParcelSealed(DomainEvent):
            event_type: ClassVar[str] = name
            schema_version: ClassVar[int] = 2
            seal: str
            intact: bool

            @staticmethod
            def upcast_v1_v2(data):
                return {**data, "intact": True}

        try:
            with store.db.writing() as conn:  # code that still holds the old class
                [recorded] = EventLog(store.db.dialect).append(conn, "parcel-a", "test.Parcel", 1,
                                                               [ParcelSealedV1(seal="blue")], META)
            assert recorded.schema_version == 1
            assert recorded.event == ParcelSealed(seal="blue", intact=True)
        finally:
            del EVENT_TYPES[name]

    def test_an_event_newer_than_the_code_is_refused(self):
        with pytest.raises(LookupError, match="newer"):
            decode_event("test.ParcelWeighed", 5, {"parcel": "a", "grams": 1})


parcel_totals = Table(
    "test_parcel_totals", sqlalchemy.MetaData(),
    Column("parcel", String(50), primary_key=True),
    Column("grams", Integer, nullable=False),
)


class ParcelTotals:
    """A small read model, to test inline projection and rebuild independent of any service."""

    name = "test.parcel_totals"
    tables = [parcel_totals]

    def handles(self, event_type: str) -> bool:
        return event_type == ParcelWeighed.event_type

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        weighed = event.event
        assert isinstance(weighed, ParcelWeighed)
        row = conn.execute(select(parcel_totals.c.grams).where(parcel_totals.c.parcel == weighed.parcel)).fetchone()
        if row is None:
            conn.execute(insert(parcel_totals).values(parcel=weighed.parcel, grams=weighed.grams))
        else:
            conn.execute(parcel_totals.update().where(parcel_totals.c.parcel == weighed.parcel)
                         .values(grams=row[0] + weighed.grams))


@pytest.fixture
def totals_table(store):
    owner = store.admin()
    parcel_totals.create(owner.engine)
    if store.backend == "postgres":
        with owner.writing() as conn:
            conn.exec_driver_sql("GRANT ALL ON test_parcel_totals TO clusterhub_app")
    owner.dispose()
    return parcel_totals


def totals(store) -> dict[str, int]:
    with store.db.reading() as conn:
        return dict(conn.execute(select(parcel_totals.c.parcel, parcel_totals.c.grams)).fetchall())


class TestProjections:
    def test_inline_projection_commits_or_rolls_back_with_the_append(self, store, totals_table):
        log = EventLog(store.db.dialect, projectors=[ParcelTotals()])
        append(store, "a", NO_STREAM, 10, 5, log=log)
        assert totals(store) == {"a": 15}
        with pytest.raises(RuntimeError):
            with store.db.writing() as conn:
                log.append(conn, "a", "test.Parcel", 2, [ParcelWeighed(parcel="a", grams=100)], META)
                raise RuntimeError("crash before commit")
        assert totals(store) == {"a": 15}

    def test_rebuild_reproduces_the_live_read_model(self, store, totals_table):
        log = EventLog(store.db.dialect, projectors=[ParcelTotals()])
        for i in range(20):
            append(store, f"p{i % 4}", None, i, log=log)
        live = totals(store)
        with store.db.writing() as conn:
            conn.execute(delete(parcel_totals).where(parcel_totals.c.parcel == "p1"))  # a damaged read model
        assert rebuild_projections(store.db, log, [ParcelTotals()]) == 20
        assert totals(store) == live


class TestCatchUpSubscription:
    def test_each_event_is_handled_once_and_the_checkpoint_survives_restarts(self, store):
        seen: list[int] = []
        log = EventLog(store.db.dialect)

        def make() -> CatchUpSubscription:
            return CatchUpSubscription("test.collector", store.db, log, lambda _c, e: seen.append(e.position),
                                       batch_size=3)

        append(store, "a", NO_STREAM, 1, 2, 3, 4)
        assert make().catch_up() == 4
        append(store, "b", NO_STREAM, 5, 6)
        assert make().catch_up() == 2  # a new consumer instance resumes from the stored checkpoint
        assert make().catch_up() == 0
        assert seen == [1, 2, 3, 4, 5, 6]

    def test_a_failing_handler_leaves_the_batch_for_the_next_attempt(self, store):
        handled: list[int] = []
        fail_at = {3}

        def handler(_conn, event):
            if event.position in fail_at:
                raise RuntimeError("downstream unavailable")
            handled.append(event.position)

        log = EventLog(store.db.dialect)
        append(store, "a", NO_STREAM, 1, 2, 3, 4)
        sub = CatchUpSubscription("test.flaky", store.db, log, handler, batch_size=2)
        with pytest.raises(RuntimeError):
            sub.catch_up()
        fail_at.clear()
        sub.catch_up()
        # Batch [1, 2] committed; batch [3, 4] rolled back with its checkpoint and was redone.
        assert handled == [1, 2, 3, 4]
        with store.db.reading() as conn:
            assert sub.checkpoint(conn) == 4

    def test_type_filter_moves_the_checkpoint_past_unrelated_events(self, store):
        log = EventLog(store.db.dialect)
        append(store, "a", NO_STREAM, 1, 2)
        sub = CatchUpSubscription("test.none", store.db, log, lambda _c, _e: None, event_types=["test.Other"])
        sub.catch_up()
        with store.db.reading() as conn:
            assert sub.checkpoint(conn) == 2


class TestConcurrency:
    def test_concurrent_writers_and_a_live_reader_see_every_event_once_in_order(self, store):
        writers, appends_each = 8, 40
        log = EventLog(store.db.dialect)
        done = threading.Event()
        errors: list[BaseException] = []
        conflicts = [0]
        received: list[int] = []

        def write(worker: int) -> None:
            try:
                for i in range(appends_each):
                    # Half the writers share streams, so version conflicts happen and are retried.
                    stream = f"shared-{i % 3}" if worker % 2 else f"own-{worker}"
                    while True:
                        try:
                            with store.db.writing() as conn:
                                current = log.stream_version(conn, stream)
                                log.append(conn, stream, "test.Parcel", current,
                                           [ParcelWeighed(parcel=stream, grams=worker)] * (1 + i % 2), META)
                            break
                        except ConcurrencyError:
                            conflicts[0] += 1
            except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
                errors.append(exc)

        def read() -> None:
            checkpoint = 0
            try:
                while True:
                    finished = done.is_set()
                    with store.db.reading() as conn:
                        batch = log.read(conn, after=checkpoint, limit=50)
                    for event in batch:
                        received.append(event.position)
                        checkpoint = event.position
                    if finished and not batch:
                        return
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        reader.join()

        assert not errors, errors
        stored = all_events(store)
        total = writers * appends_each // 2 * 3  # each appender alternates 1 and 2 events
        assert len(stored) == total
        assert received == list(range(1, total + 1))  # everything, in order, none twice, none skipped
        for stream in {e.stream_id for e in stored}:
            versions = [e.version for e in stored if e.stream_id == stream]
            assert versions == list(range(1, len(versions) + 1))
        assert verify_chain_now(store).ok

    def test_racing_appends_at_the_same_version_let_exactly_one_win(self, store):
        log = EventLog(store.db.dialect)
        append(store, "contested", NO_STREAM, 1)
        barrier = threading.Barrier(6)
        outcomes: list[str] = []

        def contend(worker: int) -> None:
            barrier.wait()
            try:
                with store.db.writing() as conn:
                    log.append(conn, "contested", "test.Parcel", 1, [ParcelWeighed(parcel="c", grams=worker)], META)
                outcomes.append("won")
            except ConcurrencyError:
                outcomes.append("conflict")

        threads = [threading.Thread(target=contend, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["conflict"] * 5 + ["won"]
        assert [e.version for e in all_events(store)] == [1, 2]
