"""Events and registrations, with the registry answering over HTTP (a real uvicorn server)."""
from __future__ import annotations

import socket

import httpx

from services.events.app import create_app
from services.events.settings import EventsSettings
from tests.conftest import Store, auth_headers
from tests.events.conftest import (
    BIOWIN,
    MEDICEN,
    Registry,
    count_events,
    created,
    event_body,
    fields_named,
    ok,
    problem,
)

UNKNOWN = "8a4b0f5e-0000-4000-8000-000000000000"


async def test_event_lifecycle_validation_and_if_match(client: httpx.AsyncClient, registry: Registry) -> None:
    biowin = await registry.cluster(BIOWIN)

    assert fields_named(await client.post("/v1/events", json=event_body([biowin], colour="red"))) == ["body.colour"]
    assert fields_named(await client.post("/v1/events", json=event_body([biowin], time_zone="Mars/Olympus"))) == [
        "body.time_zone"]
    naive = await client.post("/v1/events", json=event_body([biowin], starts_at="2026-03-10T08:00:00"))
    assert fields_named(naive) == ["body.starts_at"]
    backwards = await client.post("/v1/events", json=event_body([biowin], ends_at="2026-03-09T08:00:00Z"))
    assert problem(backwards, 422)["detail"].endswith("ends_at must be after starts_at")
    assert fields_named(await client.post("/v1/events", json=event_body([biowin, UNKNOWN]))) == [
        "body.organiser_cluster_ids.1"]

    event = await created(client, "/v1/events", event_body([biowin], capacity=100))
    path = f"/v1/events/{event['id']}"
    assert (event["status"], event["starts_at"], event["b2b"]) == (
        "draft", "2026-03-10T07:00:00Z", {"request_mode": "opt_in", "scheduling_mode": "self", "meeting_cap": 12})

    assert problem(await client.patch(path, json={"title": "RegMed"}), 428)
    assert problem(await client.patch(path, json={"title": "RegMed"}, headers={"If-Match": '"9"'}), 412)[
        "current_version"] == 1
    assert fields_named(await client.patch(path, json={"capacity": 0}, headers={"If-Match": '"1"'})) == [
        "body.capacity"]
    merged = await client.patch(path, json={"ends_at": "2026-03-01T00:00:00Z"}, headers={"If-Match": '"1"'})
    assert problem(merged, 422)["detail"].endswith("ends_at must be after starts_at")
    updated = await client.patch(path, json={"title": "RegMed Europe", "venue": None}, headers={"If-Match": '"1"'})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["title"], updated.json()["venue"], updated.headers["etag"]) == ("RegMed Europe", None, '"2"')

    for action, status in (("publish", "published"), ("close-registration", "registration_closed"),
                           ("held", "held")):
        assert (await ok(client.post(f"{path}/{action}")))["status"] == status
    assert problem(await client.post(f"{path}/publish"), 409)["status"] == "held"
    assert problem(await client.post(f"{path}/archive"), 428)
    assert (await ok(client.post(f"{path}/archive", headers={"If-Match": '"5"'})))["status"] == "archived"
    assert problem(await client.patch(path, json={"title": "x"}, headers={"If-Match": '"6"'}), 409)

    listed = (await ok(client.get("/v1/events", params={"cluster_id": biowin, "status": "archived"})))["data"]
    assert [e["id"] for e in listed] == [event["id"]]
    assert (await ok(client.get("/v1/events", params={"cluster_id": biowin})))["data"] == []
    history = (await ok(client.get(f"{path}/history")))["data"]
    assert [e["event_type"] for e in history] == [
        "events.EventScheduled", "events.EventUpdated", "events.EventPublished", "events.RegistrationClosed",
        "events.EventHeld", "events.EventArchived"]
    assert history[1]["data"]["changes"] == {"title": "RegMed Europe", "venue": None}


async def test_registration_is_checked_with_the_registry_and_fills_a_waitlist(
        store: Store, client: httpx.AsyncClient, registry: Registry) -> None:
    biowin, medicen = await registry.cluster(BIOWIN), await registry.cluster(MEDICEN)
    iba = await registry.organisation("Ion Beam Applications", short_name="IBA", member_of=biowin)
    guerbet = await registry.organisation("Guerbet", country="FR", member_of=medicen)
    outsider = await registry.organisation("Université de Liège", kind="university")
    anne = await registry.contact(iba, "Anne Dupont", "anne@iba.example")
    marc = await registry.contact(iba, "Marc Leroy")
    claire = await registry.contact(guerbet, "Claire Martin", "claire@guerbet.example")
    paul = await registry.contact(outsider, "Paul Henrard")

    joint = await created(client, "/v1/events", event_body(
        [biowin, medicen], title="BioWin–Medicen day", kind="conference", members_only=True, capacity=2))
    path = f"/v1/events/{joint['id']}"
    registrations = f"{path}/registrations"
    assert problem(await client.post(registrations, json={"organisation_id": iba, "contact_id": anne}), 409)[
        "status"] == "draft"
    await ok(client.post(f"{path}/publish"))

    unknown_field = await client.post(registrations, json={"organisation_id": iba, "contact_id": anne, "seat": 1})
    assert fields_named(unknown_field) == ["body.seat"]
    assert fields_named(await client.post(registrations, json={"organisation_id": UNKNOWN, "contact_id": anne})) == [
        "body.organisation_id"]
    assert fields_named(await client.post(registrations, json={"organisation_id": guerbet, "contact_id": anne})) == [
        "body.contact_id"]
    refused = await client.post(registrations, json={"organisation_id": outsider, "contact_id": paul})
    assert problem(refused, 403)["organisation_id"] == outsider

    first = await client.post(registrations, json={"organisation_id": iba, "contact_id": anne})
    assert first.status_code == 201, first.text
    seated = first.json()
    assert (seated["status"], seated["name"], seated["organisation_name"], seated["b2b"], first.headers["etag"]) == (
        "registered", "Anne Dupont", "IBA", False, '"1"')
    # Members of either organiser may come to a joint event.
    second = await created(client, registrations, {"organisation_id": guerbet, "contact_id": claire})
    assert second["status"] == "registered"
    waiting = await created(client, registrations, {"organisation_id": iba, "contact_id": marc})
    assert waiting["status"] == "waitlisted"
    again = await client.post(registrations, json={"organisation_id": iba, "contact_id": anne})
    assert problem(again, 409)["participant_id"] == seated["id"]
    assert (await ok(client.get(path)))[("registered")] == 2

    # The notifier addresses the registrant from the log alone.
    registered = (await ok(client.get(f"{path}/participants/{seated['id']}/history")))["data"][0]
    assert (registered["event_type"], registered["data"]["email"], registered["metadata"]["service"]) == (
        "events.ParticipantRegistered", "anne@iba.example", "events")

    cancel = f"{registrations}/{seated['id']}/cancel"
    assert problem(await client.post(cancel, headers={"If-Match": '"7"'}), 412)
    cancelled = await ok(client.post(cancel, json={"reason": "travel"}, headers={"If-Match": '"1"'}))
    assert cancelled["status"] == "cancelled"
    assert problem(await client.post(cancel), 409)
    promoted = await ok(client.get(f"{path}/participants/{waiting['id']}"))
    assert promoted["status"] == "registered"
    history = (await ok(client.get(f"{path}/participants/{waiting['id']}/history")))["data"]
    assert [e["event_type"] for e in history] == ["events.ParticipantWaitlisted", "events.WaitlistPromoted"]
    assert history[1]["data"]["freed_by"] == seated["id"]

    # A larger capacity seats the waitlist too; lists come in registration order.
    late = await created(client, registrations, {"organisation_id": iba, "contact_id": anne})
    assert late["status"] == "waitlisted"
    event = await ok(client.patch(path, json={"capacity": 3}, headers={"If-Match": '"2"'}))
    assert (event["registered"], event["waitlisted"]) == (3, 0)
    listed = (await ok(client.get(registrations, params={"status": "registered", "limit": 2})))
    assert [p["id"] for p in listed["data"]] == [second["id"], waiting["id"]]
    rest = await ok(client.get(registrations, params={"status": "registered", "cursor": listed["next_cursor"]}))
    assert [p["id"] for p in rest["data"]] == [late["id"]]

    checked = await ok(client.post(f"{path}/participants/{second['id']}/check-in"))
    assert checked["attendance"] == "checked_in"
    assert problem(await client.post(f"{path}/participants/{second['id']}/no-show"), 409)
    assert (await ok(client.post(f"{path}/participants/{late['id']}/no-show")))["attendance"] == "no_show"
    assert count_events(store, "events.Participant") == 9


async def test_a_registry_that_does_not_answer_is_503_and_nothing_is_written(
        store: Store, client: httpx.AsyncClient, registry: Registry, closed_port: int) -> None:
    biowin = await registry.cluster(BIOWIN)
    iba = await registry.organisation("IBA", member_of=biowin)
    anne = await registry.contact(iba, "Anne Dupont")
    event = await created(client, "/v1/events", event_body([biowin]))
    await ok(client.post(f"/v1/events/{event['id']}/publish"))
    before = count_events(store)
    body = {"organisation_id": iba, "contact_id": anne}

    # A listening socket that never accepts: connections hang until the client's timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(0)
    try:
        for url, timeout in ((f"http://127.0.0.1:{closed_port}", 5.0), (f"http://127.0.0.1:{silent.getsockname()[1]}",
                                                                          0.2)):
            settings = EventsSettings(registry_retries=2, registry_backoff=0.01, retry_after=30)
            async with httpx.AsyncClient(base_url=url, timeout=timeout) as down:
                app = create_app(settings, db=store.db, registry=down)
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                             headers=auth_headers()) as http:
                    response = await http.post(f"/v1/events/{event['id']}/registrations", json=body)
            assert problem(response, 503)["title"] == "Service unavailable"
            assert response.headers["retry-after"] == "30"
    finally:
        silent.close()

    assert count_events(store) == before
    assert (await ok(client.get(f"/v1/events/{event['id']}")))["registered"] == 0
