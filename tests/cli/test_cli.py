"""The installed `clusterhub` command, run as a subprocess against real SQLite and PostgreSQL stores."""
from __future__ import annotations

import itertools
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cli.main import app
from cli.services import all_projectors
from shared.db import Database
from shared.eventlog import DomainEvent, EventLog, Metadata
from tests.conftest import Store

CLUSTERHUB = Path(sys.executable).with_name("clusterhub")
_fresh = itertools.count()


class NoteTaken(DomainEvent):
    event_type = "test.cli.NoteTaken"
    text: str


def clusterhub(url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    assert CLUSTERHUB.exists(), f"{CLUSTERHUB} is missing: install the package (make install)"
    return subprocess.run([str(CLUSTERHUB), "--database-url", url, *args],
                          capture_output=True, text=True, timeout=timeout)


def ok(url: str, *args: str) -> str:
    result = clusterhub(url, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def invoke(url: str, *args: str) -> str:
    """The same command in-process, for checks where a process per call would only cost time."""
    result = CliRunner().invoke(app, ["--database-url", url, *args])
    assert result.exit_code == 0, (result.stderr, result.exception)
    return result.stdout


def append_notes(db: Database, stream_id: str, texts: list[str], *, actor: str = "alice",
                 at: str = "2025-03-01T09:00:00.000000Z") -> None:
    log = EventLog(db.dialect, clock=lambda: at)
    with db.writing() as conn:
        version = log.stream_version(conn, stream_id)
        log.append(conn, stream_id, "note", version, [NoteTaken(text=t) for t in texts], Metadata(actor=actor))


def tamper(store: Store, position: int) -> None:
    """Edit a stored event behind the log's back, as an owner who can lift the append-only guard."""
    admin = store.admin()
    try:
        with admin.writing() as conn:
            if store.backend == "sqlite":
                conn.exec_driver_sql("DROP TRIGGER events_no_update")
                conn.exec_driver_sql(f"UPDATE events SET data = '{{\"text\":\"forged\"}}' WHERE position = {position}")
                conn.exec_driver_sql("CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
                                     "BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE rejected'); END")
            else:
                conn.exec_driver_sql("ALTER TABLE events DISABLE TRIGGER USER")
                conn.exec_driver_sql(f"UPDATE events SET data = '{{\"text\":\"forged\"}}' WHERE position = {position}")
                conn.exec_driver_sql("ALTER TABLE events ENABLE TRIGGER USER")
    finally:
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A database with no schema at all, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"cli_empty_{next(_fresh)}"
    with psycopg.connect(server.url().replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield server.url(name)


# --------------------------------------------------------------------------------------------
# db upgrade


def test_db_upgrade_creates_the_schema_then_is_idempotent(empty_url: str) -> None:
    assert ok(empty_url, "db", "upgrade").startswith("schema upgraded: 0001")
    assert ok(empty_url, "db", "upgrade").strip() == "schema already up to date"
    assert ok(empty_url, "audit", "verify").strip() == "ok: 0 events"


def test_commands_refuse_a_store_without_schema(empty_url: str) -> None:
    result = clusterhub(empty_url, "audit", "verify")
    assert result.returncode == 1
    assert result.stderr.startswith("error: the schema is not up to date")
    assert "clusterhub db upgrade" in result.stderr and result.stderr.count("\n") == 1


# --------------------------------------------------------------------------------------------
# audit verify


def test_audit_verify_on_an_empty_log(store: Store) -> None:
    assert ok(store.admin_url, "audit", "verify").strip() == "ok: 0 events"


def test_audit_verify_counts_an_intact_log(store: Store) -> None:
    append_notes(store.db, "note-1", ["a", "b"])
    append_notes(store.db, "note-2", ["c"])
    assert ok(store.admin_url, "audit", "verify").strip() == "ok: 3 events"
    assert json.loads(ok(store.admin_url, "audit", "verify", "--json")) == {
        "ok": True, "count": 3, "broken_at": None, "reason": None}


def test_audit_verify_names_the_first_tampered_position(store: Store) -> None:
    append_notes(store.db, "note-1", ["a", "b", "c", "d"])
    tamper(store, 2)
    result = clusterhub(store.admin_url, "audit", "verify")
    assert result.returncode == 1
    assert result.stdout.startswith("broken at position 2: content does not match its hash")
    report = json.loads(clusterhub(store.admin_url, "audit", "verify", "--json").stdout)
    assert report["ok"] is False and report["broken_at"] == 2 and report["count"] == 1


# --------------------------------------------------------------------------------------------
# audit log


def _positions(url: str, *args: str) -> list[int]:
    lines = invoke(url, "audit", "log", "--json", *args).splitlines()
    return [json.loads(line)["position"] for line in lines]


def test_audit_log_filters(store: Store) -> None:
    append_notes(store.db, "note-1", ["a", "b"], actor="alice", at="2025-01-10T08:00:00.000000Z")
    append_notes(store.db, "note-2", ["c"], actor="bob", at="2025-02-10T08:00:00.000000Z")
    append_notes(store.db, "note-1", ["d"], actor="bob", at="2025-03-10T08:00:00.000000Z")
    url = store.admin_url
    assert _positions(url) == [1, 2, 3, 4]
    assert _positions(url, "--actor", "bob") == [3, 4]
    assert _positions(url, "--stream", "note-1") == [1, 2, 4]
    assert _positions(url, "--since", "2025-02-01") == [3, 4]
    assert _positions(url, "--since", "2025-02-10T09:00:00+01:00") == [3, 4]  # 08:00 UTC, inclusive
    assert _positions(url, "--since", "2025-02-10T08:00:01Z") == [4]
    assert _positions(url, "--event-type", "test.cli.NoteTaken", "--limit", "2") == [1, 2]
    assert _positions(url, "--event-type", "registry.Nothing") == []
    assert _positions(url, "--after", "2", "--actor", "bob", "--stream", "note-1") == [4]
    first = json.loads(ok(url, "audit", "log", "--json", "--limit", "1"))  # the installed command too
    assert first["data"] == {"text": "a"} and first["metadata"] == {"actor": "alice"}
    table = ok(url, "audit", "log", "--actor", "alice")
    assert "note-1" in table and "test.cli.NoteTaken" in table and table.rstrip().endswith("2 events")


def test_audit_log_rejects_a_malformed_time(store: Store) -> None:
    result = clusterhub(store.admin_url, "audit", "log", "--since", "last tuesday")
    assert result.returncode == 2
    assert "ISO 8601" in result.stderr


# --------------------------------------------------------------------------------------------
# projections rebuild


def test_projections_rebuild_replays_the_log(store: Store) -> None:
    append_notes(store.db, "note-1", ["a", "b", "c"])
    output = ok(store.admin_url, "projections", "rebuild")
    assert output.strip().endswith("from 3 events")
    assert ok(store.admin_url, "audit", "verify").strip() == "ok: 3 events"


# --------------------------------------------------------------------------------------------
# seed, export, import


def _row_counts(store: Store) -> dict[str, int]:
    admin = store.admin()
    try:
        with admin.reading() as conn:
            return {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                    for projector in all_projectors() for table in projector.tables}
    finally:
        admin.dispose()


def test_seed_export_rebuild_and_reimport(store: Store, tmp_path: Path) -> None:
    url = store.admin_url
    assert ok(url, "seed", "demo").startswith("demo data loaded: 7 clusters, 350 organisations")
    assert invoke(url, "seed", "demo").strip() == "demo data not loaded: the store already holds 350 organisations"
    events = int(invoke(url, "audit", "verify").split()[1])
    assert events > 350

    exported = ok(url, "export", "organisations")
    assert exported.splitlines()[0].startswith("legal_name,")
    assert len(exported.splitlines()) == 351
    invoke(url, "export", "organisations", "--format", "json", "-o", str(tmp_path / "all.json"))
    assert len(json.loads((tmp_path / "all.json").read_text())) == 350

    counts = _row_counts(store)
    assert counts["registry_organisations"] == 350
    assert invoke(url, "projections", "rebuild").strip().endswith(f"from {events} events")
    assert _row_counts(store) == counts
    assert invoke(url, "export", "organisations") == exported

    (tmp_path / "all.csv").write_text(exported)
    report = json.loads(ok(url, "import", "organisations", str(tmp_path / "all.csv"), "--json"))
    assert (report["rows"], report["matched"], report["created"]) == (350, 350, 0)
    assert ok(url, "audit", "verify").strip() == f"ok: {events} events"


BAD_CSV = "legal_name,kind,country,website\nAcme Imaging SA,company,BE,https://acme.example\nBad,nokind,XX,\n"


def test_import_refuses_invalid_rows_unless_skipped(store: Store, tmp_path: Path) -> None:
    url = store.admin_url
    path = tmp_path / "members.csv"
    path.write_text(BAD_CSV)

    for extra in (["--dry-run"], []):
        refused = clusterhub(url, "import", "organisations", str(path), *extra)
        assert refused.returncode == 1
        assert "row 2: country: not an ISO 3166-1 alpha-2 country code" in refused.stdout
        assert refused.stderr.startswith("error: 1 of 2 rows are invalid") and refused.stderr.count("\n") == 1
    assert ok(url, "audit", "verify").strip() == "ok: 0 events"

    assert ok(url, "import", "organisations", str(path), "--skip-invalid").startswith(
        "import: 2 rows, 1 valid, 1 invalid; created 1, 0 already registered")
    again = json.loads(ok(url, "import", "organisations", str(path), "--skip-invalid", "--json"))
    assert (again["created"], again["matched"], again["outcomes"][0]["matched_on"]) == (0, 1, "name")
    assert "Acme Imaging SA" in ok(url, "export", "organisations")


def test_import_of_a_missing_file_is_one_line(tmp_path: Path) -> None:
    result = clusterhub(f"sqlite:///{tmp_path / 'x.db'}", "import", "organisations", str(tmp_path / "nope.csv"))
    assert result.returncode == 1
    assert result.stderr == f"error: {tmp_path / 'nope.csv'}: No such file or directory\n"


# --------------------------------------------------------------------------------------------
# failures


def test_unreachable_database_is_one_line_and_non_zero() -> None:
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/clusterhub"
    result = clusterhub(url, "audit", "verify", timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: database unavailable:")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_bad_database_url_is_one_line() -> None:
    result = clusterhub("nosuchdb://x", "audit", "verify")
    assert result.returncode == 1
    assert result.stderr.startswith("error: invalid database URL") and result.stderr.count("\n") == 1


def test_usage_errors_exit_with_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert clusterhub(url, "audit", "nosuch").returncode == 2
    assert clusterhub(url, "serve", "--service", "nosuch").returncode == 2
    assert clusterhub(url, "export", "organisations", "--format", "xml").returncode == 2
    assert clusterhub(url, "serve", "--port", "8001").returncode == 2  # --port needs one --service


# --------------------------------------------------------------------------------------------
# serve


def _wait_for_health(base: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "clusterhub serve exited while starting"
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base}/healthz did not answer within {timeout} s")


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_serve_runs_the_registry_with_demo_data_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    out, err = (tmp_path / "out.txt").open("wb"), (tmp_path / "err.txt").open("wb")
    process = subprocess.Popen([str(CLUSTERHUB), "--database-url", url, "serve", "--service", "registry",
                                "--port", str(port)], stdout=out, stderr=err)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_health(base, process)
        page = httpx.get(f"{base}/v1/organisations", timeout=10)
        assert page.status_code == 200 and len(page.json()["data"]) > 0
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        out.close()
        err.close()
    assert f"registry  {base}  docs: {base}/docs" in (tmp_path / "out.txt").read_text()
    assert "demo data loaded: 7 clusters" in (tmp_path / "err.txt").read_text()
    assert _port_is_free(port)


def test_serve_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = clusterhub(f"sqlite:///{tmp_path / 'x.db'}", "serve", "--service", "registry", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
