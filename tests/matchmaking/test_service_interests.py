"""Expressions of interest (accepting exchanges contacts and ties the two organisations in the
index) and the funding-call catalogue."""
from __future__ import annotations

from services.matchmaking.recommender import TieKind
from tests.conftest import Store, auth_headers
from tests.matchmaking.service_support import (  # noqa: F401  (fixtures)
    Matchmaking,
    Registry,
    created,
    fields_named,
    matchmaking,
    ok,
    problem,
    registry,
)

REVIEWER = auth_headers(subject="manager@medicen.fr")
CALL = {"call_id": "HORIZON-HLTH-2026-TOOL-03", "programme": "horizon_europe",
        "title": "Imaging biomarkers for early dementia diagnosis", "deadline": "2026-09-15",
        "min_partners": 3, "min_countries": 3, "required_kinds": ["hospital", "sme"],
        "eligible_countries": ["BE", "FR", "NL", "DE"], "keywords": ["dementia", "PET"], "competencies": ["pet"]}


async def test_interest_accepted_exchanges_contacts_declined_does_not(store: Store, registry: Registry,
                                                                      matchmaking: Matchmaking) -> None:
    mm = matchmaking.http
    guerbet = await registry.organisation("Guerbet", country="FR", contact="Claire Martin")
    uliege = await registry.organisation("Université de Liège", kind="university")
    ibt = await registry.organisation("IBt Bebig", kind="company", country="DE")
    await created(mm, "/v1/calls", CALL)
    search = await created(mm, "/v1/opportunities", {
        "organisation_id": guerbet["id"], "contact_id": guerbet["contact_id"], "kind": "rd_partner_search",
        "call_id": CALL["call_id"], "title": "Hospital partner for a PET dementia study",
        "summary": "We bring the tracer; we seek a memory clinic.", "partner_kinds": ["hospital"]})
    path = f"/v1/opportunities/{search['id']}"
    answer = {"organisation_id": uliege["id"], "contact_id": uliege["contact_id"],
              "message": "Our cyclotron centre works with the memory clinic of the CHU.",
              "contribution": "Tracer production and a PET-MRI"}
    problem(await mm.post(f"{path}/interests", json=answer), 409)  # not published yet
    await ok(mm.post(f"{path}/submit"))
    await ok(mm.post(f"{path}/publish", headers=REVIEWER))

    interest = await created(mm, f"{path}/interests", answer)
    assert (interest["status"], interest["contacts"], interest["contribution"]) == (
        "pending", None, "Tracer production and a PET-MRI")
    problem(await mm.post(f"{path}/interests", json=answer), 409)  # one open interest per organisation
    own = {"organisation_id": guerbet["id"], "contact_id": guerbet["contact_id"], "message": "Me too"}
    assert fields_named(await mm.post(f"{path}/interests", json=own)) == ["body.organisation_id"]
    wrong_contact = {**answer, "organisation_id": ibt["id"]}
    assert fields_named(await mm.post(f"{path}/interests", json=wrong_contact)) == ["body.contact_id"]

    problem(await mm.post(f"/v1/interests/{interest['id']}/accept", headers={"If-Match": '"5"'}), 412)
    accepted = await ok(mm.post(f"/v1/interests/{interest['id']}/accept", headers={"If-Match": '"1"'}))
    assert accepted["status"] == "accepted"
    assert accepted["contacts"] == {
        "owner": {"organisation_id": guerbet["id"], "contact_id": guerbet["contact_id"]},
        "interested": {"organisation_id": uliege["id"], "contact_id": uliege["contact_id"]}}
    problem(await mm.post(f"/v1/interests/{interest['id']}/decline"), 409)

    other = await created(mm, f"{path}/interests", {"organisation_id": ibt["id"], "contact_id": ibt["contact_id"],
                                                    "message": "Brachytherapy seeds?"})
    declined = await ok(mm.post(f"/v1/interests/{other['id']}/decline", json={"reason": "Not our topic"}))
    assert (declined["status"], declined["decline_reason"], declined["contacts"]) == ("declined", "Not our topic",
                                                                                      None)
    listed = await ok(mm.get(f"{path}/interests"))
    assert [(i["organisation_id"], i["status"]) for i in listed["data"]] == [
        (uliege["id"], "accepted"), (ibt["id"], "declined")]
    assert (await ok(mm.get(path)))["interest_count"] == 2

    # The accepted interest is a tie in the recommender's index; the declined one is not.
    matchmaking.feed.catch_up()
    assert matchmaking.feed.ties_of(guerbet["id"]) == {uliege["id"]: {TieKind.accepted_interest}}
    partners = await ok(mm.get("/v1/recommendations/partners", params={"organisation": guerbet["id"]}))
    first = partners["data"][0]
    assert first["organisation_id"] == uliege["id"]
    assert "accepted an expression of interest with the lead" in first["reasons"]


async def test_funding_call_catalogue(registry: Registry, matchmaking: Matchmaking) -> None:
    mm = matchmaking.http
    call = await created(mm, "/v1/calls", CALL)
    assert (call["id"], call["required_kinds"], call["version"]) == (CALL["call_id"], ["hospital", "sme"], 1)
    problem(await mm.post("/v1/calls", json=CALL), 409)
    await created(mm, "/v1/calls", {**CALL, "call_id": "EU4H-2026-PJ-02", "programme": "eu4health",
                                    "title": "Cancer screening with AI", "deadline": "2026-04-30",
                                    "opens_on": "2026-02-01", "required_kinds": [], "eligible_countries": []})

    assert fields_named(await mm.post("/v1/calls", json={**CALL, "call_id": "X-1", "min_countries": 4})) == [
        "body.min_countries"]
    assert fields_named(await mm.post("/v1/calls", json={**CALL, "call_id": "X-2", "opens_on": "2026-10-01"})) == [
        "body.opens_on"]
    assert set(fields_named(await mm.post("/v1/calls", json={**CALL, "call_id": "bad id", "programme": "erasmus",
                                                              "required_kinds": ["wizard"]}))) == {
        "body.call_id", "body.programme", "body.required_kinds.0"}

    path = f"/v1/calls/{CALL['call_id']}"
    problem(await mm.patch(path, json={"min_partners": 4}), 428)
    assert fields_named(await mm.patch(path, json={"min_partners": 2}, headers={"If-Match": '"1"'})) == [
        "body.min_countries"]
    changed = await ok(mm.patch(path, json={"min_partners": 4, "deadline": "2026-10-01"},
                                headers={"If-Match": '"1"'}))
    assert (changed["min_partners"], changed["deadline"], changed["version"]) == (4, "2026-10-01", 2)
    assert (await mm.get(path)).headers["ETag"] == '"2"'

    by_deadline = await ok(mm.get("/v1/calls"))
    assert [c["id"] for c in by_deadline["data"]] == ["EU4H-2026-PJ-02", CALL["call_id"]]
    open_in_january = await ok(mm.get("/v1/calls", params={"open_on": "2026-01-20"}))
    assert [c["id"] for c in open_in_january["data"]] == [CALL["call_id"]]
    first_page = await ok(mm.get("/v1/calls", params={"limit": 1}))
    second_page = await ok(mm.get("/v1/calls", params={"limit": 1, "cursor": first_page["next_cursor"]}))
    assert [c["id"] for c in second_page["data"]] == [CALL["call_id"]]
    assert (await ok(mm.get("/v1/calls", params={"programme": "eu4health"})))["data"][0]["id"] == "EU4H-2026-PJ-02"
    problem(await mm.get("/v1/calls/HORIZON-NOPE"), 404)
