from __future__ import annotations

from typing import Any

import httpx

from tests.registry.conftest import BIOWIN, IBA, created, fields_named

UNKNOWN = "8a4b0f5e-0000-4000-8000-000000000000"


async def _application(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    biowin = await created(client, "/v1/clusters", BIOWIN)
    iba = await created(client, "/v1/organisations", IBA)
    membership = await created(client, "/v1/memberships", {
        "organisation_id": iba["id"], "cluster_id": biowin["id"], "fee_category": "large_company",
        "yearly_fee": "2500", "currency": "eur", "applied_on": "2025-01-15"})
    return biowin, iba, membership


async def test_membership_lifecycle(client: httpx.AsyncClient) -> None:
    _, _, membership = await _application(client)
    path = f"/v1/memberships/{membership['id']}"
    assert (membership["status"], membership["yearly_fee"], membership["currency"]) == ("applied", "2500.00", "EUR")

    active = await client.post(f"{path}/activate", json={"on": "2025-02-01"})
    assert active.status_code == 200, active.text
    assert (active.json()["status"], active.json()["period_end"]) == ("active", "2025-12-31")

    renewed = (await client.post(f"{path}/renew", json={"yearly_fee": "2750.00"})).json()
    assert (renewed["period_end"], renewed["yearly_fee"]) == ("2026-12-31", "2750.00")

    suspended = (await client.post(f"{path}/suspend", json={"on": "2026-03-01", "reason": "fee unpaid"})).json()
    assert (suspended["status"], suspended["status_reason"]) == ("suspended", "fee unpaid")

    reactivated = (await client.post(f"{path}/activate", json={"on": "2026-03-20"})).json()
    assert (reactivated["status"], reactivated["period_end"]) == ("active", "2026-12-31")

    ended = await client.post(f"{path}/end", json={"on": "2026-12-31", "reason": "resigned"},
                              headers={"If-Match": '"5"'})
    assert ended.status_code == 200, ended.text
    assert (ended.json()["status"], ended.json()["ended_on"], ended.headers["etag"]) == ("ended", "2026-12-31", '"6"')

    history = (await client.get(f"{path}/history")).json()["data"]
    assert [e["event_type"].removeprefix("registry.Membership") for e in history] == [
        "Applied", "Activated", "Renewed", "Suspended", "Activated", "Ended"]


async def test_transitions_that_break_the_lifecycle_are_409(client: httpx.AsyncClient) -> None:
    _, _, membership = await _application(client)
    path = f"/v1/memberships/{membership['id']}"

    assert (await client.post(f"{path}/suspend")).status_code == 409
    assert (await client.post(f"{path}/renew")).status_code == 409
    assert (await client.post(f"{path}/end")).status_code == 200
    response = await client.post(f"{path}/activate")
    assert response.status_code == 409
    assert response.json()["status"] == "ended"


async def test_if_match_is_checked_when_given(client: httpx.AsyncClient) -> None:
    _, _, membership = await _application(client)

    response = await client.post(f"/v1/memberships/{membership['id']}/activate", headers={"If-Match": '"7"'})

    assert response.status_code == 412
    assert response.json()["current_version"] == 1


async def test_membership_of_unknown_or_archived_records_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    biowin, iba, _ = await _application(client)
    fee = {"fee_category": "sme", "yearly_fee": "500"}

    unknown_organisation = await client.post("/v1/memberships", json={
        "organisation_id": UNKNOWN, "cluster_id": biowin["id"], **fee})
    assert fields_named(unknown_organisation) == ["body.organisation_id"]
    unknown_cluster = await client.post("/v1/memberships", json={
        "organisation_id": iba["id"], "cluster_id": UNKNOWN, **fee})
    assert fields_named(unknown_cluster) == ["body.cluster_id"]
    await client.post(f"/v1/clusters/{biowin['id']}/archive", headers={"If-Match": '"1"'})
    archived_cluster = await client.post("/v1/memberships", json={
        "organisation_id": iba["id"], "cluster_id": biowin["id"], **fee})
    assert fields_named(archived_cluster) == ["body.cluster_id"]
    bad = await client.post("/v1/memberships", json={
        "organisation_id": "iba", "cluster_id": biowin["id"], "fee_category": "platinum", "yearly_fee": "-1",
        "currency": "euro"})
    assert set(fields_named(bad)) == {"body.organisation_id", "body.fee_category", "body.yearly_fee",
                                      "body.currency"}


async def test_one_open_membership_per_organisation_and_cluster(client: httpx.AsyncClient) -> None:
    biowin, iba, membership = await _application(client)
    body = {"organisation_id": iba["id"], "cluster_id": biowin["id"], "fee_category": "large_company",
            "yearly_fee": "2500"}

    duplicate = await client.post("/v1/memberships", json=body)
    assert duplicate.status_code == 409
    assert duplicate.json()["membership_id"] == membership["id"]
    await client.post(f"/v1/memberships/{membership['id']}/end")
    await created(client, "/v1/memberships", body)


async def test_list_memberships_with_filters_and_pages(client: httpx.AsyncClient) -> None:
    biowin, iba, first = await _application(client)
    await client.post(f"/v1/memberships/{first['id']}/end")
    second = await created(client, "/v1/memberships", {
        "organisation_id": iba["id"], "cluster_id": biowin["id"], "fee_category": "large_company",
        "yearly_fee": "2500"})

    page = (await client.get("/v1/memberships", params={"organisation_id": iba["id"], "limit": "1"})).json()
    assert [m["id"] for m in page["data"]] == [first["id"]]
    page = (await client.get("/v1/memberships", params={"organisation_id": iba["id"], "limit": "1",
                                                        "cursor": page["next_cursor"]})).json()
    assert [m["id"] for m in page["data"]] == [second["id"]] and page["next_cursor"] is None
    applied = (await client.get("/v1/memberships", params={"status": "applied"})).json()["data"]
    assert [m["id"] for m in applied] == [second["id"]]
    assert (await client.get(f"/v1/memberships/{UNKNOWN}")).status_code == 404
