from __future__ import annotations

import httpx

from tests.conftest import auth_headers
from tests.registry.conftest import BIOWIN, GUERBET, IBA, MEDICEN, ULIEGE, created, fields_named


async def test_register_returns_201_with_location_and_etag_and_reads_back(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/organisations", json=IBA)

    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/v1/organisations/{body['id']}"
    assert response.headers["etag"] == '"1"'
    assert body["legal_name"] == "Ion Beam Applications SA" and body["version"] == 1 and body["archived"] is False

    read = await client.get(f"/v1/organisations/{body['id']}")
    assert read.status_code == 200
    assert read.headers["etag"] == '"1"'
    assert read.json() == body


async def test_input_is_normalised(client: httpx.AsyncClient) -> None:
    body = await created(client, "/v1/organisations", {
        **ULIEGE, "country": "be", "nuts_region": "be33", "ror": "https://ror.org/00afp2z80",
        "roles": ["researcher", "researcher"], "keywords": ["PET", "pet"]})

    assert (body["country"], body["nuts_region"], body["ror"]) == ("BE", "BE33", "00afp2z80")
    assert body["roles"] == ["researcher"]
    assert body["keywords"] == ["PET"]
    # The 201 body is built from the validated input, not read back: it must be what a read returns.
    assert (await client.get(f"/v1/organisations/{body['id']}")).json() == body


async def test_unknown_field_is_rejected_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/organisations", json={**IBA, "turnover": 12})

    assert fields_named(response) == ["body.turnover"]


async def test_bad_fields_are_named(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/organisations", json={
        **IBA, "country": "XX", "kind": "startup", "pic": "12", "website": "not a url"})

    assert set(fields_named(response)) == {"body.country", "body.kind", "body.pic", "body.website"}


async def test_region_must_lie_in_the_country(client: httpx.AsyncClient) -> None:
    assert fields_named(await client.post("/v1/organisations", json={**IBA, "nuts_region": "FR10"})) == [
        "body.nuts_region"]
    assert fields_named(await client.post("/v1/organisations", json={**IBA, "nuts_region": "B3"})) == [
        "body.nuts_region"]
    # Greece is GR in ISO 3166 but EL in NUTS.
    await created(client, "/v1/organisations", {**ULIEGE, "country": "GR", "nuts_region": "EL30"})


async def test_only_companies_have_a_size(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/organisations", json={**ULIEGE, "company_size": "sme"})

    assert fields_named(response) == ["body.company_size"]


async def test_unknown_id_is_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/organisations/8a4b0f5e-0000-4000-8000-000000000000")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def test_update_needs_if_match(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)

    response = await client.patch(f"/v1/organisations/{iba['id']}", json={"short_name": "IBA Group"})

    assert response.status_code == 428
    assert response.headers["content-type"] == "application/problem+json"


async def test_update_changes_only_given_fields_and_bumps_the_version(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)

    response = await client.patch(f"/v1/organisations/{iba['id']}", headers={"If-Match": '"1"'},
                                  json={"short_name": "IBA Group", "website": None, "competencies": ["proton_therapy"]})

    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    body = response.json()
    assert body["short_name"] == "IBA Group" and body["website"] is None
    assert body["competencies"] == ["proton_therapy"]
    assert body["description"] == IBA["description"]
    history = (await client.get(f"/v1/organisations/{iba['id']}/history")).json()["data"]
    assert history[-1]["event_type"] == "registry.OrganisationUpdated"
    assert history[-1]["data"]["changes"] == {"short_name": "IBA Group", "website": None,
                                              "competencies": ["proton_therapy"]}


async def test_stale_if_match_is_412_with_the_current_version(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)
    await client.patch(f"/v1/organisations/{iba['id']}", json={"short_name": "IBA Group"}, headers={"If-Match": '"1"'})

    response = await client.patch(f"/v1/organisations/{iba['id']}", json={"short_name": "x"},
                                  headers={"If-Match": '"1"'})

    assert response.status_code == 412
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["current_version"] == 2


async def test_malformed_if_match_is_422(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)

    response = await client.patch(f"/v1/organisations/{iba['id']}", json={}, headers={"If-Match": "latest"})

    assert fields_named(response) == ["header.if-match"]


async def test_update_revalidates_the_whole_record(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)
    path = f"/v1/organisations/{iba['id']}"

    # A university cannot keep the company size IBA had; nor can a region leave its country.
    assert fields_named(await client.patch(path, json={"kind": "university"}, headers={"If-Match": '"1"'})) == [
        "body.company_size"]
    assert fields_named(await client.patch(path, json={"country": "FR"}, headers={"If-Match": '"1"'})) == [
        "body.nuts_region"]
    assert fields_named(await client.patch(path, json={"legal_name": None}, headers={"If-Match": '"1"'})) == [
        "body.legal_name"]
    assert fields_named(await client.patch(path, json={"colour": "red"}, headers={"If-Match": '"1"'})) == [
        "body.colour"]
    ok = await client.patch(path, json={"kind": "research_institute", "company_size": None},
                            headers={"If-Match": '"1"'})
    assert ok.status_code == 200, ok.text


async def test_an_update_that_changes_nothing_records_nothing(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)

    response = await client.patch(f"/v1/organisations/{iba['id']}", json={"short_name": "IBA"},
                                  headers={"If-Match": '"1"'})

    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'


async def test_archive_keeps_the_record_readable_but_out_of_lists(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)
    await created(client, "/v1/organisations", GUERBET)
    path = f"/v1/organisations/{iba['id']}"

    assert (await client.post(f"{path}/archive")).status_code == 428
    archived = await client.post(f"{path}/archive", json={"reason": "merged"}, headers={"If-Match": '"1"'})

    assert archived.status_code == 200, archived.text
    assert archived.json()["archived"] is True and archived.headers["etag"] == '"2"'
    assert (await client.get(path)).json()["archived"] is True
    listed = (await client.get("/v1/organisations")).json()["data"]
    assert [o["legal_name"] for o in listed] == ["Guerbet"]
    with_archived = (await client.get("/v1/organisations", params={"include_archived": "true"})).json()["data"]
    assert len(with_archived) == 2
    again = await client.post(f"{path}/archive", headers={"If-Match": '"2"'})
    assert again.status_code == 409
    update = await client.patch(path, json={"short_name": "x"}, headers={"If-Match": '"2"'})
    assert update.status_code == 409


async def test_history_lists_the_entity_events_in_order(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA, **auth_headers(subject="anne@biowin.org"))
    await client.post(f"/v1/organisations/{iba['id']}/archive", headers={"If-Match": '"1"'})

    response = await client.get(f"/v1/organisations/{iba['id']}/history")

    assert response.status_code == 200
    events = response.json()["data"]
    assert [(e["version"], e["event_type"]) for e in events] == [
        (1, "registry.OrganisationRegistered"), (2, "registry.OrganisationArchived")]
    assert events[0]["schema_version"] == 2
    assert events[0]["data"]["legal_name"] == IBA["legal_name"]
    assert events[0]["metadata"]["actor"] == "anne@biowin.org"
    assert events[0]["stream_id"] == f"organisation-{iba['id']}"
    assert (await client.get("/v1/organisations/8a4b0f5e-0000-4000-8000-000000000000/history")).status_code == 404


async def test_filters(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)
    uliege = await created(client, "/v1/organisations", ULIEGE)
    guerbet = await created(client, "/v1/organisations", GUERBET)

    async def names(**params: str) -> list[str]:
        response = await client.get("/v1/organisations", params=params)
        assert response.status_code == 200, response.text
        return [o["id"] for o in response.json()["data"]]

    assert await names() == [guerbet["id"], iba["id"], uliege["id"]]  # by name
    assert await names(kind="university") == [uliege["id"]]
    assert await names(role="manufacturer_oem") == [guerbet["id"], iba["id"]]
    assert await names(stage="manufacturing", country="be") == [iba["id"]]
    assert await names(competency="mri") == [guerbet["id"]]
    assert await names(region="BE3") == [iba["id"], uliege["id"]]
    assert await names(region="BE33") == [uliege["id"]]
    assert await names(country="FR", role="researcher") == []
    assert fields_named(await client.get("/v1/organisations", params={"role": "wizard"})) == ["query.role"]
    assert fields_named(await client.get("/v1/organisations", params={"limit": "0"})) == ["query.limit"]


async def test_filter_by_cluster_and_membership_status(client: httpx.AsyncClient) -> None:
    biowin = await created(client, "/v1/clusters", BIOWIN)
    medicen = await created(client, "/v1/clusters", MEDICEN)
    iba = await created(client, "/v1/organisations", IBA)
    guerbet = await created(client, "/v1/organisations", GUERBET)
    fee = {"fee_category": "large_company", "yearly_fee": "2500"}
    active = await created(client, "/v1/memberships", {"organisation_id": iba["id"], "cluster_id": biowin["id"], **fee})
    await client.post(f"/v1/memberships/{active['id']}/activate")
    await created(client, "/v1/memberships", {"organisation_id": guerbet["id"], "cluster_id": medicen["id"], **fee})
    await created(client, "/v1/memberships", {"organisation_id": guerbet["id"], "cluster_id": biowin["id"], **fee})

    async def ids(**params: str) -> list[str]:
        return [o["id"] for o in (await client.get("/v1/organisations", params=params)).json()["data"]]

    assert await ids(cluster=biowin["id"]) == [guerbet["id"], iba["id"]]
    assert await ids(cluster=biowin["id"], membership_status="active") == [iba["id"]]
    assert await ids(cluster=medicen["id"]) == [guerbet["id"]]
    assert await ids(membership_status="applied") == [guerbet["id"]]


async def test_search_folds_accents_ands_terms_and_ranks_name_hits_first(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)
    uliege = await created(client, "/v1/organisations", ULIEGE)
    await created(client, "/v1/organisations", GUERBET)

    async def ids(q: str) -> list[str]:
        response = await client.get("/v1/organisations", params={"q": q})
        assert response.status_code == 200, response.text
        return [o["id"] for o in response.json()["data"]]

    assert await ids("liege") == [uliege["id"]]
    assert await ids("LIÈGE université") == [uliege["id"]]
    assert await ids("proton") == [iba["id"]]  # description
    assert await ids("Radiopharmaceuticals") == [iba["id"]]  # competency label
    # A keyword of both, in neither name: equal rank, so by name.
    assert await ids("cyclotron") == [iba["id"], uliege["id"]]
    assert await ids("cyclotron research") == [uliege["id"]]  # terms are ANDed
    assert await ids("proton mri") == []
    assert fields_named(await client.get("/v1/organisations", params={"q": "--"})) == ["query.q"]


async def test_search_ranks_name_hits_before_other_hits(client: httpx.AsyncClient) -> None:
    named = await created(client, "/v1/organisations", {**GUERBET, "legal_name": "Zeta Imaging", "description": None})
    described = await created(client, "/v1/organisations", {**GUERBET, "legal_name": "Alpha Diagnostics",
                                                           "description": "Imaging software"})

    data = (await client.get("/v1/organisations", params={"q": "imaging"})).json()["data"]

    assert [o["id"] for o in data] == [named["id"], described["id"]]


async def test_cursor_pagination_walks_every_row_once(client: httpx.AsyncClient) -> None:
    made = [await created(client, "/v1/organisations", {**GUERBET, "legal_name": f"Imaging Company {i:02d}"})
            for i in range(7)]

    for params in ({}, {"q": "imaging company"}):
        seen, cursor, pages = [], None, 0
        while True:
            response = await client.get("/v1/organisations", params={**params, "limit": "3",
                                                                      **({"cursor": cursor} if cursor else {})})
            assert response.status_code == 200, response.text
            page = response.json()
            seen += [o["id"] for o in page["data"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [o["id"] for o in made]
        assert pages == 3


async def test_a_forged_cursor_is_422(client: httpx.AsyncClient) -> None:
    for cursor in ("not-base64!", "WzEsMl0", "bnVsbA"):  # junk, [1,2], null
        assert fields_named(await client.get("/v1/organisations", params={"cursor": cursor})) == ["query.cursor"]
