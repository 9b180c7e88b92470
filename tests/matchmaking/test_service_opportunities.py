"""Opportunities: the EEN lifecycle (review, expiry at the deadline or after 12 months, renewal,
closing), duplicate flags, validation, If-Match; and the read models equal a rebuild from the log."""
from __future__ import annotations

from datetime import date
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, select

from services.matchmaking import domain
from services.matchmaking.projections import PROJECTORS, TABLES
from shared.eventlog import EventLog, Metadata
from shared.subscriptions import rebuild_projections
from tests.conftest import Store, auth_headers
from tests.matchmaking.service_support import (  # noqa: F401  (fixtures)
    TODAY,
    Matchmaking,
    Registry,
    created,
    fields_named,
    matchmaking,
    ok,
    problem,
    registry,
)

REVIEWER = auth_headers(subject="manager@biowin.be")


def offer(owner: dict[str, str], **fields: Any) -> dict[str, Any]:
    return {"organisation_id": owner["id"], "contact_id": owner["contact_id"], "kind": "technology_offer",
            "title": "Compact cyclotron for hospital PET tracer production",
            "summary": "A cyclotron small enough for a hospital basement, producing F-18 and Ga-68 tracers.",
            "keywords": ["cyclotron", "PET tracers"], "competencies": ["pet", "radiopharmaceuticals"],
            "partner_kinds": ["hospital"], "target_countries": ["FR", "NL"], **fields}


async def test_lifecycle_from_draft_to_expiry_renewal_and_closing(store: Store, registry: Registry,
                                                                  matchmaking: Matchmaking) -> None:
    mm = matchmaking.http
    iba = await registry.organisation("Ion Beam Applications SA", country="BE")
    draft = await created(mm, "/v1/opportunities", offer(iba, deadline="2026-03-31"))
    path = f"/v1/opportunities/{draft['id']}"
    assert (draft["status"], draft["version"], draft["duplicate_of"]) == ("draft", 1, [])

    # Changes need the ETag of the last read.
    problem(await mm.patch(path, json={"title": "Compact cyclotron for PET"}), 428)
    stale = problem(await mm.patch(path, json={"title": "Compact cyclotron"}, headers={"If-Match": '"7"'}), 412)
    assert stale["current_version"] == 1
    assert fields_named(await mm.patch(path, json={"deadline": "2025-12-01"}, headers={"If-Match": '"1"'})) == [
        "body.deadline"]
    changed = await ok(mm.patch(path, json={"description": "Self-shielded, 18 MeV."}, headers={"If-Match": '"1"'}))
    assert (changed["description"], changed["version"]) == ("Self-shielded, 18 MeV.", 2)

    # Review: submitted, then published by a named cluster manager, open through its deadline.
    problem(await mm.post(f"{path}/publish", headers=REVIEWER), 409)
    await ok(mm.post(f"{path}/submit"))
    problem(await mm.patch(path, json={"title": "Other"}, headers={"If-Match": '"3"'}), 409)
    problem(await mm.post(f"{path}/publish", headers={"Authorization": ""}), 401)
    rejected = await ok(mm.post(f"{path}/reject", json={"reason": "Say which tracers"}, headers=REVIEWER))
    assert (rejected["status"], rejected["rejection_reason"]) == ("draft", "Say which tracers")
    await ok(mm.post(f"{path}/submit"))
    published = await ok(mm.post(f"{path}/publish", headers=REVIEWER))
    assert published["status"] == "published"
    assert (published["published_on"], published["published_by"], published["expires_on"]) == (
        str(TODAY), "manager@biowin.be", "2026-03-31")

    # The day after its deadline it reads as expired, before any sweep has run.
    matchmaking.travel_to(date(2026, 4, 1))
    expired = await ok(mm.get(path))
    assert (expired["status"], expired["expiry_reason"], expired["expired_on"]) == ("expired", "deadline",
                                                                                    "2026-04-01")
    listed = await ok(mm.get("/v1/opportunities", params={"status": "expired"}))
    assert [o["id"] for o in listed["data"]] == [draft["id"]]
    assert (await ok(mm.get("/v1/opportunities", params={"status": "published"})))["data"] == []
    guerbet = await registry.organisation("Guerbet", country="FR")
    answer = {"organisation_id": guerbet["id"], "contact_id": guerbet["contact_id"], "message": "Interested"}
    assert problem(await mm.post(f"{path}/interests", json=answer), 409)["status"] == 409

    # The sweep records the expiry as an event, once.
    log = EventLog(store.db.dialect, projectors=PROJECTORS)
    sweep = Metadata(actor="matchmaking.expiry")
    with store.db.writing() as conn:
        assert domain.expire_due(conn, log, sweep, on=date(2026, 4, 1)) == [draft["id"]]
        assert domain.expire_due(conn, log, sweep, on=date(2026, 4, 2)) == []
    history = await ok(mm.get(f"{path}/history"))
    assert [e["event_type"].split(".")[1] for e in history["data"]] == [
        "OpportunityDrafted", "OpportunityUpdated", "OpportunitySubmitted", "OpportunityRejected",
        "OpportunitySubmitted", "OpportunityPublished", "OpportunityExpired"]
    assert history["data"][-1]["data"] == {"opportunity_id": draft["id"], "on": "2026-04-01", "reason": "deadline"}

    # Renewed: open again, 12 months without a deadline; then closed for good.
    assert fields_named(await mm.post(f"{path}/renew", json={"deadline": "2026-03-01"})) == ["body.deadline"]
    renewed = await ok(mm.post(f"{path}/renew", json={}, headers={"If-Match": '"7"'}))
    assert (renewed["status"], renewed["expires_on"], renewed["deadline"]) == ("published", "2027-04-01", None)
    closed = await ok(mm.post(f"{path}/close", json={"reason": "Partner found"}))
    assert (closed["status"], closed["close_reason"], closed["closed_on"]) == ("closed", "Partner found",
                                                                              "2026-04-01")
    problem(await mm.post(f"{path}/renew"), 409)

    # Without a deadline, a publication lasts 12 months; a command on it records the expiry first.
    matchmaking.travel_to(TODAY)
    second = await created(mm, "/v1/opportunities", offer(iba, kind="business_request",
                                                          title="Distributor sought in the Benelux",
                                                          summary="Looking for a distributor of dosimetry kits."))
    second_path = f"/v1/opportunities/{second['id']}"
    await ok(mm.post(f"{second_path}/submit"))
    assert (await ok(mm.post(f"{second_path}/publish", headers=REVIEWER)))["expires_on"] == "2027-01-12"
    matchmaking.travel_to(date(2027, 1, 13))
    assert (await ok(mm.get(second_path)))["expiry_reason"] == "twelve_months"
    await ok(mm.post(f"{second_path}/close"))
    kinds = [e["event_type"] for e in (await ok(mm.get(f"{second_path}/history")))["data"]][-2:]
    assert kinds == ["matchmaking.OpportunityExpired", "matchmaking.OpportunityClosed"]

    # The read models are what a replay of the log gives.
    live = snapshot(store)
    rebuild_projections(store.db, EventLog(store.db.dialect), PROJECTORS)
    assert snapshot(store) == live


def snapshot(store: Store) -> dict[str, list[dict[str, Any]]]:
    with store.db.reading() as conn:
        return {table.name: sorted((dict(row) for row in conn.execute(select(table)).mappings()), key=repr)
                for table in TABLES}


async def test_duplicates_are_flagged_not_refused(registry: Registry, matchmaking: Matchmaking) -> None:
    mm = matchmaking.http
    iba = await registry.organisation("Ion Beam Applications SA")
    first = await created(mm, "/v1/opportunities", offer(iba))
    # Same organisation, same kind, the title respelled: flagged, and still drafted.
    again = await created(mm, "/v1/opportunities", offer(
        iba, title="Compact cyclotron for hospital PET-tracer production!",
        summary="Cyclotron for hospital basements producing F-18 tracers."))
    assert [flag["opportunity_id"] for flag in again["duplicate_of"]] == [first["id"]]
    assert again["duplicate_of"][0]["similarity"] >= 0.75
    # Another kind, another organisation, or different words: no flag.
    other_kind = await created(mm, "/v1/opportunities", offer(iba, kind="technology_request"))
    assert other_kind["duplicate_of"] == []
    ulb = await registry.organisation("Université libre de Bruxelles", kind="university")
    assert (await created(mm, "/v1/opportunities", offer(ulb)))["duplicate_of"] == []
    unrelated = await created(mm, "/v1/opportunities", offer(
        iba, title="Proton therapy service engineers wanted", summary="Field engineers for proton therapy rooms."))
    assert unrelated["duplicate_of"] == []
    # A closed opportunity is not open any more: nothing to duplicate.
    await ok(mm.post(f"/v1/opportunities/{first['id']}/close"))
    await ok(mm.post(f"/v1/opportunities/{again['id']}/close"))
    assert (await created(mm, "/v1/opportunities", offer(iba)))["duplicate_of"] == []


async def test_bad_input_names_the_field(registry: Registry, matchmaking: Matchmaking) -> None:
    mm = matchmaking.http
    iba = await registry.organisation("Ion Beam Applications SA")
    guerbet = await registry.organisation("Guerbet", country="FR")
    unknown = "00000000-0000-4000-8000-000000000000"
    assert fields_named(await mm.post("/v1/opportunities", json=offer({"id": unknown, "contact_id": unknown}))) == [
        "body.organisation_id"]
    assert fields_named(await mm.post("/v1/opportunities", json=offer(
        {"id": iba["id"], "contact_id": guerbet["contact_id"]}))) == ["body.contact_id"]
    assert fields_named(await mm.post("/v1/opportunities", json=offer(iba, kind="rd_partner_search"))) == [
        "body.call_id"]
    assert fields_named(await mm.post("/v1/opportunities", json=offer(iba, kind="rd_partner_search",
                                                                      call_id="HORIZON-NONE"))) == ["body.call_id"]
    assert fields_named(await mm.post("/v1/opportunities", json=offer(iba, deadline="2025-01-01"))) == [
        "body.deadline"]
    assert set(fields_named(await mm.post("/v1/opportunities", json=offer(
        iba, kind="joint_venture", competencies=["telepathy"], target_countries=["XX"])))) == {
        "body.kind", "body.competencies.0", "body.target_countries.0"}
    assert fields_named(await mm.get("/v1/opportunities", params={"status": "lost"})) == ["query.status"]
    assert problem(await mm.get(f"/v1/opportunities/{unknown}"), 404)["detail"] == f"opportunity {unknown} not found"
    problem(await mm.post(f"/v1/opportunities/{unknown}/submit"), 404)
    problem(await mm.get(f"/v1/interests/{unknown}"), 404)


def test_migration_creates_exactly_the_matchmaking_tables(store: Store) -> None:
    ours = MetaData()
    for table in TABLES:
        table.to_metadata(ours)
    names = {table.name for table in TABLES}
    with store.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, ours)
                       if not (d[0] == "remove_table" and d[1].name not in names)
                       and not (d[0] == "remove_index" and d[1].table.name not in names)]
    assert differences == []
