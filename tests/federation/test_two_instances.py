"""Two clusterhub instances at once: "BioWin" and "Medicen", each its own SQLite store, signing keys,
registry and events services, as real uvicorn processes on 127.0.0.1.

Medicen subscribes to BioWin with a webhook (as partner_cluster, with a token BioWin's operator
minted), BioWin concludes a sharing agreement and publishes a joint event, the signed delivery
reaches Medicen's inbox, Medicen's members see the event at home and register through the
federation (Medicen forwards each registration to BioWin's events API with its partner
credential). Both sides end with the same registrations, and nothing private of BioWin's crossed:
not in the feed, not in the deliveries, not anywhere in Medicen's store file.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.matchmaking import events as mm
from services.registry.federation import signing
from shared.auth import Tokens
from shared.db import Database
from shared.eventlog import EventLog, Metadata
from shared.migrate import upgrade
from tests.conftest import _postgres_store

ROOT = Path(__file__).resolve().parents[2]
BIOWIN_SOURCE, MEDICEN_SOURCE = "https://hub.biowin.test", "https://hub.medicen.test"
# What BioWin keeps to itself: none of it may reach Medicen in any form.
PRIVATE_ORG = "Stealth Radiopharma Prospect"
PRIVATE_EMAIL = "anne.private@iba.example"
PRIVATE_PHONE = "+32 470 11 22 33"
PRIVATE_OPPORTUNITY = "Confidential merger with a proton therapy rival"
PRIVATE_EVENT = "BioWin members-only board dinner"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Instance:
    """One deployment: a store, its keys, and the registry and events services over it."""

    name: str
    source: str
    directory: Path
    url: str = ""  # a migrated PostgreSQL database; by default a new SQLite file in `directory`
    keys: str = ""
    registry: str = ""
    events: str = ""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.url:
            self.url = f"sqlite:///{self.directory / 'clusterhub.db'}"
            db = Database(self.url)
            upgrade(db.engine)
            db.dispose()
        self.keys = f"{self.name}-1:{self.name}-signing-key-{uuid.uuid4().hex}"
        self.tokens = Tokens({self.keys.split(":")[0]: self.keys.split(":", 1)[1]}, issuer="clusterhub", ttl=3600)

    def start(self) -> None:
        registry_port, events_port = _free_port(), _free_port()
        self.registry, self.events = f"http://127.0.0.1:{registry_port}", f"http://127.0.0.1:{events_port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CLUSTERHUB_DATABASE_URL": self.url,
               "CLUSTERHUB_AUTH_SIGNING_KEYS": self.keys, "CLUSTERHUB_RATE_LIMIT_PER_MINUTE": "0",
               "CLUSTERHUB_REGISTRY_URL": self.registry, "CLUSTERHUB_FEDERATION_SOURCE": self.source,
               "CLUSTERHUB_FEDERATION_FEED_POLL": "0.1", "CLUSTERHUB_WEBHOOK_POLL": "0.1",
               "CLUSTERHUB_WEBHOOK_BACKOFF": "0.2", "CLUSTERHUB_ACCESS_LOG": "false"}
        for factory, port in (("services.registry.app:create_app", registry_port),
                              ("services.events.app:create_app", events_port)):
            log = (self.directory / f"{factory.split('.')[1]}.log").open("wb")
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1", "--port", str(port),
                 "--log-level", "warning"], cwd=self.directory, env=env, stdout=log, stderr=subprocess.STDOUT))
        for base in (self.registry, self.events):
            _until(lambda base=base: _healthy(base), f"{self.name} {base} healthy", timeout=60)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def stored_bytes(self) -> bytes:
        """Everything the store holds: the SQLite files, or every row of every PostgreSQL table as text."""
        if self.url.startswith("sqlite"):
            return b"".join(path.read_bytes() for path in self.directory.glob("clusterhub.db*"))
        db = Database(self.url)
        try:
            with db.reading() as conn:
                tables = conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").scalars()
                return "\n".join(str(row[0]) for table in list(tables)
                                  for row in conn.exec_driver_sql(f'SELECT t::text FROM "{table}" t')).encode()
        finally:
            db.dispose()

    def token(self, role: str, *, cluster: str | None = None, organisation: str | None = None,
              subject: str | None = None) -> str:
        return self.tokens.issue(subject=subject or f"{role}@{self.name}", roles=[role], cluster=cluster,
                                 organisation=organisation)

    def client(self, service: str, token: str) -> httpx.Client:
        base = self.registry if service == "registry" else self.events
        return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=15)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _until(check: Callable[[], Any], what: str, *, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.method, str(response.request.url), response.text)
    return response.json() if response.content else None


@pytest.fixture(params=["sqlite", "postgres"])
def instances(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Instance, Instance]]:
    """Both instances on SQLite files, or both on PostgreSQL databases (as the services' role)."""
    urls = ["", ""]
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        for index in range(2):
            store = _postgres_store(server)
            store.db.dispose()
            urls[index] = store.db.url
    biowin = Instance("biowin", BIOWIN_SOURCE, tmp_path / "biowin", urls[0])
    medicen = Instance("medicen", MEDICEN_SOURCE, tmp_path / "medicen", urls[1])
    try:
        biowin.start()
        medicen.start()
        yield biowin, medicen
    finally:
        biowin.stop()
        medicen.stop()


def _cluster(client: httpx.Client, name: str, country: str) -> str:
    return ok(client.post("/v1/clusters", json={"name": name, "acronym": name, "country": country,
                                                 "legal_form": "non_profit_association"}), 201)["id"]


def _member(client: httpx.Client, cluster_id: str, legal_name: str, country: str, *, active: bool = True) -> str:
    organisation = ok(client.post("/v1/organisations", json={"legal_name": legal_name, "kind": "company",
                                                             "country": country}), 201)["id"]
    membership = ok(client.post("/v1/memberships", json={"organisation_id": organisation, "cluster_id": cluster_id,
                                                         "fee_category": "sme", "yearly_fee": "500"}), 201)
    if active:
        ok(client.post(f"/v1/memberships/{membership['id']}/activate", json={}))
    return organisation


def _contact(client: httpx.Client, organisation_id: str, name: str, email: str, phone: str | None = None) -> str:
    body = {"name": name, "email": email, **({"phone": phone} if phone else {})}
    return ok(client.post(f"/v1/organisations/{organisation_id}/contacts", json=body), 201)["id"]


def test_biowin_and_medicen_share_a_joint_event_and_its_registrations(instances: tuple[Instance, Instance]) -> None:
    biowin, medicen = instances

    # -- BioWin's world: a public member, a private prospect, a private contact, private plans.
    b_admin = biowin.client("registry", biowin.token("platform_admin"))
    b_cluster = _cluster(b_admin, "BioWin", "BE")
    iba = _member(b_admin, b_cluster, "Ion Beam Applications", "BE")
    _member(b_admin, b_cluster, PRIVATE_ORG, "BE", active=False)
    anne = _contact(b_admin, iba, "Anne Private", PRIVATE_EMAIL, PRIVATE_PHONE)
    # A members-only cooperation opportunity, as matchmaking appends it to the shared log.
    db = Database(biowin.url)
    with db.writing() as conn:
        opportunity = str(uuid.uuid4())
        EventLog(db.dialect).append(conn, f"opportunity-{opportunity}", "matchmaking.Opportunity", 0, [
            mm.OpportunityDrafted(opportunity_id=opportunity, organisation_id=iba, contact_id=anne, cluster_id=b_cluster,
                                  kind="business_offer", title=PRIVATE_OPPORTUNITY, summary="Members only.",
                                  visibility="cluster_members"),
            mm.OpportunitySubmitted(opportunity_id=opportunity),
            mm.OpportunityPublished(opportunity_id=opportunity, reviewer="manager@biowin", on=date(2026, 11, 1),
                                    expires_on=date(2027, 11, 1))], Metadata(actor="matchmaking@biowin"))
    db.dispose()

    # -- Medicen's world: its cluster, a member organisation and its people.
    m_admin = medicen.client("registry", medicen.token("platform_admin"))
    m_cluster = _cluster(m_admin, "Medicen", "FR")
    guerbet = _member(m_admin, m_cluster, "Guerbet", "FR")
    claire = _contact(m_admin, guerbet, "Claire Dupont", "claire@guerbet.example")
    marc = _contact(m_admin, guerbet, "Marc Leroy", "marc@guerbet.example")

    # -- BioWin's operator mints Medicen's system a partner_cluster token; Medicen subscribes.
    partner_token = biowin.token("partner_cluster", cluster=m_cluster, subject="medicen-system")
    b_partner = biowin.client("registry", partner_token)
    hook = ok(b_partner.post("/v1/webhooks", json={"url": f"{medicen.registry}/v1/federation/inbox"}), 201)
    m_manager = medicen.client("registry", medicen.token("cluster_manager", cluster=m_cluster))
    ok(m_manager.post("/v1/federation/peers", json={
        "local_cluster_id": m_cluster, "remote_cluster_id": b_cluster, "source": BIOWIN_SOURCE,
        "secret": hook["secret"], "events_url": biowin.events, "token": partner_token}), 201)

    # -- BioWin schedules a joint event and a private one, concludes the agreement, publishes both.
    b_manager_token = biowin.token("cluster_manager", cluster=b_cluster)
    b_events = biowin.client("events", b_manager_token)
    event_body = {"kind": "brokerage", "organiser_cluster_ids": [b_cluster], "members_only": True,
                  "time_zone": "Europe/Brussels", "starts_at": "2027-03-10T09:00:00+01:00",
                  "ends_at": "2027-03-10T17:00:00+01:00", "capacity": 50, "venue": "Wavre",
                  "online_url": "https://meet.biowin.test/private-room"}
    joint = ok(b_events.post("/v1/events", json={**event_body, "title": "BioWin x Medicen imaging brokerage"}),
               201)["id"]
    private = ok(b_events.post("/v1/events", json={**event_body, "title": PRIVATE_EVENT}), 201)["id"]
    b_manager = biowin.client("registry", b_manager_token)
    agreement = ok(b_manager.post("/v1/agreements", json={
        "owner_cluster_id": b_cluster, "partner_cluster_id": m_cluster, "event_ids": [joint],
        "public_profiles": True}), 201)
    for event_id in (joint, private):
        ok(b_events.post(f"/v1/events/{event_id}/publish"))

    # -- The webhook reaches Medicen: its members see the joint event at home.
    m_member = medicen.client("registry", medicen.token("member", cluster=m_cluster, organisation=guerbet))
    shared = _until(lambda: ok(m_member.get("/v1/federation/events")), "the joint event at Medicen")
    assert [(e["event_id"], e["details"]["title"], e["remote_cluster_id"]) for e in shared] == [
        (joint, "BioWin x Medicen imaging brokerage", b_cluster)]

    # -- Registrations: Medicen's member and manager through the federation; a BioWin member at home.
    claire_at_biowin = ok(m_member.post(f"/v1/federation/events/{joint}/registrations",
                                        json={"organisation_id": guerbet, "contact_id": claire}), 201)
    marc_at_biowin = ok(m_manager.post(f"/v1/federation/events/{joint}/registrations",
                                       json={"organisation_id": guerbet, "contact_id": marc}), 201)
    again = m_member.post(f"/v1/federation/events/{joint}/registrations",
                          json={"organisation_id": guerbet, "contact_id": claire})
    assert again.status_code == 409, again.text  # BioWin's rule (one registration per person), passed on
    b_member = biowin.client("events", biowin.token("member", cluster=b_cluster, organisation=iba))
    ok(b_member.post(f"/v1/events/{joint}/registrations", json={"organisation_id": iba, "contact_id": anne}), 201)
    # Medicen's system may register only for what is shared with it.
    refused = biowin.client("events", partner_token).post(f"/v1/events/{private}/federated-registrations", json={
        "organisation_id": guerbet, "organisation_name": "Guerbet", "contact_id": claire, "name": "Claire Dupont"})
    assert refused.status_code == 404, refused.text

    # -- Both sides list the same registrations.
    at_biowin = ok(b_events.get(f"/v1/events/{joint}/registrations"))["data"]
    from_medicen = {p["id"]: (p["organisation_id"], p["contact_id"], p["status"]) for p in at_biowin
                    if p["organisation_id"] == guerbet}
    at_medicen = ok(m_manager.get(f"/v1/federation/events/{joint}/registrations"))
    assert from_medicen == {r["remote_participant_id"]: (r["organisation_id"], r["contact_id"], r["status"])
                            for r in at_medicen}
    assert set(from_medicen) == {claire_at_biowin["remote_participant_id"], marc_at_biowin["remote_participant_id"]}
    assert {p["organisation_id"] for p in at_biowin} == {guerbet, iba}
    mine = ok(m_member.get(f"/v1/federation/events/{joint}/registrations"))
    assert [r["contact_id"] for r in mine] == [claire, marc]  # the member's own organisation's

    # -- A change at BioWin follows; the deliveries all arrived, each attempt logged.
    etag = b_events.get(f"/v1/events/{joint}").headers["ETag"]
    ok(b_events.patch(f"/v1/events/{joint}", json={"venue": "Mont-Saint-Guibert"}, headers={"If-Match": etag}))
    _until(lambda: ok(m_member.get("/v1/federation/events"))[0]["details"]["venue"] == "Mont-Saint-Guibert",
           "the venue change at Medicen")
    def all_delivered() -> list[dict[str, Any]]:
        # The receiver may show an item a moment before the sender records the delivery as done.
        found = ok(b_manager.get("/v1/webhook-deliveries", params={"limit": 200}))["data"]
        return found if found and all(d["status"] == "delivered" for d in found) else []

    deliveries = _until(all_delivered, "every delivery recorded as delivered")
    assert all(d["attempt_log"][-1]["http_status"] == 200 for d in deliveries)
    feed = ok(b_partner.get("/v1/feed", params={"limit": 500}))["data"]
    assert sorted(d["cloud_event_id"] for d in deliveries) == sorted(item["id"] for item in feed)
    assert {item["type"] for item in feed} == {
        "eu.clusterhub.federation.AgreementConcluded", "eu.clusterhub.registry.OrganisationProfileShared",
        "eu.clusterhub.events.EventShared", "eu.clusterhub.events.EventUpdated"}
    assert ok(b_partner.get(f"/v1/agreements/{agreement['id']}"))["status"] == "in_force"

    # -- The inbox refuses what BioWin did not sign, or signed long ago; a repeat is taken once.
    body = json.dumps(feed[0]).encode()
    inbox = httpx.Client(base_url=medicen.registry, timeout=10)
    headers = {"Content-Type": "application/cloudevents+json"}
    forged = inbox.post("/v1/federation/inbox", content=body,
                        headers={**headers, signing.HEADER: signing.sign("whsec_guessed-0123456789abcdefghijk", body)})
    assert forged.status_code == 401
    stale = signing.sign(hook["secret"], body, timestamp=int(time.time()) - 600)
    assert inbox.post("/v1/federation/inbox", content=body, headers={**headers, signing.HEADER: stale}).status_code == 401
    tampered = json.dumps({**feed[0], "subject": "agreements/forged"}).encode()
    signed = signing.sign(hook["secret"], body)
    assert inbox.post("/v1/federation/inbox", content=tampered,
                      headers={**headers, signing.HEADER: signed}).status_code == 401
    repeat = inbox.post("/v1/federation/inbox", content=body, headers={**headers, signing.HEADER: signed})
    assert ok(repeat) == {"status": "duplicate"}

    # -- Nothing private crossed: not in the feed, not in the deliveries, not in Medicen's store.
    crossed = json.dumps(feed) + json.dumps(deliveries) + json.dumps(ok(m_member.get("/v1/federation/events")))
    medicen_bytes = medicen.stored_bytes()
    assert b"Guerbet" in medicen_bytes and b"BioWin x Medicen imaging brokerage" in medicen_bytes  # it sees rows
    for secret in (PRIVATE_ORG, PRIVATE_EMAIL, PRIVATE_PHONE, PRIVATE_OPPORTUNITY, PRIVATE_EVENT, "Anne Private",
                   "private-room", private, opportunity):
        assert secret not in crossed, secret
        assert secret.encode() not in medicen_bytes, secret
    for client in (b_admin, m_admin, b_partner, m_manager, b_events, b_manager, m_member, b_member, inbox):
        client.close()
