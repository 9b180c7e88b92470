"""The organiser's auto-scheduler: accepted meetings as a scheduler `Instance`, solved off the event
loop, the result applied as meeting events.

Three steps, because solving takes seconds: `take_snapshot` reads (one read transaction),
`propose` runs the solver in a worker thread with no transaction open (SQLite's one writer
must not wait on it), and `apply` writes in one transaction after checking that nothing the
proposal was built from changed meanwhile (else 409: run it again).

Locked meetings stay where they are: they go to the solver as `locked`, everything else
accepted is free to move. Within a slot tables are interchangeable, so a meeting that stays
in its slot keeps its table when it can: a re-run moves only what it must.

Booth holders meet at their booth, so their meetings take no table, but the solver knows one
capacity per slot for all meetings. The encoding (`encode`) makes that capacity exact in one
solve: each slot gets its tables plus one place per booth holder available then, and every
(booth holder, slot) gets a filler meeting (the holder and a dummy who can only come then)
worth W, more than all real meetings together; a booth meeting is worth its priority plus W.
An optimal answer then occupies every booth holder in every slot they are available, with a
real booth meeting or else a filler, so booth meetings and fillers use exactly the extra
places and table meetings get exactly the tables; among such answers it maximises the real
priorities. Objective and bound are reported net of W. Two booth holders meeting each other
free one extra place; an answer cut short by the time limit may leave a filler out: in both
cases a slot could get one table meeting too many, and `_tables` leaves the lowest priority
out ("every table in its slot is taken"), so what is written is always feasible.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from services.events.board import Board, Slot
from services.events.domain import Event, Meeting, lock_event
from services.events.events import MeetingMoved, MeetingUnscheduled, ScheduleGenerated
from services.events.models import ScheduleResult, SchedulingMode, UnscheduledMeeting
from services.events.projections import events, meetings, participants
from services.events.scheduler.formats import Instance, Schedule
from shared.errors import Conflict, NotFound
from shared.eventlog import EventLog, Metadata
from shared.metrics import timed_scheduler_run


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
    schedule: Schedule | None = None  # the solver's own answer, in the encoding's terms


def _ready(event: Event) -> None:
    event.live().unfrozen()
    if event.b2b()["scheduling_mode"] != SchedulingMode.organiser:
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


FILLER = "~booth"  # prefix of the encoding's own meeting and participant ids (never a uuid)


@dataclass
class Encoding:
    """The solver's instance for a snapshot, and how to read its answer back."""

    instance: Instance
    booth_of: dict[str, str | None]  # meeting -> booth (None: a table meeting)
    weight: dict[str, int]  # real meeting -> its own priority
    bonus: int  # W: what covering one (booth holder, slot) is worth
    covered: int  # (booth holder, slot) pairs an optimal answer covers


def encode(snapshot: Snapshot) -> Encoding:
    """Booth meetings take no table: each slot's capacity is its tables plus one per booth holder
    free then, and fillers (worth W, more than all meetings together) occupy every booth holder's
    otherwise idle slots, so an optimal answer leaves exactly the tables for table meetings."""
    known = {slot.id for slot in snapshot.slots}
    in_meetings = {p for m in snapshot.meetings for p in (m["requester_id"], m["receiver_id"])}
    people = {p["id"]: p for p in snapshot.people if p["id"] in in_meetings}
    unavailable = {pid: {s for s in p["unavailable_slots"] if s in known} for pid, p in people.items()}
    holders = {pid: p["booth"] for pid, p in people.items() if p["booth"]}
    booth_of = {m["id"]: holders.get(m["receiver_id"]) or holders.get(m["requester_id"]) for m in snapshot.meetings}
    weight = {m["id"]: m["priority"] for m in snapshot.meetings}
    bonus = sum(weight.values()) + 1
    holders_in = {m["id"]: sum(1 for p in (m["requester_id"], m["receiver_id"]) if p in holders)
                  for m in snapshot.meetings}

    meetings = [{"id": m["id"], "participants": [m["requester_id"], m["receiver_id"]],
                 "priority": weight[m["id"]] + bonus * holders_in[m["id"]]} for m in snapshot.meetings]
    participants = [{"id": pid, "unavailable": sorted(unavailable[pid])} for pid in people]
    tables = {slot.id: slot.tables for slot in snapshot.slots}
    locked, extra = [], {slot.id: 0 for slot in snapshot.slots}
    busy_locked = {(p, m["slot_id"]) for m in snapshot.meetings if m["locked"]
                   for p in (m["requester_id"], m["receiver_id"])}
    for m in snapshot.meetings:
        if m["locked"] and booth_of[m["id"]]:
            extra[m["slot_id"]] += 1
            table = f"T{tables[m['slot_id']] + extra[m['slot_id']]}"  # above the real tables
            locked.append({"meeting": m["id"], "slot": m["slot_id"], "table": table})
        elif m["locked"]:
            locked.append({"meeting": m["id"], "slot": m["slot_id"], "table": m["table_name"]})
    covered = 0
    for holder in holders:
        for slot in snapshot.slots:
            if slot.id in unavailable[holder]:
                continue
            covered += 1
            if (holder, slot.id) in busy_locked:
                continue  # a locked booth meeting covers it, and took its share of the capacity above
            extra[slot.id] += 1
            dummy = f"{FILLER}:{holder}:{slot.id}"
            participants.append({"id": dummy, "unavailable": sorted(known - {slot.id})})
            meetings.append({"id": dummy, "participants": [holder, dummy], "priority": bonus})
    instance = Instance.model_validate({
        "slots": [{"id": s.id, "start": s.starts_at, "tables": tables[s.id] + extra[s.id]} for s in snapshot.slots],
        "participants": participants, "meetings": meetings, "locked": locked})
    return Encoding(instance, booth_of, weight, bonus, covered)


@timed_scheduler_run  # counted and timed on /metrics
def propose(snapshot: Snapshot, time_limit: float, *, seed: int = 0) -> Proposal:
    """Solve (blocking: run it in a worker thread) and turn the solver's answer into places."""
    from services.events.scheduler import solve

    started = time.monotonic()
    encoding = encode(snapshot)
    schedule = solve(encoding.instance, time_limit, seed=seed)
    # What went in locked stays, whether or not the solver lists it among its assignments.
    assigned = {m["id"]: m["slot_id"] for m in snapshot.meetings if m["locked"]}
    assigned |= {a.meeting: a.slot for a in schedule.assignments if not a.meeting.startswith(FILLER)}
    reasons = {u.meeting: u.reason for u in schedule.unscheduled}
    places, full = _tables(snapshot, assigned, encoding.booth_of)
    reasons |= {meeting_id: "every table in its slot is taken" for meeting_id in full}
    return Proposal(
        fingerprint=snapshot.fingerprint,
        places=places,
        unscheduled={m["id"]: reasons.get(m["id"], "left out by the scheduler")
                     for m in snapshot.meetings if m["id"] not in places},
        objective=sum(encoding.weight[m] for m in places),
        upper_bound=max(schedule.upper_bound - encoding.bonus * encoding.covered, 0),
        seconds=round(time.monotonic() - started, 3), schedule=schedule)


def _tables(snapshot: Snapshot, assigned: dict[str, str], booth_of: dict[str, str | None],
            ) -> tuple[dict[str, tuple[str, str | None, str | None]], list[str]]:
    """Places for the assigned meetings. Within a slot tables are interchangeable: locked meetings
    and those staying in their slot keep their table, the others take the free ones. Should a slot
    hold more table meetings than tables (an answer cut short by the time limit), the lowest
    priorities are left out (returned second)."""
    tables = {s.id: s.tables for s in snapshot.slots}
    places: dict[str, tuple[str, str | None, str | None]] = {}
    taken: set[tuple[str, str]] = set()
    keeps = sorted(snapshot.meetings, key=lambda m: (not m["locked"], -m["priority"]))
    for m in keeps:
        slot_id = assigned.get(m["id"])
        if slot_id is None:
            continue
        if booth_of[m["id"]]:
            places[m["id"]] = (slot_id, None, booth_of[m["id"]])
        elif m["slot_id"] == slot_id and m["table_name"] and (slot_id, m["table_name"]) not in taken:
            places[m["id"]] = (slot_id, m["table_name"], None)
            taken.add((slot_id, m["table_name"]))
    full = []
    for m in keeps:
        slot_id = assigned.get(m["id"])
        if slot_id is None or m["id"] in places:
            continue
        table = next((f"T{n}" for n in range(1, tables[slot_id] + 1) if (slot_id, f"T{n}") not in taken), None)
        if table is None:
            full.append(m["id"])
            continue
        places[m["id"]] = (slot_id, table, None)
        taken.add((slot_id, table))
    return places, full


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
