"""Event log append throughput, against its ceiling (the bare driver) and its peer (eventsourcing).

    .venv/bin/python bench/eventlog.py [--events N] [--rounds R] [--backend sqlite|postgresql] [--json]

Three contenders write the same events with the same durability (SQLite: WAL, synchronous=FULL;
PostgreSQL: fsync and synchronous_commit on), in two modes:

- single: one event per transaction, with an expected version (the API's write path);
- batch: one stream of 10 events per transaction.

`project` is `EventLog.append` on a `Database` connection, hash chain included. `raw` inserts the
same rows (precomputed, hashes included) through the bare driver, the way a driver user writes
it, into the same migrated `events` table, indexes and triggers included (on SQLite the trigger
of migration 0013 checks its rows as it checks the project's): the ceiling. `peer` is
pyeventsourcing's application recorder, given `StoredEvent`s made from the same events
(serialised with pydantic's `model_dump_json`).

Each round opens fresh stores for all three, which then take turns every 250 events, so load
from elsewhere on the machine hits all alike; throughputs are medians over rounds, latencies are
per append (one transaction). The project's chain is verified after every round (`chain_ok`).
`<contender>_cpu_us_per_event` is this process's CPU time per event (the servers' not included):
on a busy machine the CPU-bound part of an append is stretched by the other runnable processes
while an fsync's wait is not, so throughput ratios drop with the machine's load; CPU time shows
the work itself.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from eventsourcing.persistence import StoredEvent  # noqa: E402
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore  # noqa: E402
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore  # noqa: E402

from shared.db import Database  # noqa: E402
from shared.eventlog import (  # noqa: E402
    GENESIS_HASH,
    NO_STREAM,
    DomainEvent,
    EventLog,
    Metadata,
    canonical_json,
    chain_hash,
    event_json,
    verify_chain,
)
from shared.migrate import upgrade  # noqa: E402

STREAM_LENGTH = 10
BATCH = 10
STREAM_TYPE = "bench.Organisation"
CONTENDERS = ("project", "raw", "peer")
CHUNK_EVENTS = 250  # events each contender writes before handing over to the next
INSERT_COLUMNS = ("position, stream_id, stream_type, version, event_type, schema_version, data, "
                  "metadata, actor, tenant, recorded_at, prev_hash, hash")


class OrganisationRegistered(DomainEvent):
    """Shaped like the registry's registration event: about 480 bytes of JSON."""

    event_type = "bench.OrganisationRegistered"
    schema_version = 1

    organisation_id: str
    name: str
    legal_name: str
    kind: str
    legal_form: str
    country: str
    city: str
    postal_code: str
    street: str
    website: str
    vat_number: str
    roles: list[str]
    competencies: list[str]
    description: str


# --------------------------------------------------------------------------------------------
# Workload


@dataclass
class Append:
    """One transaction's worth: a stream, the version it must be at, its events and rows."""

    stream_id: str
    expected_version: int
    events: list[OrganisationRegistered]
    rows: list[tuple[Any, ...]]        # the raw contender's rows, hash chain precomputed


_CITIES = [("BE", "Wavre", "1300"), ("FR", "Paris", "75013"), ("NL", "Leiden", "2333"),
           ("DE", "Heidelberg", "69120"), ("RO", "Cluj-Napoca", "400000"), ("ES", "Barcelona", "08028")]
_WORDS = ["Bio", "Med", "Gen", "Thera", "Nova", "Cell", "Immuno", "Diagnostics", "Pharma", "Omics"]


def _event(rng: random.Random, stream_id: str, serial: int) -> OrganisationRegistered:
    country, city, postal = rng.choice(_CITIES)
    name = f"{rng.choice(_WORDS)}{rng.choice(_WORDS).lower()} {serial}"
    return OrganisationRegistered(
        organisation_id=stream_id,
        name=name,
        legal_name=f"{name} SA",
        kind=rng.choice(["company", "research_organisation", "hospital", "investor"]),
        legal_form="SA",
        country=country,
        city=city,
        postal_code=postal,
        street=f"Rue de l'Innovation {rng.randint(1, 300)}",
        website=f"https://www.{name.split()[0].lower()}{serial}.example",
        vat_number=f"{country}0{rng.randint(100000000, 999999999)}",
        roles=rng.sample(["member", "partner", "provider", "investor", "user"], 2),
        competencies=rng.sample(["diagnostics", "medical_devices", "biotech", "digital_health",
                                 "regulatory", "clinical_trials", "manufacturing"], 3),
        description="Point-of-care assays for oncology; seeks clinical partners.",
    )


METADATA = Metadata(actor="user:8f14e45f-ceea-467f-a0e6-0f3c6b5b7b1d", tenant="biowin", service="registry",
                    request_id="req-3c59dc04", correlation_id="req-3c59dc04")


def workload(events: int, mode: str, seed: int) -> list[Append]:
    """`events` events in streams of 10: one append per event (single) or per stream (batch)."""
    rng = random.Random(seed)
    meta = METADATA.as_dict()
    meta_text = canonical_json(meta)
    recorded_at = "2026-11-23T14:35:12.000000Z"
    appends: list[Append] = []
    position, prev = 0, GENESIS_HASH
    for first in range(0, events, STREAM_LENGTH):
        stream_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        count = min(STREAM_LENGTH, events - first)
        stream_events = [_event(rng, stream_id, first + i) for i in range(count)]
        rows = []
        for version, event in enumerate(stream_events, start=1):
            position += 1
            data_text = event_json(event).decode()
            digest = chain_hash(prev, position, stream_id, STREAM_TYPE, version, event.event_type,
                                event.schema_version, data_text, meta_text, recorded_at)
            rows.append((position, stream_id, STREAM_TYPE, version, event.event_type, event.schema_version,
                         data_text, meta_text, meta["actor"], meta["tenant"], recorded_at, prev, digest))
            prev = digest
        if mode == "single":
            for i in range(count):
                appends.append(Append(stream_id, i, [stream_events[i]], [rows[i]]))
        else:
            appends.append(Append(stream_id, NO_STREAM, stream_events, rows))
    return appends


def _stored_events(item: Append) -> list[StoredEvent]:
    """The peer's input: the same events as its users hand them over, serialised (by pydantic,
    the quickest way for these events) and numbered."""
    return [StoredEvent(item.stream_id, item.expected_version + offset, "bench:OrganisationRegistered",
                        event.model_dump_json().encode())
            for offset, event in enumerate(item.events, start=1)]


# --------------------------------------------------------------------------------------------
# Contenders. Each opens a fresh store and gives a `write(append)` plus a `check()` of what it
# wrote; the three stores are open together so that their writes can be interleaved.


@dataclass
class Session:
    write: Callable[[Append], None]
    check: Callable[[], bool]


class Backend:
    name: str

    def project(self, total: int) -> AbstractContextManager[Session]: ...

    def raw(self, total: int) -> AbstractContextManager[Session]: ...

    def peer(self, total: int) -> AbstractContextManager[Session]: ...

    def close(self) -> None: ...


@contextmanager
def _project_session(db: Database, total: int) -> Iterator[Session]:
    log = EventLog(db.dialect)
    try:
        with db.engine.connect() as conn:
            if db.dialect == "sqlite":
                _check_sqlite(conn.connection.driver_connection)
            else:
                _check_postgres(conn.connection.driver_connection)

            def write(item: Append) -> None:
                with db.write_transaction(conn):  # as Database.writing() does, on a held connection
                    log.append(conn, item.stream_id, STREAM_TYPE, item.expected_version, item.events, METADATA)

            def check() -> bool:
                with conn.begin():
                    report = verify_chain(conn)
                return report.ok and report.count == total

            yield Session(write, check)
    finally:
        db.dispose()


def _check_sqlite(conn: sqlite3.Connection) -> None:
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    assert (str(mode).lower(), sync) == ("wal", 2), f"SQLite durability differs: {mode}, synchronous={sync}"


def _check_postgres(conn: psycopg.Connection) -> None:
    for setting in ("fsync", "synchronous_commit"):
        row = conn.execute(f"SHOW {setting}").fetchone()
        value = row[setting] if isinstance(row, dict) else row[0]
        assert value == "on", f"PostgreSQL {setting} is {value}"
    if not conn.autocommit:
        conn.rollback()


class SQLiteBackend(Backend):
    name = "sqlite"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="clusterhub-bench-"))
        self.template = self.dir / "template.db"
        db = Database(f"sqlite:///{self.template}")
        upgrade(db.engine)
        db.dispose()
        self.serial = 0

    @contextmanager
    def _file(self, template: bool) -> Iterator[Path]:
        """A fresh file: a copy of the migrated template (our schema, no rows) or nothing."""
        self.serial += 1
        path = self.dir / f"store-{self.serial}.db"
        if template:
            shutil.copyfile(self.template, path)
        try:
            yield path
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

    @contextmanager
    def project(self, total: int) -> Iterator[Session]:
        with self._file(template=True) as path, _project_session(Database(f"sqlite:///{path}"), total) as session:
            yield session

    @contextmanager
    def raw(self, total: int) -> Iterator[Session]:
        with self._file(template=True) as path:
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                _check_sqlite(conn)
                insert = f"INSERT INTO events ({INSERT_COLUMNS}) VALUES ({', '.join('?' * 13)})"
                execute = conn.execute

                def write(item: Append) -> None:
                    execute("BEGIN")
                    if len(item.rows) == 1:
                        execute(insert, item.rows[0])
                    else:
                        conn.executemany(insert, item.rows)
                    execute("COMMIT")

                yield Session(write, lambda: execute("SELECT count(*) FROM events").fetchone()[0] == total)
            finally:
                conn.close()

    @contextmanager
    def peer(self, total: int) -> Iterator[Session]:
        with self._file(template=False) as path:
            datastore = SQLiteDatastore(str(path), originator_id_type="text")
            # Its pool sets WAL but leaves `synchronous` to the build default: make FULL explicit.
            create = datastore.pool._create_connection

            def create_full() -> Any:
                connection = create()
                connection._sqlite_conn.execute("PRAGMA synchronous=FULL")
                _check_sqlite(connection._sqlite_conn)
                return connection

            datastore.pool._create_connection = create_full  # type: ignore[method-assign]
            try:
                recorder = SQLiteApplicationRecorder(datastore)
                recorder.create_table()
                yield Session(lambda item: recorder.insert_events(_stored_events(item)),
                              lambda: recorder.max_notification_id() == total)
            finally:
                datastore.close()

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresBackend(Backend):
    name = "postgresql"

    def __init__(self) -> None:
        from tests.support.postgres import PostgresServer

        self.server = PostgresServer.start()
        self.serial = 0
        try:
            with self._admin() as conn:
                conn.execute("CREATE DATABASE bench_template")
            db = Database(self.server.url("bench_template"))
            upgrade(db.engine)
            db.dispose()
        except BaseException:
            self.server.stop()
            raise

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(self._dsn("postgres"), autocommit=True)

    def _dsn(self, database: str) -> str:
        return self.server.url(database).replace("+psycopg", "")

    @contextmanager
    def _database(self, template: str | None) -> Iterator[str]:
        self.serial += 1
        name = f"bench_{self.serial}"
        with self._admin() as conn:
            conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        try:
            yield name
        finally:
            with self._admin() as conn:
                conn.execute(f"DROP DATABASE {name} WITH (FORCE)")

    @contextmanager
    def project(self, total: int) -> Iterator[Session]:
        with self._database("bench_template") as name, \
                _project_session(Database(self.server.url(name)), total) as session:
            yield session

    @contextmanager
    def raw(self, total: int) -> Iterator[Session]:
        with self._database("bench_template") as name, psycopg.connect(self._dsn(name)) as conn:
            _check_postgres(conn)
            insert = f"INSERT INTO events ({INSERT_COLUMNS}) VALUES ({', '.join(['%s'] * 13)})"
            cur = conn.cursor()

            def write(item: Append) -> None:
                with conn.transaction():
                    if len(item.rows) == 1:
                        cur.execute(insert, item.rows[0])
                    else:
                        cur.executemany(insert, item.rows)

            def check() -> bool:
                count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
                conn.rollback()
                return count == total

            yield Session(write, check)

    @contextmanager
    def peer(self, total: int) -> Iterator[Session]:
        with self._database(None) as name:
            datastore = PostgresDatastore(name, "127.0.0.1", self.server.port, self.server.superuser, "",
                                          originator_id_type="text")
            try:
                recorder = PostgresApplicationRecorder(datastore)
                recorder.create_table()
                with datastore.get_connection() as conn:
                    _check_postgres(conn)
                yield Session(lambda item: recorder.insert_events(_stored_events(item)),
                              lambda: recorder.max_notification_id() == total)
            finally:
                datastore.close()

    def close(self) -> None:
        self.server.stop()


# --------------------------------------------------------------------------------------------
# Rounds and report


def _percentile(values: list[int], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index] / 1e6


@dataclass
class Round:
    """What one round measured: per contender, each chunk's seconds and each append's latency."""

    chunks: dict[str, list[float]]
    latencies: dict[str, list[int]]
    cpu_ns: dict[str, int]  # this process's CPU time (all threads), server work not included
    chain_ok: bool


def run_round(backend: Backend, appends: list[Append], first: int) -> Round:
    """Fresh stores; the contenders take turns chunk by chunk (each going first in turn), so that
    a burst of load from elsewhere on the machine lands on all three alike."""
    total = sum(len(item.rows) for item in appends)
    order = CONTENDERS[first:] + CONTENDERS[:first]
    chunks: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    latencies: dict[str, list[int]] = {name: [] for name in CONTENDERS}
    cpu_ns = dict.fromkeys(CONTENDERS, 0)
    clock, cpu = time.perf_counter_ns, time.process_time_ns
    with ExitStack() as stack:
        sessions = {name: stack.enter_context(getattr(backend, name)(total)) for name in order}
        step = max(1, CHUNK_EVENTS // len(appends[0].rows))
        for start in range(0, len(appends), step):
            chunk = appends[start:start + step]
            for name in order:
                write, spent = sessions[name].write, latencies[name]
                began, began_cpu = clock(), cpu()
                for item in chunk:
                    t0 = clock()
                    write(item)
                    spent.append(clock() - t0)
                chunks[name].append((clock() - began) / 1e9)
                cpu_ns[name] += cpu() - began_cpu
            order = order[1:] + order[:1]
        checks = {name: session.check() for name, session in sessions.items()}
    assert checks["raw"] and checks["peer"], f"a contender did not store every event: {checks}"
    return Round(chunks, latencies, cpu_ns, checks["project"])


def measure(backend: Backend, mode: str, events: int, rounds: int) -> dict[str, Any]:
    """Throughput is the median over chunks of events per second; a ratio is the median over
    chunks of the two contenders' times for that same chunk, written back to back. Medians of
    paired chunks shrug off the bursts of load that totals would average in."""
    per_round = max(STREAM_LENGTH, events // rounds // STREAM_LENGTH * STREAM_LENGTH)
    chunk_events = max(1, CHUNK_EVENTS // (1 if mode == "single" else BATCH)) * (1 if mode == "single" else BATCH)
    measured = [run_round(backend, workload(per_round, mode, seed=index), index % 3) for index in range(rounds)]
    seconds = {name: [t for r in measured for t in r.chunks[name]] for name in CONTENDERS}
    latencies = {name: [ns for r in measured for ns in r.latencies[name]] for name in CONTENDERS}
    sizes = [min(chunk_events, per_round - i * chunk_events) for r in measured for i in range(len(r.chunks["project"]))]

    def rate(name: str) -> float:
        return statistics.median(size / t for size, t in zip(sizes, seconds[name]))

    def ratio(other: str) -> float:
        return statistics.median(o / p for o, p in zip(seconds[other], seconds["project"]))

    report: dict[str, Any] = {
        "backend": backend.name,
        "mode": mode,
        "events": per_round * rounds,
        "events_per_append": 1 if mode == "single" else BATCH,
        "rounds": rounds,
        "project_per_s": round(rate("project"), 1),
        "raw_per_s": round(rate("raw"), 1),
        "peer_per_s": round(rate("peer"), 1),
        "ratio_raw": round(ratio("raw"), 3),
        "ratio_peer": round(ratio("peer"), 3),
    }
    for name, prefix in (("project", ""), ("raw", "raw_"), ("peer", "peer_")):
        report[f"{prefix}p50_append_ms"] = round(_percentile(latencies[name], 0.50), 3)
        report[f"{prefix}p99_append_ms"] = round(_percentile(latencies[name], 0.99), 3)
    for name in CONTENDERS:
        # Client CPU per event: unlike throughput, hardly moved by other load on the machine.
        report[f"{name}_cpu_us_per_event"] = round(sum(r.cpu_ns[name] for r in measured) / 1e3 / (per_round * rounds), 1)
    for name in CONTENDERS:  # whole rounds, for a look at how steady the machine was
        report[f"{name}_rounds_per_s"] = [round(per_round / sum(r.chunks[name])) for r in measured]
    report["chain_ok"] = all(r.chain_ok for r in measured)
    return report


def _table(reports: list[dict[str, Any]]) -> str:
    head = (f"{'backend':<11}{'mode':<8}{'events':>8}{'project/s':>11}{'raw/s':>10}{'peer/s':>10}"
            f"{'vs raw':>8}{'vs peer':>9}{'p50 ms':>8}{'p99 ms':>8}{'raw p50':>9}{'peer p50':>9}  chain")
    lines = [head, "-" * len(head)]
    for r in reports:
        lines.append(
            f"{r['backend']:<11}{r['mode']:<8}{r['events']:>8}{r['project_per_s']:>11.0f}{r['raw_per_s']:>10.0f}"
            f"{r['peer_per_s']:>10.0f}{r['ratio_raw']:>8.2f}{r['ratio_peer']:>9.2f}{r['p50_append_ms']:>8.3f}"
            f"{r['p99_append_ms']:>8.3f}{r['raw_p50_append_ms']:>9.3f}{r['peer_p50_append_ms']:>9.3f}  "
            f"{'ok' if r['chain_ok'] else 'BROKEN'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per contender, mode and backend")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--mode", choices=["single", "batch", "both"], default="both")
    parser.add_argument("--json", action="store_true", help="one JSON object per line per backend and mode")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    modes = ["single", "batch"] if args.mode == "both" else [args.mode]
    reports = []
    for name in backends:
        backend: Backend = SQLiteBackend() if name == "sqlite" else PostgresBackend()
        try:
            for mode in modes:
                report = measure(backend, mode, args.events, args.rounds)
                reports.append(report)
                if args.json:
                    print(json.dumps(report), flush=True)
        finally:
            backend.close()
    if not args.json:
        print(_table(reports))
    return 0 if all(r["chain_ok"] for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
