"""Crypto-shredding end to end: a person registered in the registry and for an event, with keyed
(idempotent) writes, then erased. Afterwards every read says "erased", every event is still there
and the chain verifies, and the raw bytes of the store hold none of their name, e-mail or phone.
Before the erasure too, no plaintext is in the store: it is sealed before it is written."""
from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from cli.main import app as cli
from shared.eventlog import verify_chain
from tests.conftest import Store, auth_headers
from tests.events.conftest import BIOWIN, Registry, created, event_body, ok

ERASED = "erased"


@dataclass
class Person:
    name: str
    email: str
    phone: str

    @classmethod
    def unique(cls) -> Person:
        tag = uuid.uuid4().hex[:10]
        digits = str(uuid.uuid4().int)[:8]
        # Non-ASCII on purpose: its UTF-8 and its JSON-escaped (\u00eb) forms are both searched for.
        return cls(f"Zo\u00eb Gdpr{tag} Lef\u00e8vre", f"zoe.{tag}@hospital-{tag}.example", f"+32 4{digits}")

    def needles(self) -> list[bytes]:
        found = []
        for value in (self.name, self.email, self.phone):
            found += [value.encode(), json.dumps(value).strip('"').encode(), json.dumps(value, ensure_ascii=False)
                      .strip('"').encode()]
        found.append(self.name.split()[1].encode())  # the unique part of the name alone
        return sorted(set(found))


@dataclass
class World:
    person: Person
    contact_id: str
    organisation_id: str
    event_id: str
    participant_id: str
    contact_key: str
    registration_key: str


async def _world(client: httpx.AsyncClient, registry: Registry) -> World:
    person = Person.unique()
    biowin = await registry.cluster(BIOWIN)
    organisation_id = await registry.organisation(f"Erasure Test Biotech {uuid.uuid4().hex[:6]}", member_of=biowin)
    body = {"name": person.name, "email": person.email, "phone": person.phone, "position": "Head of R&D"}
    contact_key = str(uuid.uuid4())
    first = await registry.http.post(f"/v1/organisations/{organisation_id}/contacts", json=body,
                                     headers={"Idempotency-Key": contact_key})
    assert first.status_code == 201, first.text
    again = await registry.http.post(f"/v1/organisations/{organisation_id}/contacts", json=body,
                                     headers={"Idempotency-Key": contact_key})
    assert again.headers.get("idempotency-replayed") == "true" and again.json() == first.json(), again.text
    contact_id = first.json()["id"]

    event = await created(client, "/v1/events", event_body([biowin]))
    await ok(client.post(f"/v1/events/{event['id']}/publish"))
    registration_key = str(uuid.uuid4())
    registration = {"organisation_id": organisation_id, "contact_id": contact_id}
    first = await client.post(f"/v1/events/{event['id']}/registrations", json=registration,
                              headers={"Idempotency-Key": registration_key})
    assert first.status_code == 201, first.text
    assert first.json()["name"] == person.name and first.json()["email"] == person.email
    again = await client.post(f"/v1/events/{event['id']}/registrations", json=registration,
                              headers={"Idempotency-Key": registration_key})
    assert again.headers.get("idempotency-replayed") == "true" and again.json() == first.json()
    consents = await registry.http.put(f"/v1/persons/{contact_id}/consents",
                                       json={"newsletter": True, "share_profile_with_partner_clusters": False})
    assert consents.status_code == 200, consents.text
    return World(person, contact_id, organisation_id, event["id"], first.json()["id"], contact_key, registration_key)


def _event_count(store: Store) -> int:
    with store.db.reading() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM events").scalar_one()


def _store_files(store: Store, request: pytest.FixtureRequest) -> list[Path]:
    """The files that hold the store: SQLite's database, -wal and -shm; every file of the
    PostgreSQL server's data directory (pg_wal included), after a CHECKPOINT by the owner."""
    if store.backend == "sqlite":
        path = Path(store.db.url.removeprefix("sqlite:///"))
        return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
    with psycopg.connect(store.admin_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    data = request.getfixturevalue("postgres_server").directory / "data"
    return [Path(root) / name for root, _dirs, names in os.walk(data) for name in names]


def _leaks(files: list[Path], person: Person) -> list[str]:
    found = []
    for path in files:
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, PermissionError):  # a temporary file PostgreSQL just removed
            continue
        found += [f"{needle!r} in {path}" for needle in person.needles() if needle in raw]
    return found


async def test_erasure_shreds_a_person_everywhere(client: httpx.AsyncClient, registry: Registry, store: Store,
                                                  request: pytest.FixtureRequest) -> None:
    world = await _world(client, registry)
    person, contact_id = world.person, world.contact_id
    contact = (await registry.http.get(f"/v1/contacts/{contact_id}")).json()
    assert (contact["name"], contact["email"], contact["phone"]) == (person.name, person.email, person.phone)
    assert contact["consents"]["newsletter"] is True and contact["erased"] is False
    events_before = _event_count(store)

    erased = await registry.http.delete(f"/v1/persons/{contact_id}")
    assert erased.status_code == 204, erased.text
    assert _event_count(store) == events_before + 1
    again = await registry.http.delete(f"/v1/persons/{contact_id}")
    assert again.status_code == 204, again.text  # idempotent: nothing new recorded
    assert _event_count(store) == events_before + 1

    # (1) Every read path says "erased".
    contact = (await registry.http.get(f"/v1/contacts/{contact_id}")).json()
    assert (contact["name"], contact["email"], contact["phone"], contact["position"]) == (ERASED,) * 4
    assert contact["erased"] is True and contact["consents"]["newsletter"] is True
    listed = (await registry.http.get(f"/v1/organisations/{world.organisation_id}/contacts")).json()["data"]
    assert [(c["name"], c["email"]) for c in listed] == [(ERASED, ERASED)]
    history = (await registry.http.get(f"/v1/contacts/{contact_id}/history")).json()["data"]
    assert history[0]["data"]["name"] == ERASED and history[0]["data"]["email"] == ERASED
    assert [e["event_type"] for e in history][-1] == "registry.PersonErased"
    audit = (await registry.http.get("/v1/audit", params={"stream": f"person-{contact_id}"})).json()["data"]
    assert audit[0]["data"]["phone"] == ERASED
    audit = (await registry.http.get("/v1/audit", params={"event_type": "events.ParticipantRegistered"})).json()
    mine = [e for e in audit["data"] if e["data"]["contact_id"] == contact_id]
    assert [(e["data"]["name"], e["data"]["email"]) for e in mine] == [(ERASED, ERASED)]
    path = f"/v1/events/{world.event_id}"
    registrations = (await client.get(f"{path}/registrations")).json()["data"]
    assert [(r["name"], r["email"]) for r in registrations] == [(ERASED, ERASED)]
    participant = (await client.get(f"{path}/participants/{world.participant_id}")).json()
    assert (participant["name"], participant["email"]) == (ERASED, ERASED)
    participant_history = (await client.get(f"{path}/participants/{world.participant_id}/history")).json()["data"]
    assert participant_history[0]["data"]["name"] == ERASED
    export = (await registry.http.get(f"/v1/persons/{contact_id}/export")).json()
    assert export["erasure"]["erased"] is True and export["contact"]["name"] == ERASED
    assert export["event_participations"][0]["participant_id"] == world.participant_id
    assert export["event_participations"][0]["history"][0]["data"]["email"] == ERASED
    assert person.name not in json.dumps(export, ensure_ascii=False)
    # Stored responses of the keyed writes replay, with the person erased in them too.
    replay = await registry.http.post(f"/v1/organisations/{world.organisation_id}/contacts",
                                      json={"name": person.name, "email": person.email, "phone": person.phone,
                                            "position": "Head of R&D"},
                                      headers={"Idempotency-Key": world.contact_key})
    assert replay.headers.get("idempotency-replayed") == "true"
    assert (replay.status_code, replay.json()["name"], replay.json()["email"]) == (201, ERASED, ERASED)
    replay = await client.post(f"{path}/registrations", headers={"Idempotency-Key": world.registration_key},
                               json={"organisation_id": world.organisation_id, "contact_id": contact_id})
    assert replay.headers.get("idempotency-replayed") == "true"
    assert (replay.status_code, replay.json()["name"]) == (201, ERASED)
    # Nothing personal is recorded about them again.
    refused = await registry.http.patch(f"/v1/contacts/{contact_id}", json={"name": "Zoe Again"},
                                        headers={"If-Match": f'"{contact["version"]}"'})
    assert refused.status_code == 409 and refused.json()["type"].endswith("person-erased"), refused.text

    # (2) Every event stays, and the chain verifies (through the command line too).
    with store.db.reading() as conn:
        report = verify_chain(conn)
    assert report.ok and report.count == events_before + 1
    result = CliRunner().invoke(cli, ["--database-url", store.admin_url, "audit", "verify"])
    assert result.exit_code == 0 and result.output.startswith("ok:"), result.output

    # (3) The raw bytes of the store hold none of it.
    files = _store_files(store, request)
    assert files
    assert _leaks(files, person) == []


async def test_plaintext_never_reaches_the_store(client: httpx.AsyncClient, registry: Registry, store: Store,
                                                 request: pytest.FixtureRequest) -> None:
    """Sealing happens before the log and the tables: no erasure needed for the bytes to be clean."""
    world = await _world(client, registry)
    with store.db.reading() as conn:
        data = "\n".join(row[0] for row in conn.exec_driver_sql("SELECT data FROM events"))
    assert world.contact_id in data and "pii:v1:" in data
    for needle in world.person.needles():
        assert needle.decode() not in data
    assert _leaks(_store_files(store, request), world.person) == []


async def test_erasure_roles_and_unknown_people(client: httpx.AsyncClient, registry: Registry, store: Store) -> None:
    world = await _world(client, registry)
    member = auth_headers("member", cluster=str(uuid.uuid4()), organisation=world.organisation_id)
    refused = await registry.http.delete(f"/v1/persons/{world.contact_id}", headers=member)
    assert refused.status_code == 403, refused.text
    export = await registry.http.get(f"/v1/persons/{world.contact_id}/export", headers=member)
    assert export.status_code == 200 and export.json()["contact"]["name"] == world.person.name
    other_manager = auth_headers("cluster_manager", cluster=str(uuid.uuid4()))
    hidden = await registry.http.delete(f"/v1/persons/{world.contact_id}", headers=other_manager)
    assert hidden.status_code == 404, hidden.text
    unknown = await registry.http.delete(f"/v1/persons/{uuid.uuid4()}")
    assert unknown.status_code == 404
    bad = await registry.http.put(f"/v1/persons/{world.contact_id}/consents", json={"newsletter": "maybe"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} >= {"body.newsletter"}


async def test_erase_from_the_command_line(client: httpx.AsyncClient, registry: Registry, store: Store) -> None:
    world = await _world(client, registry)
    runner = CliRunner()

    result = runner.invoke(cli, ["--database-url", store.admin_url, "gdpr", "erase", world.contact_id])
    assert result.exit_code == 0 and "erased person" in result.output, result.output
    result = runner.invoke(cli, ["--database-url", store.admin_url, "gdpr", "erase", world.contact_id])
    assert result.exit_code == 0 and "already erased" in result.output, result.output
    result = runner.invoke(cli, ["--database-url", store.admin_url, "gdpr", "erase", str(uuid.uuid4())])
    assert result.exit_code != 0 and "not found" in str(result.exception or result.output)

    result = runner.invoke(cli, ["--database-url", store.admin_url, "gdpr", "export", world.contact_id])
    assert result.exit_code == 0, result.output
    exported: dict[str, Any] = json.loads(result.output)
    assert exported["erasure"]["erased"] is True and exported["contact"]["email"] == ERASED
    contact = (await registry.http.get(f"/v1/contacts/{world.contact_id}")).json()
    assert contact["name"] == ERASED


async def test_a_v1_contact_with_plaintext_still_reads(registry: Registry, store: Store) -> None:
    """Contacts recorded before sealing (ContactAdded v1) read as they were; new data about them
    is sealed, and erasure clears the read model (their v1 events keep their plaintext)."""
    from services.registry.projections import PROJECTORS
    from shared.eventlog import EventLog, Metadata

    @dataclass
    class StoredV1:
        event_type = "registry.ContactAdded"
        schema_version = 1
        data: dict[str, Any]

        def model_dump(self, mode: str = "python") -> dict[str, Any]:
            return self.data

    biowin = await registry.cluster(BIOWIN)
    organisation_id = await registry.organisation("Legacy Medtech", member_of=biowin)
    contact_id = str(uuid.uuid4())
    log = EventLog(store.db.dialect, projectors=PROJECTORS)
    with store.db.writing() as conn:
        log.append(conn, f"person-{contact_id}", "registry.Person", 0, [StoredV1(  # type: ignore[list-item]
            {"contact_id": contact_id, "organisation_id": organisation_id, "name": "Old Plain",
             "email": "old@legacy.example"})], Metadata(actor="legacy-import"))
    contact = (await registry.http.get(f"/v1/contacts/{contact_id}")).json()
    assert (contact["name"], contact["email"], contact["version"]) == ("Old Plain", "old@legacy.example", 1)
    updated = await registry.http.patch(f"/v1/contacts/{contact_id}", json={"phone": "+32 2 555 01 01"},
                                        headers={"If-Match": '"1"'})
    assert updated.status_code == 200 and updated.json()["phone"] == "+32 2 555 01 01", updated.text
    with store.db.reading() as conn:
        stored = log.read_stream(conn, f"person-{contact_id}")
    assert [e.schema_version for e in stored] == [1, 2] and stored[1].data["changes"]["phone"].startswith("pii:v1:")
    assert (await registry.http.delete(f"/v1/persons/{contact_id}")).status_code == 204
    contact = (await registry.http.get(f"/v1/contacts/{contact_id}")).json()
    assert (contact["name"], contact["email"], contact["phone"], contact["erased"]) == ("erased",) * 3 + (True,)
    # The v1 event itself cannot be shredded: its plaintext stays in the log (see the README).
    history = (await registry.http.get(f"/v1/contacts/{contact_id}/history")).json()["data"]
    assert (history[0]["data"]["name"], history[1]["data"]["changes"]["phone"]) == ("Old Plain", "erased")
