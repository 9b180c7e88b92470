"""Sharing agreements and the partner feed, on a real store: what is shared reaches the partner as
CloudEvents, what is not never does, and the cursor resumes with nothing skipped or repeated.

Events of the other services are appended to the log as those services append them (the feed is
a consumer of the log, whichever process wrote it).
"""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import anyio.to_thread
import orjson
import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cloudevents.core.formats.json import JSONFormat
from sqlalchemy import MetaData

from services.events import events as ev
from services.matchmaking import events as mm
from services.registry.app import create_app
from services.registry.federation import feed
from services.registry.federation.tables import TABLES
from services.registry.settings import RegistrySettings
from shared.eventlog import EventLog, Metadata
from tests.conftest import Store, auth_headers
from tests.registry.conftest import BIOWIN, IBA, MEDICEN

SOURCE = "https://hub.biowin.test"
SECRET_ORG = "Stealth Radiopharma Prospect"
SECRET_EMAIL = "anne.private@iba.example"
SECRET_OPPORTUNITY = "Confidential merger with a proton therapy rival"
OTHER_EVENT = "BioWin members-only board dinner"


class World:
    def __init__(self, http: httpx.AsyncClient, store: Store) -> None:
        self.http, self.store, self.log = http, store, EventLog(store.db.dialect)
        self.ids: dict[str, str] = {}
        self.builder = feed.subscription(store.db, SOURCE)

    async def post(self, path: str, body: Any, *, headers: dict[str, str] | None = None,
                   status: int = 201) -> dict[str, Any]:
        response = await self.http.post(path, json=body, headers=headers)
        assert response.status_code == status, response.text
        return response.json()

    def append(self, stream: str, stream_type: str, *events: Any, actor: str = "test") -> None:
        with self.store.db.writing() as conn:
            self.log.append(conn, stream, stream_type, None, list(events), Metadata(actor=actor))

    async def build(self) -> None:
        await anyio.to_thread.run_sync(self.builder.catch_up)

    def partner(self, cluster: str = "medicen") -> dict[str, str]:
        return auth_headers("partner_cluster", cluster=self.ids[cluster], subject=f"{cluster}-system")

    def manager(self, cluster: str = "biowin") -> dict[str, str]:
        return auth_headers("cluster_manager", cluster=self.ids[cluster], subject=f"manager@{cluster}")

    async def feed(self, cluster: str = "medicen", after: str | None = None, limit: int = 100) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, **({"after": after} if after else {})}
        response = await self.http.get("/v1/feed", params=params, headers=self.partner(cluster))
        assert response.status_code == 200, response.text
        return response.json()

    def event(self, title: str, *, members_only: bool = False, publish: bool = True) -> str:
        event_id = str(uuid.uuid4())
        scheduled = ev.EventScheduled(
            event_id=event_id, title=title, kind="brokerage", organiser_cluster_ids=[self.ids["biowin"]],
            members_only=members_only, time_zone="Europe/Brussels", online_url="https://meet.example/secret-room",
            starts_at=datetime(2027, 3, 10, 8, tzinfo=UTC), ends_at=datetime(2027, 3, 10, 17, tzinfo=UTC),
            sessions=[{"id": "s1", "title": "Opening", "starts_at": "2027-03-10T08:00:00Z",
                       "ends_at": "2027-03-10T09:00:00Z", "room": "A", "speakers": ["Dr Private Speaker"]}])
        events = [scheduled, ev.EventPublished(event_id=event_id)] if publish else [scheduled]
        self.append(f"event-{event_id}", "events.Event", *events)
        return event_id

    def opportunity(self, title: str, visibility: str) -> str:
        opportunity_id = str(uuid.uuid4())
        self.append(f"opportunity-{opportunity_id}", "matchmaking.Opportunity",
                    mm.OpportunityDrafted(opportunity_id=opportunity_id, organisation_id=self.ids["iba"],
                                          contact_id=self.ids["anne"], cluster_id=self.ids["biowin"],
                                          kind="technology_offer", title=title, summary="A summary.",
                                          visibility=visibility),
                    mm.OpportunitySubmitted(opportunity_id=opportunity_id),
                    mm.OpportunityPublished(opportunity_id=opportunity_id, reviewer="manager", on=date(2026, 1, 1),
                                            expires_on=date(2027, 1, 1)))
        return opportunity_id


@pytest.fixture
async def world(store: Store) -> AsyncIterator[World]:
    app = create_app(RegistrySettings(rate_limit_per_minute=0, federation_source=SOURCE), db=store.db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test",
                                 headers=auth_headers()) as http:
        made = World(http, store)
        ids = made.ids
        ids["biowin"] = (await made.post("/v1/clusters", BIOWIN))["id"]
        ids["medicen"] = (await made.post("/v1/clusters", MEDICEN))["id"]
        ids["imago"] = (await made.post("/v1/clusters", {**MEDICEN, "name": "IMAGO-MOL", "acronym": "IMAGO"}))["id"]
        ids["iba"] = (await made.post("/v1/organisations", IBA))["id"]
        ids["prospect"] = (await made.post("/v1/organisations", {**IBA, "legal_name": SECRET_ORG,
                                                                 "short_name": None}))["id"]
        for organisation, active in (("iba", True), ("prospect", False)):
            membership = await made.post("/v1/memberships", {"organisation_id": ids[organisation],
                                                             "cluster_id": ids["biowin"], "fee_category": "sme",
                                                             "yearly_fee": "500"})
            if active:
                await made.post(f"/v1/memberships/{membership['id']}/activate", {}, status=200)
        ids["anne"] = (await made.post(f"/v1/organisations/{ids['iba']}/contacts",
                                       {"name": "Anne Private", "email": SECRET_EMAIL}))["id"]
        yield made


def _text(items: list[dict[str, Any]]) -> str:
    return str(items)


async def test_agreement_shares_exactly_what_it_names(world: World) -> None:
    ids = world.ids
    joint = world.event("Joint BioWin-Medicen brokerage", members_only=True)
    other = world.event(OTHER_EVENT, members_only=True)
    shareable = world.opportunity("Cyclotron for hospital PET", "partner_clusters")
    world.opportunity(SECRET_OPPORTUNITY, "cluster_members")

    agreement = await world.post("/v1/agreements", {
        "owner_cluster_id": ids["biowin"], "partner_cluster_id": ids["medicen"], "event_ids": [joint],
        "public_profiles": True, "shareable_opportunities": True}, headers=world.manager())
    await world.build()
    page = await world.feed()
    items = page["data"]
    assert [(i["type"], i["subject"]) for i in items] == [
        ("eu.clusterhub.federation.AgreementConcluded", f"agreements/{agreement['id']}"),
        ("eu.clusterhub.events.EventShared", f"events/{joint}"),
        ("eu.clusterhub.registry.OrganisationProfileShared", f"organisations/{ids['iba']}"),
        ("eu.clusterhub.matchmaking.OpportunityShared", f"opportunities/{shareable}"),
    ]
    for item in items:
        assert JSONFormat().read(None, orjson.dumps(item)).get_id() == item["id"]  # valid CloudEvents 1.0
        assert item["specversion"] == "1.0" and item["source"] == SOURCE and item["id"] and item["time"]
    shared_event = items[1]["data"]
    assert shared_event["title"] == "Joint BioWin-Medicen brokerage" and shared_event["status"] == "published"
    assert shared_event["sessions"] == [{"id": "s1", "title": "Opening", "starts_at": "2027-03-10T08:00:00Z",
                                         "ends_at": "2027-03-10T09:00:00Z", "room": "A"}]
    assert "vat" not in items[2]["data"]
    text = _text(items)
    for secret in (SECRET_ORG, SECRET_EMAIL, SECRET_OPPORTUNITY, OTHER_EVENT, other, "Anne Private",
                   "secret-room", "Dr Private Speaker", "BE0428750985"):
        assert secret not in text

    # Another partner sees nothing of it, and neither the agreement.
    assert (await world.feed("imago"))["data"] == []
    response = await world.http.get(f"/v1/agreements/{agreement['id']}", headers=world.partner("imago"))
    assert response.status_code == 404
    response = await world.http.get(f"/v1/agreements/{agreement['id']}", headers=world.partner())
    assert response.status_code == 200 and response.json()["event_ids"] == [joint]


async def test_cursor_resumes_without_skipping_or_repeating(world: World) -> None:
    ids = world.ids
    events = [world.event(f"Joint event {n}") for n in range(3)]
    created = await world.post("/v1/agreements", {
        "owner_cluster_id": ids["biowin"], "partner_cluster_id": ids["medicen"], "event_ids": events[:2]},
        headers=world.manager())
    await world.build()
    whole = (await world.feed())["data"]
    assert len(whole) == 3  # the agreement and two events

    seen, cursor = [], None
    for _ in range(10):
        page = await world.feed(after=cursor, limit=1)
        seen += page["data"]
        assert page["next_cursor"] is not None
        if not page["data"]:
            break
        cursor = page["next_cursor"]
    assert [i["id"] for i in seen] == [i["id"] for i in whole]

    # Many unshared events, then one shared change: resuming yields exactly that change.
    for n in range(60):
        world.event(f"Unshared {n}")
    world.append(f"event-{events[0]}", "events.Event",
                 ev.EventUpdated(event_id=events[0], changes={"title": "Joint event 0, new room", "venue": "Namur"}))
    await world.build()
    page = await world.feed(after=cursor)
    assert [(i["type"], i["data"]["title"]) for i in page["data"]] == [
        ("eu.clusterhub.events.EventUpdated", "Joint event 0, new room")]
    assert (await world.feed(after=page["next_cursor"]))["data"] == []

    # Amending: the third event comes in, the first goes out; only the owner's managers amend.
    path = f"/v1/agreements/{created['id']}"
    body = {"event_ids": events[1:]}
    refused = await world.http.patch(path, json=body, headers={**world.manager("medicen"), "If-Match": '"1"'})
    assert refused.status_code == 403
    refused = await world.http.patch(path, json=body, headers={**world.partner(), "If-Match": '"1"'})
    assert refused.status_code == 403
    amended = await world.http.patch(path, json=body, headers={**world.manager(), "If-Match": '"1"'})
    assert amended.status_code == 200, amended.text
    await world.build()
    page = await world.feed(after=page["next_cursor"])
    items = [(i["type"], i["subject"]) for i in page["data"]]
    assert items[0] == ("eu.clusterhub.federation.AgreementAmended", f"agreements/{created['id']}")
    assert sorted(items[1:]) == [("eu.clusterhub.events.EventShared", f"events/{events[2]}"),
                                 ("eu.clusterhub.events.EventWithdrawn", f"events/{events[0]}")]

    # Ended: the partner is told, and later changes are not shared.
    ended = await world.http.post(f"{path}/end", json={"reason": "test"}, headers=world.manager())
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    world.append(f"event-{events[1]}", "events.Event", ev.EventUpdated(event_id=events[1], changes={"venue": "Liège"}))
    await world.build()
    page = await world.feed(after=page["next_cursor"])
    assert [i["type"] for i in page["data"]] == ["eu.clusterhub.federation.AgreementEnded"]
    again = await world.http.post(f"{path}/end", json={}, headers=world.manager())
    assert again.status_code == 409


async def test_profiles_follow_membership_and_bad_input_is_named(world: World) -> None:
    ids = world.ids
    await world.post("/v1/agreements", {"owner_cluster_id": ids["biowin"], "partner_cluster_id": ids["medicen"],
                                        "public_profiles": True}, headers=world.manager())
    await world.build()
    cursor = (await world.feed())["next_cursor"]
    # The prospect becomes an active member: its profile is shared from then on.
    memberships = await world.http.get("/v1/memberships", params={"organisation_id": ids["prospect"]})
    membership = memberships.json()["data"][0]["id"]
    await world.post(f"/v1/memberships/{membership}/activate", {}, status=200)
    await world.build()
    page = await world.feed(after=cursor)
    assert [(i["type"], i["data"]["legal_name"]) for i in page["data"]] == [
        ("eu.clusterhub.registry.OrganisationProfileShared", SECRET_ORG)]

    # A second agreement between the same clusters is a conflict; bad input is a 422 naming the field.
    body = {"owner_cluster_id": ids["biowin"], "partner_cluster_id": ids["medicen"]}
    assert (await world.http.post("/v1/agreements", json=body, headers=world.manager())).status_code == 409
    bad = await world.http.post("/v1/agreements", json={**body, "partner_cluster_id": "a b"}, headers=world.manager())
    assert bad.status_code == 422 and "partner_cluster_id" in bad.text
    bad = await world.http.post("/v1/agreements", json={**body, "partner_cluster_id": ids["biowin"]},
                                headers=world.manager())
    assert bad.status_code == 422 and "partner_cluster_id" in bad.text
    other = await world.http.post("/v1/agreements", json={**body, "partner_cluster_id": ids["imago"]},
                                  headers=world.manager("medicen"))
    assert other.status_code == 403
    bad = await world.http.get("/v1/feed", params={"after": "not-a-cursor"}, headers=world.partner())
    assert bad.status_code == 422 and "cursor" in bad.text


async def test_migration_matches_the_tables(store: Store) -> None:
    federation = MetaData()
    for table in TABLES:
        table.to_metadata(federation)
    with store.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, federation)
                       if not (d[0] == "remove_table" and not d[1].name.startswith("federation_"))
                       and not (d[0] == "remove_index" and not d[1].table.name.startswith("federation_"))]
    assert differences == []
