"""Read models: rebuilt from the log they come out the same; the migration creates exactly them;
concurrent commands on one event are serialised by its row lock."""
from __future__ import annotations

import asyncio
from typing import Any

import httpx
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, select

from services.events.projections import PROJECTORS, TABLES
from shared.eventlog import EventLog
from shared.subscriptions import rebuild_projections
from tests.conftest import Store
from tests.events.conftest import BIOWIN, Registry, brokerage, created, event_body, ok

SESSION = {"starts_at": "2026-03-10T09:00:00Z", "slot_minutes": 20, "slot_count": 4, "tables": 2}


def snapshot(store: Store) -> dict[str, list[dict[str, Any]]]:
    with store.db.reading() as conn:
        return {table.name: sorted((dict(row) for row in conn.execute(select(table)).mappings()), key=repr)
                for table in TABLES}


async def test_rebuilt_read_models_equal_the_live_ones(store: Store, client: httpx.AsyncClient,
                                                       registry: Registry) -> None:
    scene = await brokerage(client, registry, {"Anne": "IBA", "Bruno": "Guerbet", "Chloe": "ULiège"},
                            b2b={}, session=SESSION)
    path, p = scene.path, scene.people
    await ok(client.put(f"{path}/participants/{p['Anne']}/profile", json={"offer": "Cyclotrons", "keywords": ["pet"]},
                        headers={"If-Match": '"1"'}))
    await ok(client.put(f"{path}/participants/{p['Bruno']}/booth", json={"booth": "B12"}))
    meeting = await created(client, f"{path}/meeting-requests", {"requester_id": p["Anne"], "receiver_id": p["Bruno"]})
    await ok(client.post(f"{path}/meeting-requests/{meeting['id']}/accept"))
    await ok(client.post(f"{path}/meetings/{meeting['id']}/lock"))
    await ok(client.post(f"{path}/meetings/{meeting['id']}/outcome", json={"participant_id": p["Bruno"],
                                                                           "outcome": "partnership_agreed"}))
    other = await created(client, f"{path}/meeting-requests", {"requester_id": p["Chloe"], "receiver_id": p["Anne"]})
    await ok(client.post(f"{path}/meetings/{other['id']}/cancel", json={"by": p["Chloe"]}))
    await ok(client.post(f"{path}/registrations/{p['Chloe']}/cancel"))
    await ok(client.post(f"{path}/agenda/publish"))
    live = snapshot(store)
    assert {(m["status"], m["booth"], m["locked"]) for m in live["events_meetings"]} == {
        ("accepted", "B12", True), ("cancelled", None, False)}

    rebuild_projections(store.db, EventLog(store.db.dialect), PROJECTORS)

    assert snapshot(store) == live


async def test_concurrent_registrations_for_the_last_seat(store: Store, client: httpx.AsyncClient,
                                                          registry: Registry) -> None:
    biowin = await registry.cluster(BIOWIN)
    event = await created(client, "/v1/events", event_body([biowin], kind="workshop", capacity=1))
    await ok(client.post(f"/v1/events/{event['id']}/publish"))
    bodies = []
    for n in range(4):
        organisation = await registry.organisation(f"Company {n}")
        bodies.append({"organisation_id": organisation,
                       "contact_id": await registry.contact(organisation, f"Person {n}")})

    responses = await asyncio.gather(*(client.post(f"/v1/events/{event['id']}/registrations", json=body)
                                       for body in bodies))

    assert [r.status_code for r in responses] == [201] * 4
    assert sorted(r.json()["status"] for r in responses) == ["registered"] + ["waitlisted"] * 3
    assert (await ok(client.get(f"/v1/events/{event['id']}")))["registered"] == 1


def test_migration_creates_exactly_the_events_tables(store: Store) -> None:
    expected = MetaData()
    for table in TABLES:
        table.to_metadata(expected)
    names = {table.name for table in TABLES}
    with store.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, expected)
                       if not (d[0] == "remove_table" and d[1].name not in names)
                       and not (d[0] == "remove_index" and d[1].table.name not in names)]
    assert differences == []
