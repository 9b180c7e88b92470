"""Bad instances are refused with the offending field named, before any solving."""
from __future__ import annotations

import pytest

from services.events.scheduler import InvalidInstance, parse_instance, solve
from shared.errors import InvalidInput


def instance(**changes) -> dict:
    data = {
        "slots": [{"id": "s1", "start": "2026-03-10T09:00:00Z", "tables": 2},
                  {"id": "s2", "start": "2026-03-10T09:30:00Z", "tables": 1}],
        "participants": [{"id": "p1"}, {"id": "p2", "unavailable": ["s2"]}, {"id": "p3"}],
        "meetings": [{"id": "m1", "participants": ["p1", "p2"], "priority": 2},
                     {"id": "m2", "participants": ["p1", "p3"]},
                     {"id": "m3", "participants": ["p2", "p3"]}],
        "locked": [],
    }
    data.update(changes)
    return data


def refusal(data: dict) -> InvalidInstance:
    with pytest.raises(InvalidInstance) as caught:
        solve(parse_instance(data), 1.0)
    return caught.value


def test_a_valid_instance_passes() -> None:
    assert solve(parse_instance(instance()), 1.0).objective == 3


def test_refusals_are_422_problems_naming_the_field() -> None:
    error = refusal(instance(participants=[{"id": "p1"}, {"id": "p2", "unavailable": ["s9"]}, {"id": "p3"}]))
    assert isinstance(error, InvalidInput) and error.status == 422
    assert error.extensions["errors"] == [{"field": "participants[1].unavailable[0]", "message": "unknown slot 's9'"}]
    assert error.detail == "participants[1].unavailable[0]: unknown slot 's9'"


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"slots": [{"id": "s1", "start": "2026-03-10T09:00:00Z", "tables": 2},
                {"id": "s1", "start": "2026-03-10T09:30:00Z", "tables": 1}]},
     "slots[1].id", "duplicate slot id 's1'"),
    ({"participants": [{"id": "p1"}, {"id": "p1"}, {"id": "p3"}]}, "participants[1].id", "duplicate participant"),
    ({"meetings": [{"id": "m1", "participants": ["p1", "p2"]}, {"id": "m1", "participants": ["p1", "p3"]}]},
     "meetings[1].id", "duplicate meeting id 'm1'"),
    ({"meetings": [{"id": "m1", "participants": ["p1", "p7"]}]}, "meetings[0].participants[1]",
     "unknown participant 'p7'"),
    ({"meetings": [{"id": "m1", "participants": ["p1", "p1"]}]}, "meetings[0].participants[1]", "listed twice"),
    ({"participants": [{"id": "p1", "unavailable": ["s1", "s1"]}, {"id": "p2"}, {"id": "p3"}]},
     "participants[0].unavailable[1]", "listed twice"),
    ({"meetings": [{"id": "m1", "participants": ["p1"]}]}, "meetings[0].participants", "at least 2"),
    ({"meetings": [{"id": "m1", "participants": ["p1", "p2"], "priority": 0}]}, "meetings[0].priority",
     "greater than or equal to 1"),
    ({"meetings": [{"id": "m1", "participants": ["p1", "p2"], "priority": 1.5}]}, "meetings[0].priority", "integer"),
    ({"meetings": [{"id": "m1", "participants": ["p1", "p2"], "priority": "2"}]}, "meetings[0].priority", "integer"),
    ({"slots": [{"id": "s1", "start": "2026-03-10T09:00:00Z", "tables": -1}]}, "slots[0].tables",
     "greater than or equal to 0"),
    ({"slots": [{"id": "s1", "start": "not a time", "tables": 1}]}, "slots[0].start", "datetime"),
    ({"participants": [{"id": "p1", "unavailble": ["s1"]}]}, "participants[0].unavailble", "not permitted"),
    ({"slots": [{"id": "s1", "start": "2026-03-10T09:00:00Z", "tables": 2},
                {"id": "s2", "start": "2026-03-10T09:30:00", "tables": 1}]}, "slots[1].start", "UTC offset"),
    ({"meetings": None}, "meetings", "valid list"),
    ({"locked": [{"meeting": "m9", "slot": "s1", "table": "T1"}]}, "locked[0].meeting", "unknown meeting 'm9'"),
    ({"locked": [{"meeting": "m1", "slot": "s9", "table": "T1"}]}, "locked[0].slot", "unknown slot 's9'"),
    ({"locked": [{"meeting": "m1", "slot": "s1", "table": "T3"}]}, "locked[0].table", "does not exist in slot 's1'"),
    ({"locked": [{"meeting": "m1", "slot": "s1", "table": "T0"}]}, "locked[0].table", "(tables T1..T2)"),
    ({"locked": [{"meeting": "m1", "slot": "s1", "table": "table 1"}]}, "locked[0].table", "does not exist"),
    ({"locked": [{"meeting": "m1", "slot": "s1", "table": "T1"}, {"meeting": "m1", "slot": "s1", "table": "T2"}]},
     "locked[1].meeting", "already locked by locked[0]"),
    ({"locked": [{"meeting": "m1", "slot": "s1", "table": "T1"}, {"meeting": "m2", "slot": "s1", "table": "T2"}]},
     "locked[1]", "participant 'p1' is double-booked in slot 's1'"),
    ({"locked": [{"meeting": "m2", "slot": "s1", "table": "T1"}, {"meeting": "m3", "slot": "s1", "table": "T1"}]},
     "locked[1].table", "already taken by locked[0]"),
    ({"locked": [{"meeting": "m1", "slot": "s2", "table": "T1"}]}, "locked[0]",
     "participant 'p2' is unavailable in slot 's2'"),
])
def test_each_refusal_names_its_field(changes: dict, field: str, words: str) -> None:
    error = refusal(instance(**changes))
    assert error.extensions["errors"][0]["field"] == field
    assert words in error.extensions["errors"][0]["message"]


def test_optional_parts_may_be_absent() -> None:
    data = instance()
    del data["locked"]
    data["meetings"] = [{"id": "m1", "participants": ["p1", "p3"]}]
    schedule = solve(parse_instance(data), 1.0)
    assert (schedule.objective, schedule.upper_bound) == (1, 1)


def test_an_empty_event_gives_an_empty_schedule() -> None:
    schedule = solve(parse_instance({"slots": [], "participants": [], "meetings": []}), 1.0)
    assert schedule.model_dump() == {"assignments": [], "unscheduled": [], "objective": 0, "upper_bound": 0}
