"""Meeting suggestions for a B2B participant, read from a real events service over HTTP (uvicorn on
127.0.0.1 in a thread, itself asking a real registry server); 503 when the events service is down.
A meeting that led to a follow-up ties the two organisations in the index."""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.events.app import create_app as create_events_app
from services.events.settings import EventsSettings
from services.matchmaking.app import create_app
from services.matchmaking.settings import MatchmakingSettings
from services.matchmaking.recommender import TieKind
from services.registry.app import create_app as create_registry_app
from shared.db import Database
from tests.conftest import Store, auth_headers
from tests.matchmaking.service_support import (  # noqa: F401  (fixtures)
    Registry,
    created,
    fields_named,
    free_socket,
    ok,
    problem,
    registry,
    serving,
)

PEOPLE = {  # first name -> (organisation, its fields, B2B profile)
    "Anne": ("IBA", {"competencies": ["pet", "radiopharmaceuticals"]},
             {"offer": "Cyclotrons for PET tracer production", "seek": "Hospitals running clinical PET studies",
              "keywords": ["PET", "cyclotron"]}),
    "Emma": ("IBA", {}, {"offer": "Proton therapy rooms", "keywords": ["proton therapy"]}),
    "Bruno": ("CHU de Liège", {"kind": "hospital", "competencies": ["pet", "clinical_trials"]},
              {"offer": "Clinical PET studies in our nuclear medicine department", "seek": "PET tracer suppliers",
               "keywords": ["pet", "clinical trials"]}),
    "Chloe": ("Pixyl", {"country": "FR", "company_size": "sme", "competencies": ["image_analysis_ai"]},
              {"offer": "AI software for brain MRI", "seek": "MRI scanner vendors", "keywords": ["mri"]}),
    "Dirk": ("Guerbet", {"country": "FR", "competencies": ["contrast_agents"]},
             {"offer": "MRI contrast agents", "seek": "Hospitals for contrast trials", "keywords": ["mri"]}),
}


@dataclass
class Brokerage:
    url: str  # the events service
    event_id: str
    people: dict[str, str]  # first name -> participant id
    organisations: dict[str, str]  # organisation name -> id

    @property
    def path(self) -> str:
        return f"/v1/events/{self.event_id}"


@pytest.fixture
def servers(store: Store) -> Iterator[tuple[str, str]]:
    """(registry URL, events URL): both services in uvicorn over the test's store, as in production."""
    registry_db, events_db = Database(store.db.url, pool_size=2), Database(store.db.url, pool_size=2)
    try:
        with serving(create_registry_app(db=registry_db)) as registry_url:
            events_app = create_events_app(EventsSettings(registry_url=registry_url, registry_backoff=0.01),
                                           db=events_db)
            with serving(events_app, lifespan="on") as events_url:
                yield registry_url, events_url
    finally:
        registry_db.dispose()
        events_db.dispose()


@pytest.fixture
async def brokerage(servers: tuple[str, str], registry: Registry) -> AsyncIterator[Brokerage]:
    """A published brokerage event with the B2B participants of PEOPLE, set up through the events API."""
    cluster = (await registry.post("/v1/clusters", {"name": "BioWin", "acronym": "BioWin", "country": "BE",
                                                    "legal_form": "non_profit_association"}))["id"]
    async with httpx.AsyncClient(base_url=servers[1], timeout=10, headers=auth_headers()) as events:
        event = await created(events, "/v1/events", {
            "title": "RegMed brokerage", "kind": "brokerage", "organiser_cluster_ids": [cluster],
            "time_zone": "Europe/Brussels", "starts_at": "2026-03-10T08:00:00+01:00",
            "ends_at": "2026-03-10T18:00:00+01:00", "b2b": {}})
        path = f"/v1/events/{event['id']}"
        await created(events, f"{path}/b2b-sessions", {"starts_at": "2026-03-10T09:00:00Z", "slot_minutes": 20,
                                                       "slot_count": 6, "tables": 4})
        await ok(events.post(f"{path}/publish"))
        organisations: dict[str, str] = {}
        people = {}
        for first_name, (organisation, fields, profile) in PEOPLE.items():
            if organisation not in organisations:
                body = {"kind": "company", **fields}
                organisations[organisation] = (await registry.organisation(organisation, **body))["id"]
            contact = await registry.post(f"/v1/organisations/{organisations[organisation]}/contacts",
                                          {"name": f"{first_name} Tester"})
            participant = await created(events, f"{path}/registrations", {
                "organisation_id": organisations[organisation], "contact_id": contact["id"]})
            await ok(events.put(f"{path}/participants/{participant['id']}/profile", json=profile,
                                headers={"If-Match": f'"{participant["version"]}"'}))
            people[first_name] = participant["id"]
        yield Brokerage(servers[1], event["id"], people, organisations)


@pytest.fixture
async def matchmaking_app(store: Store, brokerage: Brokerage) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    async with httpx.AsyncClient(base_url=brokerage.url, timeout=5) as events:
        app = create_app(MatchmakingSettings(events_backoff=0.01), db=store.db, events=events)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mm.test",
                                     headers=auth_headers()) as http:
            yield app, http


async def test_meeting_suggestions_from_the_events_service(brokerage: Brokerage,
                                                           matchmaking_app: tuple[Any, httpx.AsyncClient]) -> None:
    app, mm = matchmaking_app
    p, path = brokerage.people, brokerage.path
    async with httpx.AsyncClient(base_url=brokerage.url, timeout=10, headers=auth_headers()) as events:
        # Anne already asked Dirk; the meeting took place and they plan a follow-up.
        meeting = await created(events, f"{path}/meeting-requests", {"requester_id": p["Anne"],
                                                                     "receiver_id": p["Dirk"]})
        await ok(events.post(f"{path}/meeting-requests/{meeting['id']}/accept"))
        await ok(events.post(f"{path}/meetings/{meeting['id']}/outcome", json={
            "participant_id": p["Dirk"], "outcome": "follow_up_planned"}))
    app.state.feed.catch_up()
    orgs = brokerage.organisations
    assert app.state.feed.ties_of(orgs["IBA"]) == {orgs["Guerbet"]: {TieKind.b2b_follow_up}}

    found = await ok(mm.get(f"{path}/participants/{p['Anne']}/meeting-suggestions"))
    assert (found["event_id"], found["participant_id"]) == (brokerage.event_id, p["Anne"])
    # Not herself, not her colleague Emma, not Dirk (already meeting): Bruno first, then Chloe.
    assert [s["participant_id"] for s in found["data"]] == [p["Bruno"], p["Chloe"]]
    bruno = found["data"][0]
    assert (bruno["name"], bruno["organisation_name"], bruno["organisation_id"]) == (
        "Bruno Tester", "CHU de Liège", orgs["CHU de Liège"])
    assert bruno["reasons"][:3] == ["offers what you seek (pet, clinical, studies)",
                                    "seeks what you offer (pet, tracer)", "shared keywords: PET"]
    assert bruno["score"] > found["data"][1]["score"]

    # Dirk meets Anne already; Chloe, who seeks MRI vendors and shares his keyword, comes first.
    for_dirk = await ok(mm.get(f"{path}/participants/{p['Dirk']}/meeting-suggestions", params={"limit": 2}))
    assert [s["participant_id"] for s in for_dirk["data"]][:1] == [p["Chloe"]]
    assert p["Anne"] not in {s["participant_id"] for s in for_dirk["data"]}
    assert for_dirk["data"][0]["reasons"] == ["offers what you seek (mri)", "seeks what you offer (mri)",
                                              "shared keywords: mri", "same country as you (FR)"]

    unknown = "00000000-0000-4000-8000-000000000000"
    problem(await mm.get(f"{path}/participants/{unknown}/meeting-suggestions"), 404)
    problem(await mm.get(f"/v1/events/{unknown}/participants/{p['Anne']}/meeting-suggestions"), 404)
    assert fields_named(await mm.get(f"{path}/participants/a.b/meeting-suggestions")) == ["path.participant_id"]


async def test_503_with_retry_after_when_the_events_service_is_down(store: Store) -> None:
    sock = free_socket()  # bound, never listening: connections are refused
    port = sock.getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=1) as events:
            app = create_app(MatchmakingSettings(events_backoff=0.01, retry_after=7), db=store.db, events=events)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mm.test",
                                         headers=auth_headers()) as mm:
                response = await mm.get("/v1/events/e-1/participants/p-1/meeting-suggestions")
    finally:
        sock.close()
    body = problem(response, 503)
    assert response.headers["Retry-After"] == "7"
    assert body["detail"] == "the events service does not answer; try again later"
