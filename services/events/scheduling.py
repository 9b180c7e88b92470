"""The organiser's auto-scheduler: accepted meetings as a scheduler `Instance`, solved off the event
loop, the result applied as meeting events.

Three steps, because solving takes seconds: `take_snapshot` reads (one read transaction),
`propose` runs the solver in a worker thread with no transaction open (SQLite's one writer
must not wait on it), and `apply` writes in one transaction after checking that nothing the
proposal was built from changed meanwhile (else 409: run it again).

Locked meetings stay where they are: they go to the solver as `locked`, everything else
accepted is free to move. Within a slot tables are interchangeable, so a meeting that stays
in its slot keeps its table when it can: a re-run moves only what it must.

Booth holders meet at their booth, so their meetings take no table. The solver knows one
capacity per slot, so booth meetings are scheduled in up to two passes:
1. Relaxed: each slot gets its tables plus one per booth holder (a booth holder is in at most
   one meeting per slot, so booth meetings never need more), booth meetings taking the extra
   "tables" above T<n>. If no slot then holds more table meetings than it has tables, this is
   the schedule.
2. Otherwise the booth meetings are locked where pass 1 put them, each slot gets exactly its
   tables plus the booth meetings it holds, and the table meetings are solved again.
The upper bound reported is pass 1's: a bound on the relaxation bounds the real problem too.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from services.events.domain import Board, Event, Meeting, Slot, lock_event
from services.events.events import MeetingMoved, MeetingUnscheduled, ScheduleGenerated
from services.events.models import ScheduleResult, SchedulingMode, UnscheduledMeeting
from services.events.projections import events, meetings, participants
from services.events.scheduler.formats import Instance, Schedule
from shared.errors import Conflict, NotFound
from shared.eventlog import EventLog, Metadata


@dataclass
class Snapshot:
    event_id: str
    fingerprint: str
    slots: list[Slot]
    meetings: list[dict[str, Any]]  # accepted meetings
    people: list[dict[str, Any]]  # B2B participants: id, unavailable_slots, booth


@dataclass
class Proposal:
    fingerprint: str
    places: dict[str, tuple[str, str | None, str | None]]  # meeting -> (slot, table, booth)
    unscheduled: dict[str, str]  # meeting -> reason
    objective: int
    upper_bound: int
    seconds: float
    passes: list[Schedule] = field(default_factory=list)


def _ready(event: Event) -> None:
    event.live().unfrozen()
    if event.b2b["scheduling_mode"] != SchedulingMode.organiser:
        raise Conflict("participants schedule this event's meetings themselves; set b2b.scheduling_mode to "
                       "organiser to run the scheduler")


def fingerprint(conn: Connection, event_id: str) -> str:
    """Changes whenever anything a schedule depends on changes: the event, a participant, a meeting."""
    digest = hashlib.sha256()
    for table in (events, participants, meetings):
        key = table.c.id if table is events else table.c.event_id
        for row in conn.execute(select(table.c.id, table.c.version).where(key == event_id).order_by(table.c.id)):
            digest.update(f"{row.id}:{row.version};".encode())
    return digest.hexdigest()


def take_snapshot(conn: Connection, event_id: str) -> Snapshot:
    row = conn.execute(select(events).where(events.c.id == event_id)).mappings().first()
    if row is None:
        raise NotFound(f"event {event_id} not found")
    _ready(Event(dict(row)))
    board = Board.load(conn, event_id)
    accepted = conn.execute(select(meetings).where(meetings.c.event_id == event_id, meetings.c.status == "accepted")
                            .order_by(meetings.c.created_at, meetings.c.id)).mappings().all()
    people = conn.execute(select(participants.c.id, participants.c.unavailable_slots, participants.c.booth)
                          .where(participants.c.event_id == event_id, participants.c.b2b.is_(True),
                                 participants.c.status != "cancelled")).mappings().all()
    return Snapshot(event_id, fingerprint(conn, event_id), list(board.slots.values()),
                    [dict(m) for m in accepted], [dict(p) for p in people])


def _instance(snapshot: Snapshot, tables: dict[str, int], locked: list[dict[str, str]]) -> Instance:
    known = {slot.id for slot in snapshot.slots}
    in_meetings = {p for m in snapshot.meetings for p in (m["requester_id"], m["receiver_id"])}
    return Instance.model_validate({
        "slots": [{"id": s.id, "start": s.starts_at, "tables": tables[s.id]} for s in snapshot.slots],
        "participants": [{"id": p["id"], "unavailable": [s for s in p["unavailable_slots"] if s in known]}
                         for p in snapshot.people if p["id"] in in_meetings],
        "meetings": [{"id": m["id"], "participants": [m["requester_id"], m["receiver_id"]],
                      "priority": m["priority"]} for m in snapshot.meetings],
        "locked": locked,
    })


def propose(snapshot: Snapshot, time_limit: float, *, seed: int = 0) -> Proposal:
    """Solve (blocking: run it in a worker thread) and turn the solver's tables into places."""
    from services.events.scheduler import solve

    started = time.monotonic()
    booths = {p["id"]: p["booth"] for p in snapshot.people if p["booth"]}
    booth_of = {m["id"]: booths.get(m["receiver_id"]) or booths.get(m["requester_id"]) for m in snapshot.meetings}
    base = {s.id: s.tables for s in snapshot.slots}
    locked_tables = [{"meeting": m["id"], "slot": m["slot_id"], "table": m["table_name"]}
                     for m in snapshot.meetings if m["locked"] and not booth_of[m["id"]]]
    locked_booths = [m for m in snapshot.meetings if m["locked"] and booth_of[m["id"]]]

    def booth_locks(placed: list[tuple[str, str]]) -> tuple[dict[str, int], list[dict[str, str]]]:
        """Booth meetings (meeting, slot) as locks on extra tables above each slot's own."""
        extra: dict[str, int] = {}
        locks = []
        for meeting_id, slot_id in placed:
            extra[slot_id] = extra.get(slot_id, 0) + 1
            locks.append({"meeting": meeting_id, "slot": slot_id, "table": f"T{base[slot_id] + extra[slot_id]}"})
        return extra, locks

    if not any(booth_of.values()):
        schedule = solve(_instance(snapshot, base, locked_tables), time_limit, seed=seed)
        passes = [schedule]
    else:
        _, locks = booth_locks([(m["id"], m["slot_id"]) for m in locked_booths])
        relaxed = {slot_id: tables + len(booths) for slot_id, tables in base.items()}
        first = solve(_instance(snapshot, relaxed, locked_tables + locks), time_limit / 2, seed=seed)
        passes = [first]
        load: dict[str, int] = {}
        for a in first.assignments:
            if not booth_of[a.meeting]:
                load[a.slot] = load.get(a.slot, 0) + 1
        schedule = first
        if any(load.get(slot_id, 0) > tables for slot_id, tables in base.items()):
            extra, locks = booth_locks([(a.meeting, a.slot) for a in first.assignments if booth_of[a.meeting]])
            exact = {slot_id: tables + extra.get(slot_id, 0) for slot_id, tables in base.items()}
            remaining = max(time_limit - (time.monotonic() - started), 0.5)
            schedule = solve(_instance(snapshot, exact, locked_tables + locks), remaining, seed=seed)
            passes.append(schedule)
    # What went in locked stays, whether or not the solver lists it among its assignments.
    assigned = {m["id"]: m["slot_id"] for m in snapshot.meetings if m["locked"]}
    if len(passes) == 2:
        assigned |= {a.meeting: a.slot for a in passes[0].assignments if booth_of[a.meeting]}
    assigned |= {a.meeting: a.slot for a in schedule.assignments}
    reasons = {u.meeting: u.reason for run in passes for u in run.unscheduled}
    return Proposal(
        fingerprint=snapshot.fingerprint,
        places=_stable_tables(snapshot, assigned, booth_of),
        unscheduled={m["id"]: reasons.get(m["id"], "left out by the scheduler")
                     for m in snapshot.meetings if m["id"] not in assigned},
        objective=schedule.objective, upper_bound=passes[0].upper_bound,
        seconds=round(time.monotonic() - started, 3), passes=passes)


def _stable_tables(snapshot: Snapshot, assigned: dict[str, str],
                   booth_of: dict[str, str | None]) -> dict[str, tuple[str, str | None, str | None]]:
    """Tables for the table meetings: locked ones and those staying in their slot keep theirs."""
    tables = {s.id: s.tables for s in snapshot.slots}
    places: dict[str, tuple[str, str | None, str | None]] = {}
    taken: set[tuple[str, str]] = set()
    by_priority = sorted(snapshot.meetings, key=lambda m: not m["locked"])
    for m in by_priority:
        slot_id = assigned.get(m["id"])
        if slot_id is None:
            continue
        if booth_of[m["id"]]:
            places[m["id"]] = (slot_id, None, booth_of[m["id"]])
        elif m["slot_id"] == slot_id and m["table_name"] and (slot_id, m["table_name"]) not in taken:
            places[m["id"]] = (slot_id, m["table_name"], None)
            taken.add((slot_id, m["table_name"]))
    for m in snapshot.meetings:
        slot_id = assigned.get(m["id"])
        if slot_id is None or m["id"] in places:
            continue
        table = next(f"T{n}" for n in range(1, tables[slot_id] + 1) if (slot_id, f"T{n}") not in taken)
        places[m["id"]] = (slot_id, table, None)
        taken.add((slot_id, table))
    return places


def apply(conn: Connection, log: EventLog, event_id: str, proposal: Proposal, time_limit: float,
          metadata: Metadata) -> ScheduleResult:
    """Write the proposal as meeting events, if the event is as it was when the proposal was made."""
    event = lock_event(conn, event_id)
    _ready(event)
    if fingerprint(conn, event_id) != proposal.fingerprint:
        raise Conflict("meetings or participants changed while the scheduler ran; run it again")
    board = Board.load(conn, event_id)
    # Re-check every place on a board holding only the new schedule: a solver bug must not
    # double-book anyone.
    check = board.cleared()
    rows = conn.execute(select(meetings).where(meetings.c.event_id == event_id, meetings.c.status == "accepted")
                        .order_by(meetings.c.created_at, meetings.c.id)).mappings().all()
    moved = scheduled = 0
    for row in rows:
        meeting = Meeting(dict(row))
        target = proposal.places.get(meeting.id)
        if target is None:
            if meeting.placed:
                reason = proposal.unscheduled.get(meeting.id, "left out by the scheduler")
                meeting.save(conn, log, [MeetingUnscheduled(
                    meeting_id=meeting.id, event_id=event_id, participant_ids=meeting.participant_ids,
                    from_slot_id=row["slot_id"], reason=reason)], metadata)
            continue
        slot_id, table, booth = target
        place = check.place_at(meeting, slot_id, table)
        if (place.table, place.booth) != (table, booth):
            raise RuntimeError(f"scheduler placed meeting {meeting.id} inconsistently: {target} vs {place}")
        check.take(meeting, place)
        new_events = meeting.place(place, by="scheduler")
        moved += sum(1 for e in new_events if isinstance(e, MeetingMoved))
        scheduled += 1
        meeting.save(conn, log, new_events, metadata)
    unscheduled = [UnscheduledMeeting(meeting_id=m, reason=r) for m, r in proposal.unscheduled.items()]
    event.save(conn, log, [ScheduleGenerated(
        event_id=event_id, time_limit=time_limit, objective=proposal.objective, upper_bound=proposal.upper_bound,
        scheduled=scheduled, unscheduled=[{"meeting": u.meeting_id, "reason": u.reason} for u in unscheduled])],
        metadata)
    return ScheduleResult(objective=proposal.objective, upper_bound=proposal.upper_bound, scheduled=scheduled,
                          moved=moved, unscheduled=unscheduled, seconds=proposal.seconds)
