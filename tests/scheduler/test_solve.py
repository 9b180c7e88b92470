"""Schedules are valid, optimal where brute force can tell, and explain what they leave out."""
from __future__ import annotations

import itertools
import random
import time

import pytest

from services.events.scheduler import check_schedule, parse_instance, solve
from services.events.scheduler.bound import LpBound, degree_bound, floor_bound, formulate
from services.events.scheduler.heuristics import first_come_first_served
from services.events.scheduler.problem import compile_problem
from services.events.scheduler.synthetic import brokerage_instance


def slots(n: int, tables: int | list[int] = 1) -> list[dict]:
    counts = tables if isinstance(tables, list) else [tables] * n
    return [{"id": f"s{i + 1}", "start": f"2026-03-10T{9 + i:02d}:00:00Z", "tables": counts[i]} for i in range(n)]


def people(n: int, away: dict[str, list[str]] | None = None) -> list[dict]:
    away = away or {}
    return [{"id": f"p{i + 1}", "unavailable": away.get(f"p{i + 1}", [])} for i in range(n)]


def meetings(*pairs: tuple, priorities: list[int] | None = None) -> list[dict]:
    return [{"id": f"m{i + 1}", "participants": list(pair), "priority": (priorities or [1] * len(pairs))[i]}
            for i, pair in enumerate(pairs)]


def tiny_random(rng: random.Random) -> dict:
    n_slots, n_people = rng.randint(2, 4), rng.randint(3, 6)
    data = {
        "slots": slots(n_slots, [rng.randint(0, 2) for _ in range(n_slots)]),
        "participants": [{"id": f"p{i + 1}", "unavailable": [f"s{s + 1}" for s in range(n_slots) if rng.random() < 0.2]}
                         for i in range(n_people)],
        "meetings": [],
    }
    for i in range(rng.randint(3, 7)):
        size = 3 if rng.random() < 0.15 else 2
        data["meetings"].append({"id": f"m{i + 1}", "participants": [f"p{k + 1}" for k in rng.sample(range(n_people), size)],
                                 "priority": rng.randint(1, 3)})
    away = {p["id"]: set(p["unavailable"]) for p in data["participants"]}
    first = data["meetings"][0]
    options = [s["id"] for s in data["slots"] if s["tables"] and not any(s["id"] in away[p] for p in first["participants"])]
    if options and rng.random() < 0.5:
        data["locked"] = [{"meeting": first["id"], "slot": rng.choice(options), "table": "T1"}]
    return data


def brute_force(data: dict) -> int:
    slot_ids = [s["id"] for s in data["slots"]]
    tables = {s["id"]: s["tables"] for s in data["slots"]}
    away = {p["id"]: set(p.get("unavailable", [])) for p in data["participants"]}
    locked = {lock["meeting"]: lock["slot"] for lock in data.get("locked", [])}
    best = 0
    for choice in itertools.product([None, *slot_ids], repeat=len(data["meetings"])):
        if any(choice[i] != locked.get(m["id"], choice[i]) for i, m in enumerate(data["meetings"])):
            continue
        used, load, value = set(), dict.fromkeys(slot_ids, 0), 0
        for meeting, slot in zip(data["meetings"], choice):
            if slot is None:
                continue
            load[slot] += 1
            value += meeting["priority"]
            for p in meeting["participants"]:
                if slot in away[p] or (p, slot) in used:
                    value = -1
                used.add((p, slot))
        if value > best and all(load[s] <= tables[s] for s in slot_ids):
            best = value
    return best


def test_tiny_instances_reach_the_brute_force_optimum_and_the_bound_holds() -> None:
    rng = random.Random(7)
    for _ in range(40):
        data = tiny_random(rng)
        instance = parse_instance(data)
        schedule = solve(instance, 1.0)
        assert check_schedule(instance, schedule) == []
        optimum = brute_force(data)
        assert schedule.objective == optimum
        assert schedule.upper_bound >= optimum


def test_locked_meetings_stay_and_the_rest_works_around_them() -> None:
    data = {
        "slots": slots(3, 1),
        "participants": people(4),
        "meetings": meetings(("p1", "p2"), ("p1", "p3"), ("p2", "p3"), ("p3", "p4"), priorities=[1, 5, 5, 5]),
        # Locking the light meeting in s2 costs: without the lock the three heavy ones fit.
        "locked": [{"meeting": "m1", "slot": "s2", "table": "T1"}],
    }
    instance = parse_instance(data)
    schedule = solve(instance, 1.0)
    assert check_schedule(instance, schedule) == []
    placed = {a.meeting: (a.slot, a.table) for a in schedule.assignments}
    assert placed["m1"] == ("s2", "T1")
    assert schedule.objective == 1 + 5 + 5 and schedule.upper_bound == 11


def test_unlocked_meetings_take_the_tables_the_locks_leave() -> None:
    data = {
        "slots": slots(1, 3),
        "participants": people(6),
        "meetings": meetings(("p1", "p2"), ("p3", "p4"), ("p5", "p6")),
        "locked": [{"meeting": "m3", "slot": "s1", "table": "T2"}],
    }
    schedule = solve(parse_instance(data), 1.0)
    tables = {a.meeting: a.table for a in schedule.assignments}
    assert tables == {"m1": "T1", "m2": "T3", "m3": "T2"}


def test_availability_is_respected() -> None:
    data = {
        "slots": slots(3, 2),
        "participants": people(3, away={"p1": ["s1", "s2"], "p2": ["s3"]}),
        "meetings": meetings(("p1", "p2"), ("p1", "p3"), ("p2", "p3")),
    }
    instance = parse_instance(data)
    schedule = solve(instance, 1.0)
    assert check_schedule(instance, schedule) == []
    placed = {a.meeting: a.slot for a in schedule.assignments}
    assert placed == {"m2": "s3", "m3": placed["m3"]} and placed["m3"] in {"s1", "s2"}
    assert [u.model_dump() for u in schedule.unscheduled] == [
        {"meeting": "m1", "reason": "participants p1 and p2 have no available slot in common"}]


def test_each_left_out_meeting_says_why() -> None:
    data = {
        "slots": slots(2, [1, 2]),
        "participants": people(8, away={"p7": ["s1", "s2"]}),
        "meetings": meetings(
            ("p1", "p2"), ("p1", "p3"), ("p1", "p4"),   # p1 has two slots and three requests
            ("p5", "p6"), ("p3", "p4"),                 # tables: s1 has one, s2 two
            ("p7", "p8"),                               # p7 is never available
            priorities=[3, 3, 1, 1, 2, 1]),
    }
    instance = parse_instance(data)
    schedule = solve(instance, 1.0)
    assert check_schedule(instance, schedule) == []
    assert schedule.objective == schedule.upper_bound == 3 + 3 + 2
    reasons = {u.meeting: u.reason for u in schedule.unscheduled}
    assert reasons["m3"] == "participant p1 is full (2 meetings in 2 available slots)"
    assert reasons["m4"].startswith("all tables are full in the common free slots (")
    assert reasons["m6"] == "participant p7 is unavailable in every slot"


def test_no_free_common_slot_is_named() -> None:
    # p1 must meet p3 and p5 in s1 and s2 (all they can do); p1 and p2 share only s1 and s2.
    away = {"p1": ["s4"], "p2": ["s3"], "p3": ["s3", "s4"], "p5": ["s3", "s4"]}
    data = {
        "slots": slots(4, 5),
        "participants": people(5, away=away),
        "meetings": meetings(("p1", "p3"), ("p1", "p5"), ("p1", "p2"), priorities=[2, 2, 1]),
    }
    schedule = solve(parse_instance(data), 1.0)
    assert schedule.objective == 4
    assert [u.model_dump() for u in schedule.unscheduled] == [{
        "meeting": "m3",
        "reason": "participant p1 has no free common slot with p2 (all 2 common available slots are taken "
                  "by other meetings)"}]


def test_equal_weights_prefer_fewer_idle_gaps() -> None:
    data = {
        "slots": slots(4, 4),
        "participants": people(5),
        "meetings": meetings(("p1", "p2"), ("p1", "p3"), ("p1", "p4"), ("p5", "p2")),
    }
    schedule = solve(parse_instance(data), 1.0)
    p1 = sorted(a.slot for a in schedule.assignments if a.meeting in {"m1", "m2", "m3"})
    assert p1 in (["s1", "s2", "s3"], ["s2", "s3", "s4"])
    p2 = sorted(a.slot for a in schedule.assignments if a.meeting in {"m1", "m4"})
    assert int(p2[1][1]) - int(p2[0][1]) == 1


@pytest.mark.parametrize(("size", "tables", "seed"), [
    ((60, 150, 8), "tight", 1), ((60, 150, 8), "loose", 2), ((150, 400, 12), "tight", 3), ((150, 400, 12), "loose", 4),
])
def test_generated_instances_are_valid_beat_fcfs_and_stay_under_the_bound(size, tables, seed) -> None:
    instance = brokerage_instance(*size, tables=tables, seed=seed)
    schedule = solve(instance, 1.5)
    assert check_schedule(instance, schedule) == []
    fcfs = first_come_first_served(compile_problem(instance)).value
    assert fcfs <= schedule.objective <= schedule.upper_bound
    assert len(schedule.assignments) + len(schedule.unscheduled) == len(instance.meetings)
    assert all(u.reason for u in schedule.unscheduled)


def test_generated_instance_with_locks_keeps_them() -> None:
    instance = brokerage_instance(80, 200, 10, tables="tight", seed=5)
    first = solve(instance, 1.0)
    locks = [{"meeting": a.meeting, "slot": a.slot, "table": a.table} for a in first.assignments[::4]]
    locked = parse_instance({**instance.model_dump(mode="json"), "locked": locks})
    second = solve(locked, 1.0)
    assert check_schedule(locked, second) == []
    placed = {a.meeting: {"meeting": a.meeting, "slot": a.slot, "table": a.table} for a in second.assignments}
    assert all(placed[lock["meeting"]] == lock for lock in locks)


def test_the_time_limit_is_kept() -> None:
    instance = brokerage_instance(1500, 6000, 20, tables="loose", seed=11)
    started = time.monotonic()
    schedule = solve(instance, 2.0)
    assert time.monotonic() - started < 3.5
    assert check_schedule(instance, schedule) == []
    assert schedule.objective >= first_come_first_served(compile_problem(instance)).value


def test_every_bound_is_at_least_the_brute_force_optimum() -> None:
    rng = random.Random(11)
    for _ in range(40):
        data = tiny_random(rng)
        problem = compile_problem(parse_instance(data))
        optimum = brute_force(data) - problem.locked_weight
        lp = LpBound(formulate(problem), time_limit=5.0).start().wait()
        assert floor_bound(lp.bound) >= optimum
        assert floor_bound(degree_bound(problem)) >= optimum
