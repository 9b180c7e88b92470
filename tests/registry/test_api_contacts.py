from __future__ import annotations

import httpx

from tests.registry.conftest import IBA, created, fields_named

ANNE = {"name": "Anne Dupont", "email": "anne.dupont@iba-group.com", "phone": "+32 10 47 58 11",
        "position": "Business development"}


async def test_contacts_live_in_their_own_person_stream(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)

    response = await client.post(f"/v1/organisations/{iba['id']}/contacts", json=ANNE)

    assert response.status_code == 201, response.text
    contact = response.json()
    assert response.headers["location"] == f"/v1/contacts/{contact['id']}"
    assert contact["organisation_id"] == iba["id"] and contact["email"] == ANNE["email"]
    history = (await client.get(f"/v1/contacts/{contact['id']}/history")).json()["data"]
    assert history[0]["stream_id"] == f"person-{contact['id']}"
    assert history[0]["stream_type"] == "registry.Person"
    # The organisation's own stream holds no person data.
    organisation_history = (await client.get(f"/v1/organisations/{iba['id']}/history")).json()["data"]
    assert [e["event_type"] for e in organisation_history] == ["registry.OrganisationRegistered"]


async def test_list_update_and_remove_contacts(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)
    anne = await created(client, f"/v1/organisations/{iba['id']}/contacts", ANNE)
    await created(client, f"/v1/organisations/{iba['id']}/contacts", {"name": "Bart Peeters"})

    listed = (await client.get(f"/v1/organisations/{iba['id']}/contacts")).json()["data"]
    assert [c["name"] for c in listed] == ["Anne Dupont", "Bart Peeters"]

    updated = await client.patch(f"/v1/contacts/{anne['id']}", json={"position": "CEO", "phone": None},
                                 headers={"If-Match": '"1"'})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["position"], updated.json()["phone"]) == ("CEO", None)

    assert (await client.delete(f"/v1/contacts/{anne['id']}")).status_code == 428
    assert (await client.delete(f"/v1/contacts/{anne['id']}", headers={"If-Match": '"1"'})).status_code == 412
    assert (await client.delete(f"/v1/contacts/{anne['id']}", headers={"If-Match": '"2"'})).status_code == 204
    assert (await client.get(f"/v1/contacts/{anne['id']}")).status_code == 404
    assert (await client.patch(f"/v1/contacts/{anne['id']}", json={}, headers={"If-Match": '"3"'})).status_code == 404
    listed = (await client.get(f"/v1/organisations/{iba['id']}/contacts")).json()["data"]
    assert [c["name"] for c in listed] == ["Bart Peeters"]


async def test_contact_fields_are_validated(client: httpx.AsyncClient) -> None:
    iba = await created(client, "/v1/organisations", IBA)

    response = await client.post(f"/v1/organisations/{iba['id']}/contacts",
                                 json={"name": "", "email": "anne@", "phone": "call me", "age": 40})

    assert set(fields_named(response)) == {"body.name", "body.email", "body.phone", "body.age"}


async def test_contacts_of_an_unknown_organisation_are_404(client: httpx.AsyncClient) -> None:
    unknown = "8a4b0f5e-0000-4000-8000-000000000000"

    assert (await client.post(f"/v1/organisations/{unknown}/contacts", json=ANNE)).status_code == 404
    assert (await client.get(f"/v1/organisations/{unknown}/contacts")).status_code == 404
