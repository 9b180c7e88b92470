"""An independent check of a schedule against its instance, from the file formats alone.

It shares no code with the solver on purpose: the tests and the benchmark run every schedule
through it.
"""
from __future__ import annotations

from collections import Counter

from services.events.scheduler.formats import Instance, Schedule


def check_schedule(instance: Instance, schedule: Schedule) -> list[str]:
    """Every rule the schedule breaks, as readable lines; empty when it is valid."""
    errors: list[str] = []
    slots = {s.id: s for s in instance.slots}
    meetings = {m.id: m for m in instance.meetings}
    away = {p.id: set(p.unavailable) for p in instance.participants}

    seen = Counter(a.meeting for a in schedule.assignments) + Counter(u.meeting for u in schedule.unscheduled)
    for mid in meetings:
        if seen[mid] != 1:
            errors.append(f"meeting {mid} appears {seen[mid]} times (assigned + unscheduled), not once")
    for mid in seen.keys() - meetings.keys():
        errors.append(f"unknown meeting {mid}")

    tables_used: set[tuple[str, str]] = set()
    people_used: dict[tuple[str, str], str] = {}
    for a in schedule.assignments:
        if a.slot not in slots or a.meeting not in meetings:
            errors.append(f"{a.meeting}: unknown slot {a.slot} or meeting")
            continue
        n = slots[a.slot].tables
        if a.table not in {f"T{i}" for i in range(1, n + 1)}:
            errors.append(f"{a.meeting}: table {a.table} is not one of slot {a.slot}'s {n} tables")
        if (a.slot, a.table) in tables_used:
            errors.append(f"{a.meeting}: table {a.table} of slot {a.slot} is used twice")
        tables_used.add((a.slot, a.table))
        for p in meetings[a.meeting].participants:
            if a.slot in away[p]:
                errors.append(f"{a.meeting}: participant {p} is unavailable in slot {a.slot}")
            if (p, a.slot) in people_used:
                errors.append(f"{a.meeting}: participant {p} is also in {people_used[p, a.slot]} in slot {a.slot}")
            people_used[p, a.slot] = a.meeting

    placed = {a.meeting: a for a in schedule.assignments}
    for lock in instance.locked:
        got = placed.get(lock.meeting)
        if got is None or (got.slot, got.table) != (lock.slot, lock.table):
            errors.append(f"locked meeting {lock.meeting} is not in slot {lock.slot} at table {lock.table}")

    weight = sum(meetings[a.meeting].priority for a in schedule.assignments if a.meeting in meetings)
    if schedule.objective != weight:
        errors.append(f"objective {schedule.objective} is not the scheduled weight {weight}")
    if schedule.upper_bound < schedule.objective:
        errors.append(f"upper bound {schedule.upper_bound} is below the objective {schedule.objective}")
    return errors
