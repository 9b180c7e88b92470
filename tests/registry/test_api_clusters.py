from __future__ import annotations

import httpx

from tests.registry.conftest import BIOWIN, MEDICEN, created, fields_named


async def test_register_read_and_list_clusters(client: httpx.AsyncClient) -> None:
    medicen = await created(client, "/v1/clusters", MEDICEN)
    biowin = await created(client, "/v1/clusters", BIOWIN)

    read = await client.get(f"/v1/clusters/{biowin['id']}")
    assert read.status_code == 200 and read.headers["etag"] == '"1"'
    assert read.json()["legal_form"] == "non_profit_association"
    listed = (await client.get("/v1/clusters")).json()
    assert [c["id"] for c in listed["data"]] == [biowin["id"], medicen["id"]]
    assert listed["next_cursor"] is None
    french = (await client.get("/v1/clusters", params={"country": "fr"})).json()["data"]
    assert [c["acronym"] for c in french] == ["Medicen"]


async def test_cluster_fields_are_validated(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/clusters", json={**BIOWIN, "legal_form": "guild", "nuts_region": "FR1",
                                                       "members": 200})

    assert set(fields_named(response)) == {"body.legal_form", "body.nuts_region", "body.members"}


async def test_update_and_archive_a_cluster(client: httpx.AsyncClient) -> None:
    biowin = await created(client, "/v1/clusters", BIOWIN)
    path = f"/v1/clusters/{biowin['id']}"

    updated = await client.patch(path, json={"description": "Walloon health biotech cluster"},
                                 headers={"If-Match": '"1"'})
    assert updated.status_code == 200 and updated.json()["description"] == "Walloon health biotech cluster"
    assert (await client.patch(path, json={"name": "x"}, headers={"If-Match": '"1"'})).status_code == 412
    archived = await client.post(f"{path}/archive", headers={"If-Match": '"2"'})
    assert archived.status_code == 200 and archived.json()["archived"] is True
    assert (await client.get("/v1/clusters")).json()["data"] == []
    history = (await client.get(f"{path}/history")).json()["data"]
    assert [e["event_type"] for e in history] == [
        "registry.ClusterRegistered", "registry.ClusterUpdated", "registry.ClusterArchived"]
