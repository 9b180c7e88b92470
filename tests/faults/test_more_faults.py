"""More fault tests on real processes (tests/faults/test_faults.py has the registry's):

- the events service killed with SIGKILL under a load of registrations and meeting requests, and
  the matchmaking service under a load of opportunity drafts and expressions of interest: every
  write that got a 2xx is in the log and in its read model after the kill, every logged write
  has its read-model row (no partial write), the chain verifies (`clusterhub audit verify`),
  and the restarted service serves reads and writes;
- the disk filling up under a SQLite store: writes are refused with 503 problem+json (never a
  500), reads go on, nothing is half-written, and once there is room again the same process
  writes again without a restart.

The disk is "full" through RLIMIT_FSIZE on the service's process (SIGXFSZ ignored): a write that
would grow a file past the limit fails with EFBIG, which SQLite reports as an I/O error, as it
reports ENOSPC on a full disk as SQLITE_FULL; both roll the transaction back. No tmpfs to mount,
no root needed, and `prlimit` lifts it on the running process.
"""
from __future__ import annotations

import asyncio
import itertools
import resource
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app as command_line
from services.registry.app import create_app as create_registry_app
from services.registry.settings import RegistrySettings
from shared.db import Database
from shared.eventlog import verify_chain
from tests.conftest import Store, _postgres_store, _sqlite_store, auth_headers
from tests.matchmaking.service_support import serving
from tests.replicas.processes import ServiceProcess

ADMIN = auth_headers()
REVIEWER = auth_headers(subject="reviewer@biowin.be")  # an admin too, but not the drafter
_names = itertools.count()


@pytest.fixture(params=["sqlite", "postgres"])
def fault_store(request, tmp_path) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    made = (_sqlite_store(tmp_path) if request.param == "sqlite"
            else _postgres_store(request.getfixturevalue("postgres_server")))
    made.db.dispose()  # the services and the checks below open their own connections
    yield made


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    try:
        yield started
    finally:
        for process in started:
            process.kill()


def start(processes: list[ServiceProcess], *services: ServiceProcess) -> None:
    processes.extend(services)
    for service in services:
        service.wait_healthy()


def post(client: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


@contextmanager
def registry_in_thread(database_url: str) -> Iterator[str]:
    """The registry in uvicorn in a thread of the test process (to set the scene, and for events to ask)."""
    db = Database(database_url, pool_size=4)
    try:
        with serving(create_registry_app(RegistrySettings(access_log=False, rate_limit_per_minute=0), db=db)) as base:
            yield base
    finally:
        db.dispose()


def audit_verify(database_url: str) -> str:
    """`clusterhub audit verify`, the command an operator runs; fails unless the chain verifies."""
    result = CliRunner().invoke(command_line, ["--database-url", database_url, "audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "ok: " in result.output, result.output
    return result.output.strip().splitlines()[-1]


def logged_and_projected(admin_url: str, event_type: str, prefix: str, table: str,
                         where: str = "") -> tuple[set[str], set[str]]:
    """Ids of `event_type`'s streams in the log, and the ids in its read-model `table`."""
    db = Database(admin_url)
    try:
        with db.reading() as conn:
            logged = {row[0].removeprefix(prefix) for row in conn.execute(
                text("SELECT stream_id FROM events WHERE event_type = :type"), {"type": event_type})}
            projected = {row[0] for row in conn.execute(text(f"SELECT id FROM {table} {where}"))}
            report = verify_chain(conn)
    finally:
        db.dispose()
    assert report.ok, report
    return logged, projected


Load = Callable[[httpx.AsyncClient], Awaitable[httpx.Response | None]]


async def load_until_killed(base: str, loads: dict[str, tuple[Load, int]], accepted: dict[str, list[str]],
                            kill: Callable[[], None], *, after: int) -> None:
    """Run each load with its number of clients; SIGKILL once `after` writes were acknowledged."""
    stop = asyncio.Event()

    async def client(name: str, load: Load) -> None:
        async with httpx.AsyncClient(base_url=base, headers=ADMIN, timeout=10) as http:
            while not stop.is_set():
                try:
                    response = await load(http)
                except httpx.TransportError:
                    return  # the process is gone: what was in flight was never acknowledged
                if response is None:
                    return  # this load has run out of work
                if 200 <= response.status_code < 300:
                    accepted[name].append(response.json()["id"])
                else:
                    assert response.status_code < 500, response.text

    async def killer() -> None:
        while sum(map(len, accepted.values())) < after:
            await asyncio.sleep(0.01)
        kill()
        stop.set()

    clients = [asyncio.create_task(client(name, load)) for name, (load, count) in loads.items() for _ in range(count)]
    await asyncio.wait_for(killer(), timeout=30)
    await asyncio.wait_for(asyncio.gather(*clients), timeout=30)


# --------------------------------------------------------------------------------------------
# Events: registrations and meeting requests


def test_events_sigkill_under_registrations_and_meeting_requests_loses_no_acknowledged_write(
        fault_store: Store, tmp_path: Path, processes: list[ServiceProcess]) -> None:
    with registry_in_thread(fault_store.db.url) as registry:
        _events_sigkill(fault_store, tmp_path, processes, registry)


def _events_sigkill(fault_store: Store, tmp_path: Path, processes: list[ServiceProcess], registry: str) -> None:
    url = fault_store.db.url
    env = {"CLUSTERHUB_REGISTRY_URL": registry}
    events = ServiceProcess("events", url, tmp_path, env=env)
    start(processes, events)

    with httpx.Client(base_url=registry, headers=ADMIN, timeout=10) as reg, \
            httpx.Client(base_url=events.base, headers=ADMIN, timeout=10) as evs:
        cluster = post(reg, "/v1/clusters", {"name": "BioWin", "acronym": "BioWin", "country": "BE",
                                             "legal_form": "non_profit_association"})["id"]
        organisation = post(reg, "/v1/organisations", {"legal_name": "Ion Beam Applications", "kind": "company",
                                                       "country": "BE"})["id"]
        contacts = [post(reg, f"/v1/organisations/{organisation}/contacts", {"name": f"Person {n}"})["id"]
                    for n in range(50)]
        event = post(evs, "/v1/events", {
            "title": "RegMed Europe 2026", "kind": "brokerage", "organiser_cluster_ids": [cluster],
            "time_zone": "Europe/Brussels", "starts_at": "2026-03-10T08:00:00+01:00",
            "ends_at": "2026-03-11T18:00:00+01:00", "venue": "Liège Expo", "b2b": {"meeting_cap": 200}})["id"]
        path = f"/v1/events/{event}"
        post(evs, f"{path}/b2b-sessions", {"title": "Morning meetings", "starts_at": "2026-03-10T09:00:00+01:00",
                                           "slot_minutes": 30, "slot_count": 8, "tables": 10})
        post(evs, f"{path}/publish", {})
        people = [post(evs, f"{path}/registrations", {"organisation_id": organisation, "contact_id": contact})["id"]
                  for contact in contacts[:8]]
    pairs = iter([(a, b) for a in people for b in people if a != b])
    unregistered = iter(contacts[8:])

    async def register(http: httpx.AsyncClient) -> httpx.Response | None:
        contact = next(unregistered, None)
        return None if contact is None else await http.post(
            f"{path}/registrations", json={"organisation_id": organisation, "contact_id": contact})

    async def request_meeting(http: httpx.AsyncClient) -> httpx.Response | None:
        pair = next(pairs, None)
        return None if pair is None else await http.post(
            f"{path}/meeting-requests", json={"requester_id": pair[0], "receiver_id": pair[1], "message": "Hello"})

    accepted: dict[str, list[str]] = {"registrations": [], "meetings": []}
    asyncio.run(load_until_killed(events.base, {"registrations": (register, 3), "meetings": (request_meeting, 2)},
                                  accepted, lambda: events.process.send_signal(signal.SIGKILL), after=25))
    events.kill()
    print({name: len(ids) for name, ids in accepted.items()}, "acknowledged before SIGKILL")
    assert accepted["registrations"] and accepted["meetings"], "both loads must have run before the kill"

    def check() -> None:
        logged, projected = logged_and_projected(fault_store.admin_url, "events.ParticipantRegistered",
                                                 "participant-", "events_participants")
        assert set(people) | set(accepted["registrations"]) <= logged
        assert logged == projected  # no registration without its read-model row, nor the reverse
        logged, projected = logged_and_projected(fault_store.admin_url, "events.MeetingRequested", "meeting-",
                                                 "events_meetings")
        assert set(accepted["meetings"]) <= logged
        assert logged == projected

    check()
    again = ServiceProcess("events", url, tmp_path, env=env)
    start(processes, again)
    with httpx.Client(base_url=again.base, headers=ADMIN, timeout=10) as evs:
        assert evs.get("/readyz").status_code == 200
        for participant in accepted["registrations"][:3]:
            assert evs.get(f"{path}/participants/{participant}").status_code == 200
        late = next(unregistered)
        assert evs.post(f"{path}/registrations", json={"organisation_id": organisation,
                                                       "contact_id": late}).status_code == 201
    again.kill()
    check()
    print(audit_verify(fault_store.admin_url))


# --------------------------------------------------------------------------------------------
# Matchmaking: opportunity drafts and expressions of interest


def test_matchmaking_sigkill_under_opportunities_and_interests_loses_no_acknowledged_write(
        fault_store: Store, tmp_path: Path, processes: list[ServiceProcess]) -> None:
    url = fault_store.db.url
    matchmaking = ServiceProcess("matchmaking", url, tmp_path)
    with registry_in_thread(url) as registry, httpx.Client(base_url=registry, headers=ADMIN, timeout=10) as reg:
        organisations = []
        for n in range(40):
            organisation = post(reg, "/v1/organisations", {"legal_name": f"Medtech {n}", "kind": "company",
                                                           "country": "BE"})["id"]
            contact = post(reg, f"/v1/organisations/{organisation}/contacts", {"name": f"Contact {n}"})["id"]
            organisations.append((organisation, contact))
    start(processes, matchmaking)
    owner, owner_contact = organisations[0]
    with httpx.Client(base_url=matchmaking.base, headers=ADMIN, timeout=10) as mm:
        offer = post(mm, "/v1/opportunities", {
            "organisation_id": owner, "contact_id": owner_contact, "kind": "technology_offer",
            "title": "Proton therapy beam-line control software", "summary": "Licensing our control stack."})["id"]
        post(mm, f"/v1/opportunities/{offer}/submit", {})
        post(mm, f"/v1/opportunities/{offer}/publish", {}, REVIEWER)
    interested = iter(organisations[1:])
    drafts = itertools.count()
    topics = ["wearable ECG patch", "cell therapy bioreactor", "MRI contrast agent", "dental implant coating",
              "sepsis biomarker assay", "surgical robot haptics", "radiopharmaceutical synthesis module"]

    async def draft(http: httpx.AsyncClient) -> httpx.Response:
        n = next(drafts)
        organisation, contact = organisations[n % len(organisations)]
        return await http.post("/v1/opportunities", json={
            "organisation_id": organisation, "contact_id": contact, "kind": "business_request",
            "title": f"Distributor wanted for a {topics[n % len(topics)]} ({n})",
            "summary": f"Seeking a partner in the DACH region, request {n}."})

    async def express_interest(http: httpx.AsyncClient) -> httpx.Response | None:
        found = next(interested, None)
        return None if found is None else await http.post(f"/v1/opportunities/{offer}/interests", json={
            "organisation_id": found[0], "contact_id": found[1], "message": "We would license it."})

    accepted: dict[str, list[str]] = {"opportunities": [], "interests": []}
    asyncio.run(load_until_killed(matchmaking.base, {"opportunities": (draft, 3), "interests": (express_interest, 2)},
                                  accepted, lambda: matchmaking.process.send_signal(signal.SIGKILL), after=25))
    matchmaking.kill()
    print({name: len(ids) for name, ids in accepted.items()}, "acknowledged before SIGKILL")
    assert accepted["opportunities"] and accepted["interests"], "both loads must have run before the kill"

    def check() -> None:
        logged, projected = logged_and_projected(fault_store.admin_url, "matchmaking.OpportunityDrafted",
                                                 "opportunity-", "matchmaking_opportunities")
        assert {offer} | set(accepted["opportunities"]) <= logged
        assert logged == projected
        logged, projected = logged_and_projected(fault_store.admin_url, "matchmaking.InterestExpressed",
                                                 "interest-", "matchmaking_interests")
        assert set(accepted["interests"]) <= logged
        assert logged == projected

    check()
    again = ServiceProcess("matchmaking", url, tmp_path)
    start(processes, again)
    with httpx.Client(base_url=again.base, headers=ADMIN, timeout=10) as mm:
        assert mm.get("/readyz").status_code == 200
        assert mm.get(f"/v1/opportunities/{offer}").json()["interest_count"] >= len(accepted["interests"])
        for opportunity in accepted["opportunities"][:3]:
            assert mm.get(f"/v1/opportunities/{opportunity}").status_code == 200
        organisation, contact = organisations[-1]
        assert mm.post("/v1/opportunities", json={
            "organisation_id": organisation, "contact_id": contact, "kind": "technology_request",
            "title": "Looking for a low-dose CT reconstruction algorithm",
            "summary": "After the restart."}).status_code == 201
    again.kill()
    check()
    print(audit_verify(fault_store.admin_url))


# --------------------------------------------------------------------------------------------
# Disk full (SQLite)


def _file_size_limit(limit: int) -> Callable[[], None]:
    def in_child() -> None:
        # Past the limit a write fails with EFBIG instead of the process being killed by SIGXFSZ.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return in_child


def test_a_full_disk_refuses_writes_with_503_and_the_service_writes_again_when_there_is_room(
        tmp_path: Path, processes: list[ServiceProcess]) -> None:
    store = _sqlite_store(tmp_path)
    store.db.dispose()  # the last connection closed: the WAL is checkpointed and removed
    path = Path(store.admin_url.removeprefix("sqlite:///"))
    # Room for a few writes in the write-ahead log, no more (nor for the database file to grow).
    limit = path.stat().st_size + 96 * 1024
    registry = ServiceProcess("registry", store.admin_url, tmp_path, preexec_fn=_file_size_limit(limit))
    start(processes, registry)

    accepted: list[str] = []
    refused: list[httpx.Response] = []
    with httpx.Client(base_url=registry.base, headers=ADMIN, timeout=10) as client:
        for n in range(200):
            response = client.post("/v1/organisations", json={
                "legal_name": f"Disk Full Test {n} {next(_names)}", "kind": "company", "country": "BE"})
            if response.status_code == 201:
                accepted.append(response.json()["id"])
            else:
                refused.append(response)
                if len(refused) == 5:
                    break
        print(f"{len(accepted)} writes before the disk was full")
        assert accepted and len(refused) == 5, "the limit was never reached"
        for response in refused:
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["retry-after"] == "5"
            assert response.json()["title"] == "Service unavailable"
        # Reads still work, and show exactly what was acknowledged.
        listed = client.get("/v1/organisations", params={"limit": 200})
        assert listed.status_code == 200
        assert {o["id"] for o in listed.json()["data"]} == set(accepted)
        assert client.get("/readyz").status_code == 200

        # Room again (the operator freed space): the same process writes, no restart.
        resource.prlimit(registry.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        after = client.post("/v1/organisations", json={"legal_name": "After The Disk Was Freed", "kind": "company",
                                                       "country": "BE"})
        assert after.status_code == 201, after.text
        accepted.append(after.json()["id"])
    registry.stop()

    logged, projected = logged_and_projected(store.admin_url, "registry.OrganisationRegistered", "organisation-",
                                             "registry_organisations")
    assert logged == projected == set(accepted)  # the refused writes left nothing behind
    db = Database(store.admin_url)
    try:
        with db.reading() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
    finally:
        db.dispose()
    print(audit_verify(store.admin_url))
