"""The organiser's auto-scheduler over HTTP: manual placement checks, locks, booths, re-runs, freeze."""
from __future__ import annotations

from collections import Counter
from typing import Any

import httpx

from tests.events.conftest import BIOWIN, Registry, brokerage, created, event_body, fields_named, ok, problem

PEOPLE = {name: f"{name} Medical" for name in ("A", "B", "C", "D", "E", "F", "G")}
PAIRS = [("A", "B"), ("A", "C"), ("A", "D"), ("B", "C"), ("C", "D"), ("E", "F"),
         ("A", "G"), ("B", "G"), ("C", "G"), ("D", "G"), ("E", "G")]  # G holds a booth: five meetings, four slots
SESSION = {"starts_at": "2026-03-10T09:00:00+01:00", "slot_minutes": 25, "slot_count": 4, "tables": 2}


def check_feasible(meetings: list[dict[str, Any]], unavailable: dict[str, set[str]]) -> None:
    placed = [m for m in meetings if m["status"] == "accepted" and m["slot_id"]]
    seats = Counter((p, m["slot_id"]) for m in placed for p in (m["requester_id"], m["receiver_id"]))
    assert max(seats.values()) == 1, "someone is double-booked"
    tables = Counter((m["slot_id"], m["table"]) for m in placed if m["table"])
    assert max(tables.values()) == 1, "a table is double-booked"
    assert all(m["table"] in ("T1", "T2") for m in placed if not m["booth"])
    for m in placed:
        for person in (m["requester_id"], m["receiver_id"]):
            assert m["slot_id"] not in unavailable.get(person, set())


async def test_organiser_schedules_around_locked_meetings_and_booths(client: httpx.AsyncClient,
                                                                    registry: Registry) -> None:
    scene = await brokerage(client, registry, PEOPLE, session=SESSION,
                            b2b={"request_mode": "opt_out", "scheduling_mode": "organiser", "meeting_cap": 10})
    path, p = scene.path, scene.people
    await ok(client.put(f"{path}/participants/{p['G']}/booth", json={"booth": "B1"}))
    await ok(client.put(f"{path}/participants/{p['F']}/availability", json={"unavailable_slots": ["S1-1"]}))
    ids = {}
    for first, second in PAIRS:
        priority = 2 if first == "A" else 1
        meeting = await created(client, f"{path}/meeting-requests",
                                {"requester_id": p[first], "receiver_id": p[second], "priority": priority})
        assert (meeting["status"], meeting["slot_id"]) == ("accepted", None)  # opt-out; the organiser places
        ids[first + second] = meeting["id"]

    def move(key: str, **body: Any) -> Any:
        return client.post(f"{path}/meetings/{ids[key]}/move", json=body)

    placed = await ok(move("AB", slot_id="S1-2", table="T1"))
    assert (placed["slot_id"], placed["table"], placed["booth"]) == ("S1-2", "T1", None)
    assert "table T1 in slot S1-2 is taken" in problem(await move("EF", slot_id="S1-2", table="T1"), 409)["detail"]
    assert "unavailable in slot S1-1" in problem(await move("EF", slot_id="S1-1"), 409)["detail"]
    assert "already meets in slot S1-2" in problem(await move("AC", slot_id="S1-2"), 409)["detail"]
    assert fields_named(await move("AC", slot_id="S1-3", table="T3")) == ["body.table"]
    assert fields_named(await move("AG", slot_id="S1-3", table="T1")) == ["body.table"]  # G meets at the booth
    assert fields_named(await move("AG", slot_id="S7-1")) == ["body.slot_id"]
    at_booth = await ok(move("AG", slot_id="S1-3"))
    assert (at_booth["table"], at_booth["booth"]) == (None, "B1")
    assert problem(await client.post(f"{path}/meetings/{ids['CD']}/lock"), 409)  # nowhere to lock it yet
    assert (await ok(client.post(f"{path}/meetings/{ids['AB']}/lock")))["locked"] is True

    result = await ok(client.post(f"{path}/schedule", json={"time_limit": 2}))
    assert result["upper_bound"] >= result["objective"] > 0
    # G can meet four times at most (four slots): something is left out, each time with the reason why.
    assert result["scheduled"] + len(result["unscheduled"]) == len(PAIRS)
    assert result["unscheduled"] and all(u["reason"] for u in result["unscheduled"])

    meetings = (await ok(client.get(f"{path}/meetings", params={"limit": 100})))["data"]
    check_feasible(meetings, {p["F"]: {"S1-1"}})
    assert sum(1 for m in meetings if m["slot_id"]) == result["scheduled"]
    by_id = {m["id"]: m for m in meetings}
    assert (by_id[ids["AB"]]["slot_id"], by_id[ids["AB"]]["table"]) == ("S1-2", "T1")
    assert all(m["booth"] == "B1" and m["table"] is None for m in meetings if p["G"] in (m["requester_id"],
                                                                                          m["receiver_id"])
               and m["slot_id"])
    history = (await ok(client.get(f"{path}/meetings/{ids['CD']}/history")))["data"]
    assert history[-1]["event_type"] == "events.MeetingScheduled" and history[-1]["data"]["by"] == "scheduler"

    # Locked where they are, C-D and A-B stay put when the scheduler runs again.
    await ok(client.post(f"{path}/meetings/{ids['CD']}/lock"))
    again = await ok(client.post(f"{path}/schedule", json={"time_limit": 1, "seed": 7}))
    assert again["scheduled"] + len(again["unscheduled"]) == len(PAIRS)
    rerun = {m["id"]: m for m in (await ok(client.get(f"{path}/meetings", params={"limit": 100})))["data"]}
    check_feasible(list(rerun.values()), {p["F"]: {"S1-1"}})
    for key in ("AB", "CD"):
        assert (rerun[ids[key]]["slot_id"], rerun[ids[key]]["table"]) == (by_id[ids[key]]["slot_id"],
                                                                         by_id[ids[key]]["table"])
    assert (await ok(client.get(f"{path}/schedule")))["last_run"]["scheduled"] == again["scheduled"]
    agenda = await ok(client.get(f"{path}/participants/{p['G']}/agenda"))
    assert {m["location"] for m in agenda["meetings"]} == {"Booth B1"}

    await ok(client.post(f"{path}/agenda/publish"))
    assert problem(await client.post(f"{path}/schedule", json={"time_limit": 1}), 409)["agenda_published"]
    assert problem(await client.post(f"{path}/meetings/{ids['AB']}/unlock"), 409)
    assert fields_named(await client.post(f"{path}/schedule", json={"time_limit": 61})) == ["body.time_limit"]
    event = await ok(client.post(f"{path}/agenda/unlock"))
    await ok(client.patch(path, json={"b2b": {**event["b2b"], "scheduling_mode": "self"}},
                          headers={"If-Match": f'"{event["version"]}"'}))
    assert "scheduling_mode" in problem(await client.post(f"{path}/schedule"), 409)["detail"]


async def test_moments_out_of_any_plausible_range_are_a_422_not_an_overflow(client: httpx.AsyncClient,
                                                                            registry: Registry) -> None:
    event = await created(client, "/v1/events", event_body([await registry.cluster(BIOWIN)]))
    response = await client.post(f"/v1/events/{event['id']}/b2b-sessions", json={
        "starts_at": "9999-12-31T23:00:00+00:00", "slot_minutes": 240, "slot_count": 96, "tables": 1})
    assert fields_named(response) == ["body.starts_at"]
