from __future__ import annotations

import httpx

from tests.registry.conftest import BIOWIN, GUERBET, IBA, ULIEGE, created, fields_named

UNKNOWN = "8a4b0f5e-0000-4000-8000-000000000000"


async def test_record_list_and_end_connections(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)
    uliege = await created(client, "/v1/organisations", ULIEGE)
    guerbet = await created(client, "/v1/organisations", GUERBET)
    partner = await created(client, "/v1/connections", {"source_id": uliege["id"], "target_id": iba["id"],
                                                        "kind": "partner_of", "since": "2019-05-01"})
    supplier = await created(client, "/v1/connections", {"source_id": guerbet["id"], "target_id": iba["id"],
                                                         "kind": "supplier_of"})

    of_iba = (await client.get("/v1/connections", params={"organisation_id": iba["id"]})).json()["data"]
    assert [c["id"] for c in of_iba] == [partner["id"], supplier["id"]]
    of_uliege = (await client.get("/v1/connections", params={"organisation_id": uliege["id"]})).json()["data"]
    assert [c["kind"] for c in of_uliege] == ["partner_of"]

    ended = await client.post(f"/v1/connections/{supplier['id']}/end", json={"on": "2024-06-30"})
    assert ended.status_code == 200, ended.text
    assert (ended.json()["active"], ended.json()["ended_on"]) == (False, "2024-06-30")
    assert (await client.post(f"/v1/connections/{supplier['id']}/end")).status_code == 409
    active = (await client.get("/v1/connections", params={"organisation_id": iba["id"]})).json()["data"]
    assert [c["id"] for c in active] == [partner["id"]]
    everything = (await client.get("/v1/connections", params={"include_ended": "true"})).json()["data"]
    assert len(everything) == 2
    history = (await client.get(f"/v1/connections/{supplier['id']}/history")).json()["data"]
    assert [e["event_type"] for e in history] == ["registry.ConnectionRecorded", "registry.ConnectionEnded"]


async def test_connection_rules(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)
    uliege = await created(client, "/v1/organisations", ULIEGE)
    body = {"source_id": uliege["id"], "target_id": iba["id"], "kind": "co_project"}
    await created(client, "/v1/connections", body)

    assert (await client.post("/v1/connections", json=body)).status_code == 409
    assert fields_named(await client.post("/v1/connections", json={**body, "target_id": uliege["id"]})) == [
        "body.target_id"]
    assert fields_named(await client.post("/v1/connections", json={**body, "source_id": UNKNOWN})) == [
        "body.source_id"]
    assert fields_named(await client.post("/v1/connections", json={**body, "kind": "rival_of"})) == ["body.kind"]
    assert (await client.get(f"/v1/connections/{UNKNOWN}")).status_code == 404


async def test_working_groups_and_their_members(client: httpx.AsyncClient) -> None:
    biowin = await created(client, "/v1/clusters", BIOWIN)
    iba = await created(client, "/v1/organisations", IBA)
    uliege = await created(client, "/v1/organisations", ULIEGE)
    health = await created(client, "/v1/working-groups", {"cluster_id": biowin["id"], "name": "Connected Health"})
    implants = await created(client, "/v1/working-groups", {"cluster_id": biowin["id"],
                                                            "name": "Biomaterials and implants"})
    path = f"/v1/working-groups/{health['id']}"

    joined = await client.post(f"{path}/members", json={"organisation_id": iba["id"], "role": "lead"})
    assert joined.status_code == 200, joined.text
    assert (joined.json()["member_count"], joined.headers["etag"]) == (1, '"2"')
    await client.post(f"{path}/members", json={"organisation_id": uliege["id"]}, headers={"If-Match": '"2"'})
    assert (await client.post(f"{path}/members", json={"organisation_id": iba["id"]})).status_code == 409
    assert fields_named(await client.post(f"{path}/members", json={"organisation_id": UNKNOWN})) == [
        "body.organisation_id"]

    members = (await client.get(f"{path}/members")).json()["data"]
    assert {(m["organisation_id"], m["role"]) for m in members} == {(iba["id"], "lead"), (uliege["id"], "member")}
    groups = (await client.get("/v1/working-groups", params={"cluster_id": biowin["id"]})).json()["data"]
    assert [g["id"] for g in groups] == [implants["id"], health["id"]]
    of_iba = (await client.get("/v1/working-groups", params={"organisation_id": iba["id"]})).json()["data"]
    assert [g["id"] for g in of_iba] == [health["id"]]

    left = await client.delete(f"{path}/members/{iba['id']}")
    assert left.status_code == 200 and left.json()["member_count"] == 1
    assert (await client.delete(f"{path}/members/{iba['id']}")).status_code == 404
    history = (await client.get(f"{path}/history")).json()["data"]
    assert [e["event_type"].removeprefix("registry.WorkingGroup") for e in history] == [
        "Formed", "MemberJoined", "MemberJoined", "MemberLeft"]


async def test_working_group_rules(client: httpx.AsyncClient) -> None:
    biowin = await created(client, "/v1/clusters", BIOWIN)
    await created(client, "/v1/working-groups", {"cluster_id": biowin["id"], "name": "Medical devices and imaging"})

    same_name = await client.post("/v1/working-groups", json={"cluster_id": biowin["id"],
                                                              "name": "Medical Devices and Imaging"})
    assert same_name.status_code == 409
    assert fields_named(await client.post("/v1/working-groups", json={"cluster_id": UNKNOWN, "name": "x"})) == [
        "body.cluster_id"]
    assert (await client.get(f"/v1/working-groups/{UNKNOWN}/members")).status_code == 404
    assert (await client.post(f"/v1/working-groups/{UNKNOWN}/members",
                              json={"organisation_id": UNKNOWN})).status_code == 404
