"""B2B meetings where participants schedule themselves: requests, caps, slots, agendas, freeze, outcomes."""
from __future__ import annotations

import csv
import io

import httpx
from icalendar import Calendar

from tests.events.conftest import Registry, brokerage, created, fields_named, ok, problem

PEOPLE = {"Anne": "Ion Beam Applications", "Bruno": "Guerbet", "Chloe": "Université de Liège",
          "Dirk": "Materialise", "Eva": "<script>alert(1)</script> Labs"}
SESSION = {"title": "Morning meetings", "starts_at": "2026-03-10T09:00:00+01:00", "slot_minutes": 30,
           "slot_count": 3, "tables": 1, "room": "Hall 2"}


async def test_self_scheduled_meetings_from_request_to_outcome(client: httpx.AsyncClient,
                                                               registry: Registry) -> None:
    scene = await brokerage(client, registry, PEOPLE, b2b={"meeting_cap": 2}, session=SESSION)
    path, p = scene.path, scene.people
    requests, meetings = f"{path}/meeting-requests", f"{path}/meetings"

    # Profiles need If-Match; browsing finds them by any word.
    profile = f"{path}/participants/{p['Anne']}/profile"
    offer = {"offer": "Proton therapy systems", "seek": "Hospital partners", "keywords": ["cyclotron"]}
    assert problem(await client.put(profile, json=offer), 428)
    assert (await client.put(profile, json=offer, headers={"If-Match": '"1"'})).headers["etag"] == '"2"'
    found = (await ok(client.get(f"{path}/participants", params={"q": "PROTON hospital"})))["data"]
    assert [(c["id"], c["keywords"]) for c in found] == [(p["Anne"], ["cyclotron"])]
    assert "email" not in found[0]

    availability = f"{path}/participants/{p['Bruno']}/availability"
    assert fields_named(await client.put(availability, json={"unavailable_slots": ["S9-1"]})) == [
        "body.unavailable_slots.0"]
    await ok(client.put(availability, json={"unavailable_slots": ["S1-1"]}))

    anne_bruno = await created(client, requests, {"requester_id": p["Anne"], "receiver_id": p["Bruno"],
                                                  "message": "Contrast agents for proton imaging?"})
    assert (anne_bruno["status"], anne_bruno["receiver_name"], anne_bruno["slot_id"]) == (
        "requested", "Bruno Tester", None)
    assert problem(await client.post(requests, json={"requester_id": p["Bruno"], "receiver_id": p["Anne"]}), 409)[
        "meeting_id"] == anne_bruno["id"]
    assert fields_named(await client.post(requests, json={"requester_id": p["Anne"], "receiver_id": p["Anne"]})) == [
        "body.receiver_id"]
    assert fields_named(await client.post(requests, json={"requester_id": p["Anne"], "receiver_id": "nobody"})) == [
        "body.receiver_id"]

    # Accepting takes the first common free slot (Bruno is away in S1-1).
    accepted = await ok(client.post(f"{requests}/{anne_bruno['id']}/accept"))
    assert (accepted["status"], accepted["slot_id"], accepted["table"], accepted["starts_at"]) == (
        "accepted", "S1-2", "T1", "2026-03-10T08:30:00Z")

    chloe_dirk = await created(client, requests, {"requester_id": p["Chloe"], "receiver_id": p["Dirk"]})
    taken = await client.post(f"{requests}/{chloe_dirk['id']}/accept", json={"slot_id": "S1-2"})
    assert "every table in slot S1-2 is taken" in problem(taken, 409)["detail"]
    assert (await ok(client.post(f"{requests}/{chloe_dirk['id']}/accept", json={"slot_id": "S1-1"})))["slot_id"] == \
        "S1-1"
    anne_chloe = await created(client, requests, {"requester_id": p["Anne"], "receiver_id": p["Chloe"]})
    assert (await ok(client.post(f"{requests}/{anne_chloe['id']}/accept")))["slot_id"] == "S1-3"

    # Anne has reached the cap of two meetings.
    eva_anne = await created(client, requests, {"requester_id": p["Eva"], "receiver_id": p["Anne"]})
    assert problem(await client.post(f"{requests}/{eva_anne['id']}/accept"), 409)["meeting_cap"] == 2
    assert problem(await client.post(requests, json={"requester_id": p["Anne"], "receiver_id": p["Dirk"]}), 409)
    declined = await ok(client.post(f"{requests}/{eva_anne['id']}/decline", json={"reason": "Fully booked"}))
    assert (declined["status"], declined["decline_reason"]) == ("declined", "Fully booked")
    assert problem(await client.put(availability, json={"unavailable_slots": ["S1-1", "S1-2"]}), 409)[
        "meeting_id"] == anne_bruno["id"]

    # No common free slot: accepted, unplaced, until the organiser places it by hand.
    eva_dirk = await created(client, requests, {"requester_id": p["Eva"], "receiver_id": p["Dirk"]})
    assert (await ok(client.post(f"{requests}/{eva_dirk['id']}/accept")))["slot_id"] is None
    afternoon = await created(client, f"{path}/b2b-sessions", {**SESSION, "starts_at": "2026-03-10T14:00:00+01:00",
                                                               "slot_count": 2, "tables": 2, "room": None})
    assert [s["id"] for s in afternoon["slots"]] == ["S2-1", "S2-2"]
    overlapping = await client.post(f"{path}/b2b-sessions", json={**SESSION, "starts_at": "2026-03-10T09:45:00+01:00"})
    assert problem(overlapping, 409)["slot_id"] == "S1-2"
    placed = await ok(client.post(f"{meetings}/{eva_dirk['id']}/move", json={"slot_id": "S2-1", "table": "T2"}))
    assert (placed["slot_id"], placed["table"]) == ("S2-1", "T2")

    agenda = await ok(client.get(f"{path}/participants/{p['Anne']}/agenda"))
    assert agenda["final"] is False
    assert [(m["slot_id"], m["location"], m["counterpart"]["name"]) for m in agenda["meetings"]] == [
        ("S1-2", "Table T1, Hall 2", "Bruno Tester"), ("S1-3", "Table T1, Hall 2", "Chloe Tester")]
    ics = await client.get(f"{path}/participants/{p['Anne']}/agenda.ics")
    assert ics.headers["content-type"].startswith("text/calendar")
    vevents = Calendar.from_ical(ics.content).walk("VEVENT")
    assert [(str(v["LOCATION"]), str(v["STATUS"])) for v in vevents] == [
        ("Table T1, Hall 2, Liège Expo", "TENTATIVE")] * 2
    assert "Bruno Tester (Guerbet)" in str(vevents[0]["SUMMARY"])
    assert vevents[0].decoded("DTSTART").isoformat() == "2026-03-10T08:30:00+00:00"
    page = await client.get(f"{path}/participants/{p['Dirk']}/agenda", params={"format": "html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Labs" in page.text and "<script>" not in page.text
    assert "09:00&ndash;09:30" in page.text  # local time in Brussels

    # The final agenda freezes the schedule until it is unlocked.
    assert (await ok(client.post(f"{path}/agenda/publish")))["agenda_published"] is True
    frozen = [await client.post(f"{meetings}/{eva_dirk['id']}/move", json={"slot_id": "S2-2"}),
              await client.post(f"{meetings}/{anne_chloe['id']}/cancel"),
              await client.post(f"{meetings}/{anne_chloe['id']}/lock"),
              await client.put(availability, json={"unavailable_slots": []})]
    assert {problem(r, 409)["agenda_published"] for r in frozen} == {True}
    calendar = Calendar.from_ical((await client.get(f"{path}/participants/{p['Anne']}/agenda?format=ics")).content)
    assert {str(v["STATUS"]) for v in calendar.walk("VEVENT")} == {"CONFIRMED"}
    await ok(client.post(f"{path}/agenda/unlock", json={"reason": "Chloé leaves early"}))
    cancelled = await ok(client.post(f"{meetings}/{anne_chloe['id']}/cancel", json={"by": p["Chloe"]}))
    assert (cancelled["status"], cancelled["cancelled_by"], cancelled["slot_id"]) == ("cancelled", p["Chloe"], None)

    # Opt-out: a request is accepted (and placed) on arrival.
    event = await ok(client.get(path))
    await ok(client.patch(path, json={"b2b": {**event["b2b"], "request_mode": "opt_out"}},
                          headers={"If-Match": f'"{event["version"]}"'}))
    chloe_bruno = await created(client, requests, {"requester_id": p["Chloe"], "receiver_id": p["Bruno"]})
    assert (chloe_bruno["status"], chloe_bruno["slot_id"], chloe_bruno["table"]) == ("accepted", "S1-3", "T1")

    # Dirk leaves: his meetings go, even under a published agenda.
    await ok(client.post(f"{path}/agenda/publish"))
    await ok(client.post(f"{path}/registrations/{p['Dirk']}/cancel"))
    dirk = (await ok(client.get(meetings, params={"participant_id": p["Dirk"]})))["data"]
    assert {(m["status"], m["cancel_reason"]) for m in dirk} == {("cancelled", "registration cancelled")}

    outcome = f"{meetings}/{anne_bruno['id']}/outcome"
    assert fields_named(await client.post(outcome, json={"participant_id": p["Eva"], "outcome": "held"})) == [
        "body.participant_id"]
    assert fields_named(await client.post(outcome, json={"participant_id": p["Anne"], "outcome": "great"})) == [
        "body.outcome"]
    await ok(client.post(outcome, json={"participant_id": p["Anne"], "outcome": "follow_up_planned",
                                        "note": "Send samples"}))
    reported = await ok(client.post(outcome, json={"participant_id": p["Bruno"], "outcome": "held"}))
    assert sorted(o["outcome"] for o in reported["outcomes"]) == ["follow_up_planned", "held"]
    assert problem(await client.post(f"{meetings}/{eva_anne['id']}/outcome",
                                     json={"participant_id": p["Anne"], "outcome": "held"}), 409)

    history = (await ok(client.get(f"{meetings}/{anne_bruno['id']}/history")))["data"]
    assert [e["event_type"].removeprefix("events.") for e in history] == [
        "MeetingRequested", "MeetingAccepted", "MeetingScheduled", "MeetingOutcomeRecorded", "MeetingOutcomeRecorded"]

    stats = await ok(client.get(f"{path}/statistics"))
    assert {k: stats[k] for k in ("registered", "cancelled", "b2b_participants", "requests", "accepted", "declined",
                                  "cancelled_meetings", "scheduled", "held", "follow_ups", "partnerships")} == {
        "registered": 4, "cancelled": 1, "b2b_participants": 4, "requests": 6, "accepted": 2, "declined": 1,
        "cancelled_meetings": 3, "scheduled": 2, "held": 1, "follow_ups": 1, "partnerships": 0}
    exported = await client.get(f"{path}/statistics", params={"format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["metric", "value"] and ["requests", "6"] in rows and ["held", "1"] in rows
