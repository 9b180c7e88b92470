"""Partner recommendations with reasons, the index feeder (a new organisation is recommendable within
a second; the index rebuilds from the log), and the consortium builder against a call's rules."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from services.matchmaking import partners
from services.matchmaking.feed import IndexFeed
from services.matchmaking.recommender import Query
from shared.auth import PLATFORM_ADMIN, Principal
from tests.conftest import Store, auth_headers
from tests.matchmaking.service_support import (  # noqa: F401  (fixtures)
    Matchmaking,
    Registry,
    created,
    eventually,
    fields_named,
    matchmaking,
    ok,
    problem,
    registry,
)

ADMIN = Principal("admin@test", roles=frozenset({PLATFORM_ADMIN}))
BIOWIN = {"name": "BioWin", "acronym": "BioWin", "country": "BE", "legal_form": "non_profit_association"}
ORGANISATIONS: dict[str, dict[str, Any]] = {
    "IBA": {"legal_name": "Ion Beam Applications SA", "short_name": "IBA", "company_size": "large",
            "competencies": ["proton_therapy", "radiopharmaceuticals", "pet"], "stages": ["development", "manufacturing"],
            "keywords": ["cyclotron"], "description": "Cyclotrons for PET radiopharmaceuticals and proton therapy."},
    "ULiege": {"legal_name": "Université de Liège", "short_name": "ULiège", "kind": "university",
               "competencies": ["pet", "molecular_imaging"], "stages": ["basic_research", "applied_research"],
               "description": "Cyclotron research centre: PET tracers and molecular imaging of the brain."},
    "CHU": {"legal_name": "Centre hospitalier universitaire de Liège", "short_name": "CHU de Liège",
            "kind": "hospital", "competencies": ["pet", "clinical_trials"], "stages": ["clinical_validation"],
            "description": "University hospital with a nuclear medicine department."},
    "Guerbet": {"legal_name": "Guerbet", "country": "FR", "company_size": "large",
                "competencies": ["contrast_agents", "mri"], "stages": ["manufacturing", "distribution"],
                "description": "Contrast agents for MRI and X-ray imaging."},
    "Pixyl": {"legal_name": "Pixyl", "country": "FR", "company_size": "sme",
              "competencies": ["image_analysis_ai", "mri"], "stages": ["development"],
              "keywords": ["dementia", "neuroimaging"],
              "description": "AI software quantifying brain lesions and atrophy on MRI for dementia."},
    "Radboud": {"legal_name": "Radboud universitair medisch centrum", "short_name": "Radboudumc", "country": "NL",
                "kind": "hospital", "competencies": ["pet", "mri", "clinical_trials"],
                "stages": ["clinical_validation", "clinical_use"], "keywords": ["memory clinic", "dementia"],
                "description": "Alzheimer centre and memory clinic: PET and MRI studies of early dementia."},
    "HUG": {"legal_name": "Hôpitaux universitaires de Genève", "short_name": "HUG", "country": "CH",
            "kind": "hospital", "competencies": ["pet", "clinical_trials"], "keywords": ["dementia"],
            "description": "Memory centre: amyloid PET imaging in dementia."},
    "Charite": {"legal_name": "Charité Universitätsmedizin Berlin", "short_name": "Charité", "country": "DE",
                "kind": "hospital", "competencies": ["mri", "clinical_trials"],
                "description": "Neurology and stroke imaging with MRI."},
}
CALL = {"call_id": "HORIZON-HLTH-2026-DISEASE-07", "programme": "horizon_europe",
        "title": "Early diagnosis of dementia with PET and MRI imaging biomarkers",
        "description": "Validate imaging biomarkers of early dementia in memory clinics.", "deadline": "2026-09-15",
        "min_partners": 4, "min_countries": 3, "required_kinds": ["hospital", "sme"],
        "eligible_countries": ["BE", "FR", "NL", "DE"], "keywords": ["dementia"], "competencies": ["pet", "mri"]}


@dataclass
class Scene:
    ids: dict[str, str]  # short name -> organisation id
    names: dict[str, str]  # organisation id -> short name

    def named(self, recommendations: dict[str, Any]) -> list[str]:
        return [self.names[r["organisation_id"]] for r in recommendations["data"]]


async def scene(registry: Registry, *, only: tuple[str, ...] | None = None) -> Scene:
    biowin = (await registry.post("/v1/clusters", BIOWIN))["id"]
    ids = {}
    for name, fields in ORGANISATIONS.items():
        if only is None or name in only:
            body = {"kind": "company", **fields}
            ids[name] = (await registry.organisation(body.pop("legal_name"), **body))["id"]
    for name in ("IBA", "ULiege"):
        if name in ids:
            membership = await registry.post("/v1/memberships", {"organisation_id": ids[name], "cluster_id": biowin,
                                                                 "fee_category": "other", "yearly_fee": "900"})
            await registry.post(f"/v1/memberships/{membership['id']}/activate", {})
    if "IBA" in ids and "CHU" in ids:
        await registry.connect(ids["IBA"], ids["CHU"], "supplier_of")
    return Scene(ids, {v: k for k, v in ids.items()})


async def recommend(mm: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    return await ok(mm.get("/v1/recommendations/partners", params=params))


async def test_recommendations_with_reasons_for_text_organisation_call_and_opportunity(
        registry: Registry, matchmaking: Matchmaking) -> None:
    mm = matchmaking.http
    s = await scene(registry)
    assert matchmaking.feed.catch_up() > 0  # the registry's events reach the index through the log
    assert (await ok(mm.get("/v1/index")))["organisations"] == len(ORGANISATIONS)

    by_text = await recommend(mm, text="Amyloid PET imaging in a memory clinic for dementia", limit=3)
    assert s.named(by_text)[:2] == ["HUG", "Radboud"] or s.named(by_text)[:2] == ["Radboud", "HUG"]
    top = by_text["data"][0]
    assert top["name"] in {"HUG", "Radboudumc"} and top["kind"] == "hospital" and top["score"] > 0
    assert any(reason.startswith("matches the query on") and "dementia" in reason for reason in top["reasons"])

    # For an organisation: it leads; its registry connection and its cluster show up as reasons.
    for_iba = await recommend(mm, organisation=s.ids["IBA"], limit=4)
    assert for_iba["lead_organisation_id"] == s.ids["IBA"]
    assert "IBA" not in s.named(for_iba)
    reasons = {s.names[r["organisation_id"]]: r["reasons"] for r in for_iba["data"]}
    assert "connected with the lead in the registry" in reasons["CHU"]
    assert "in the same cluster as the lead" in reasons["ULiege"]

    # For a call: eligible countries only, and the required kinds are named.
    await created(mm, "/v1/calls", CALL)
    for_call = await recommend(mm, call=CALL["call_id"], lead=s.ids["Pixyl"], limit=10)
    named = s.named(for_call)
    assert "HUG" not in named and "Pixyl" not in named
    assert named[0] == "Radboud"
    assert "hospital, which the call requires" in for_call["data"][0]["reasons"]

    # For an opportunity: its owner leads and is left out; its target countries filter.
    owner = s.ids["Pixyl"]
    contact = (await registry.post(f"/v1/organisations/{owner}/contacts", {"name": "Senan Doyle"}))["id"]
    search = await created(mm, "/v1/opportunities", {
        "organisation_id": owner, "contact_id": contact, "kind": "technology_offer",
        "title": "AI atrophy measurement for dementia trials", "summary": "Validated MRI software for memory clinics.",
        "partner_kinds": ["hospital"], "target_countries": ["NL", "DE"]})
    for_opportunity = await recommend(mm, opportunity=search["id"])
    assert set(s.named(for_opportunity)) == {"Radboud", "Charite"}
    assert s.named(for_opportunity)[0] == "Radboud"

    # Bad or unknown subjects.
    unknown = "00000000-0000-4000-8000-000000000000"
    assert problem(await mm.get("/v1/recommendations/partners", params={"organisation": unknown}), 404)[
        "parameter"] == "organisation"
    assert problem(await mm.get("/v1/recommendations/partners", params={"text": "pet", "lead": unknown}), 404)[
        "parameter"] == "lead"
    problem(await mm.get("/v1/recommendations/partners", params={"opportunity": unknown}), 404)
    problem(await mm.get("/v1/recommendations/partners", params={"call": "NO-SUCH-CALL"}), 404)
    assert fields_named(await mm.get("/v1/recommendations/partners",
                                     params={"opportunity": search["id"], "call": CALL["call_id"]})) == ["query.call"]
    assert fields_named(await mm.get("/v1/recommendations/partners")) == ["query.text"]
    assert fields_named(await mm.get("/v1/recommendations/partners",
                                     params={"organisation": s.ids["IBA"], "lead": owner})) == ["query.lead"]
    assert fields_named(await mm.get("/v1/recommendations/partners", params={"text": "pet", "limit": 0})) == [
        "query.limit"]


async def test_an_organisation_registered_is_recommendable_within_a_second(
        store: Store, registry: Registry, matchmaking: Matchmaking) -> None:
    mm, app = matchmaking.http, matchmaking.app
    s = await scene(registry, only=("IBA", "ULiege", "CHU"))
    # Started like a server: the lifespan replays the log from 0 (the rebuild), then follows it.
    async with app.router.lifespan_context(app):
        assert len(matchmaking.feed.index) == 3
        query = {"text": "zebrafish optogenetics"}
        assert all(not r["reasons"][:1] or "matches" not in r["reasons"][0]
                   for r in (await recommend(mm, **query))["data"])  # no words in common

        newcomer = await registry.organisation("Danio Optics BV", country="NL", kind="company",
                                               description="Zebrafish optogenetics imaging platform.")

        async def found() -> bool:
            return [r["organisation_id"] for r in (await recommend(mm, **query))["data"]][:1] == [newcomer["id"]]

        assert await eventually(found, within=1.0) < 1.0

        # Updates and archiving follow the same way.
        await registry.http.patch(f"/v1/organisations/{newcomer['id']}", json={"country": "BE"},
                                  headers={"If-Match": '"1"'})
        await eventually(lambda: _country(mm, newcomer["id"], query, "BE"), within=1.0)
        archived = await registry.http.post(f"/v1/organisations/{newcomer['id']}/archive", headers={"If-Match": '"2"'})
        assert archived.status_code == 200, archived.text

        async def gone() -> bool:
            return newcomer["id"] not in {r["organisation_id"] for r in (await recommend(mm, **query))["data"]}

        await eventually(gone, within=1.0)
        with store.db.reading() as conn:
            head = conn.exec_driver_sql("SELECT max(position) FROM events").scalar_one()
        await eventually(lambda: _at(mm, head), within=1.0)

        # Rebuilt from the log, the index answers as a freshly started one does, and ranks as before
        # (scores move a little: the archived organisation no longer weighs in the word statistics).
        before = await recommend(mm, organisation=s.ids["IBA"])
        matchmaking.feed.rebuild()
        assert matchmaking.feed.position == head
        after = await recommend(mm, organisation=s.ids["IBA"])
        fresh = IndexFeed(store.db)
        fresh.catch_up()
        assert after["data"] == [r.model_dump() for r in partners.recommend(fresh, Query(lead_id=s.ids["IBA"]), ADMIN)]
        assert [r["organisation_id"] for r in after["data"]] == [r["organisation_id"] for r in before["data"]]


async def _country(mm: httpx.AsyncClient, organisation_id: str, query: dict[str, str], country: str) -> bool:
    return any(r["organisation_id"] == organisation_id and r["country"] == country
               for r in (await recommend(mm, **query))["data"])


async def _at(mm: httpx.AsyncClient, position: int) -> bool:
    return (await ok(mm.get("/v1/index")))["position"] >= position


async def test_consortium_builder_meets_the_rules_and_says_what_is_missing(
        registry: Registry, matchmaking: Matchmaking) -> None:
    mm = matchmaking.http
    s = await scene(registry)
    matchmaking.feed.catch_up()
    await created(mm, "/v1/calls", CALL)

    proposal = await ok(mm.post("/v1/consortia/proposals", json={
        "call_id": CALL["call_id"], "lead_organisation_id": s.ids["IBA"], "size": 3}))
    members = {s.names[m["organisation_id"]]: m for m in proposal["members"]}
    assert proposal["eligible"] is True and proposal["missing"] == []
    assert [m["role"] for m in proposal["members"]] == ["lead", "proposed", "proposed", "proposed"]
    # The hospital and the SME the call requires, from two more countries (Switzerland is not eligible).
    assert set(members) == {"IBA", "Radboud", "ULiege", "Pixyl"}
    assert members["IBA"]["satisfies"] == ["brings country BE (1 of the 3 countries needed)"]
    assert members["Radboud"]["satisfies"] == ["a hospital, which the call requires",
                                               "brings country NL (2 of the 3 countries needed)"]
    assert members["Pixyl"]["satisfies"] == ["an SME, which the call requires",
                                             "brings country FR (3 of the 3 countries needed)"]
    assert "SME, which the call requires" in members["Pixyl"]["reasons"]
    assert "in the same cluster as the lead" in members["ULiege"]["reasons"]
    assert all(m["reasons"] for m in proposal["members"] if m["role"] == "proposed")
    assert {rule["rule"]: rule["satisfied"] for rule in proposal["rules"]} == {
        "min_partners": True, "min_countries": True, "required_kind:hospital": True, "required_kind:sme": True,
        "eligible_countries": True}

    # A call asking for what the index lacks: the proposal says so, in words.
    patients = {**CALL, "call_id": "EU4H-2026-PATIENTS", "programme": "eu4health",
                "required_kinds": ["patient_organisation", "hospital", "hospital"], "min_partners": 3,
                "min_countries": 2, "eligible_countries": []}
    await created(mm, "/v1/calls", patients)
    lacking = await ok(mm.post("/v1/consortia/proposals", json={
        "call_id": patients["call_id"], "lead_organisation_id": s.ids["Pixyl"], "size": 1,
        "partner_ids": [s.ids["Guerbet"]]}))
    assert lacking["eligible"] is False
    assert [m["role"] for m in lacking["members"]] == ["lead", "committed"]
    assert lacking["missing"] == [
        "one more participant needed (has 2 of 3)", "one more country needed (has 1 of 2)",
        "no hospital yet (2 needed)",
        "no patient organisation yet (no eligible patient organisation among the candidates)"]
    assert [r["detail"] for r in lacking["rules"]][:3] == [
        "2 participants, the lead included (at least 3)", "1 distinct country: FR (at least 2)",
        "0 hospitals (at least 2)"]

    # A lead outside the eligible countries is reported, not hidden.
    swiss = await ok(mm.post("/v1/consortia/proposals", json={
        "call_id": CALL["call_id"], "lead_organisation_id": s.ids["HUG"]}))
    assert swiss["missing"] == ["HUG is in CH, not an eligible country"]
    assert len(swiss["members"]) == CALL["min_partners"]

    unknown = "00000000-0000-4000-8000-000000000000"
    assert fields_named(await mm.post("/v1/consortia/proposals", json={
        "call_id": "NO-SUCH", "lead_organisation_id": s.ids["IBA"]})) == ["body.call_id"]
    assert fields_named(await mm.post("/v1/consortia/proposals", json={
        "call_id": CALL["call_id"], "lead_organisation_id": unknown})) == ["body.lead_organisation_id"]
    assert fields_named(await mm.post("/v1/consortia/proposals", json={
        "call_id": CALL["call_id"], "lead_organisation_id": s.ids["IBA"], "size": 0})) == ["body.size"]


async def test_callers_see_ranked_only_the_organisations_they_may_see(
        registry: Registry, matchmaking: Matchmaking) -> None:
    """The registry's rule holds here too: a profile is public once its organisation is a cluster's
    active member. The others are ranked for platform admins and for themselves only, and naming one
    as the lead answers as if it did not exist."""
    mm = matchmaking.http
    s = await scene(registry)
    matchmaking.feed.catch_up()
    query = {"text": "PET MRI dementia imaging clinical trials cyclotron", "limit": 50}
    everyone = set(s.named(await recommend(mm, **query)))
    assert {"Radboud", "Guerbet", "IBA", "ULiege"} <= everyone  # the admin sees all

    member = auth_headers("member", cluster="c-other", organisation=s.ids["IBA"])
    seen = set(s.named(await ok(mm.get("/v1/recommendations/partners", params=query, headers=member))))
    assert seen == {"IBA", "ULiege"}  # the two active members: the only public profiles
    private = auth_headers("member", cluster="c-other", organisation=s.ids["Radboud"])
    seen = set(s.named(await ok(mm.get("/v1/recommendations/partners", params=query, headers=private))))
    assert seen == {"IBA", "ULiege", "Radboud"}  # its own private profile, and the public ones

    for lead in ("organisation", "lead"):
        hidden = await mm.get("/v1/recommendations/partners", headers=member,
                              params={"text": "dementia", lead: s.ids["Guerbet"]})
        assert problem(hidden, 404)["detail"] == f"no organisation {s.ids['Guerbet']} in the matchmaking index"
    await created(mm, "/v1/calls", CALL)
    proposal = await mm.post("/v1/consortia/proposals", headers=member, json={
        "call_id": CALL["call_id"], "lead_organisation_id": s.ids["IBA"], "size": 3})
    assert proposal.status_code == 200, proposal.text
    assert {m["organisation_id"] for m in proposal.json()["members"]} == {s.ids["IBA"], s.ids["ULiege"]}
    refused = await mm.post("/v1/consortia/proposals", headers=member, json={
        "call_id": CALL["call_id"], "lead_organisation_id": s.ids["IBA"], "partner_ids": [s.ids["Guerbet"]]})
    assert fields_named(refused) == ["body.partner_ids.0"]
