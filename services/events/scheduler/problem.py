"""Check an instance's cross-references and compile it into the indexed form the solvers share.

Slots are indexed in start order and sets of slots are int bitmasks (bit s = slot s), so "is
there a slot where all of these people are free" is one AND. Locked meetings are taken out
before solving: their slot's capacity drops by one and their participants become busy there.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import ValidationError

from services.events.scheduler.formats import Instance
from shared.errors import InvalidInput

TABLE_NAME = re.compile(r"T([1-9][0-9]*)")


class InvalidInstance(InvalidInput):
    """An instance the scheduler refuses, naming the offending field."""


@dataclass(frozen=True)
class Problem:
    instance: Instance
    slot_order: list[int]            # slot index -> position in instance.slots
    tables: list[int]                # per slot index
    cap: list[int]                   # tables left after locked meetings
    day: list[int]                   # per slot index: day number (gaps are counted within a day)
    avail: list[int]                 # per participant: available slots (raw, before locks)
    free: list[int]                  # per participant: available and not in a locked meeting
    meetings: list[int]              # free (not locked) meetings: positions in instance.meetings
    parts: list[tuple[int, ...]]     # per free meeting: participant indices
    weight: list[int]                # per free meeting
    allowed: list[int]               # per free meeting: slots where all its participants are free
    locked: list[tuple[int, int, int]]  # (meeting position, slot index, table number)
    locked_weight: int

    @property
    def n_slots(self) -> int:
        return len(self.tables)

    @property
    def all_slots(self) -> int:
        return (1 << self.n_slots) - 1


def parse_instance(data: object) -> Instance:
    """Validate raw JSON data into an Instance, or raise InvalidInstance naming the first bad field."""
    try:
        return Instance.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        path = field_path(first["loc"]) or "instance"
        raise InvalidInstance.field(path, first["msg"] + more) from None


def field_path(loc: tuple) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def compile_problem(instance: Instance) -> Problem:
    """Resolve ids to indices and check what pydantic cannot: references, duplicates, locks."""
    slot_pos = _unique_ids("slots", [s.id for s in instance.slots], "slot")
    part_pos = _unique_ids("participants", [p.id for p in instance.participants], "participant")
    meeting_pos = _unique_ids("meetings", [m.id for m in instance.meetings], "meeting")

    aware = [s.start.tzinfo is not None for s in instance.slots]
    if any(aware) and not all(aware):
        i = aware.index(not aware[0])
        raise InvalidInstance.field(
            f"slots[{i}].start", "give every slot's start with a UTC offset (e.g. Z), or none of them")
    slot_order = sorted(range(len(instance.slots)), key=lambda i: (instance.slots[i].start, i))
    slot_index = {instance.slots[pos].id: s for s, pos in enumerate(slot_order)}
    tables = [instance.slots[pos].tables for pos in slot_order]
    dates = [instance.slots[pos].start.date() for pos in slot_order]
    day_numbers = {d: n for n, d in enumerate(sorted(set(dates)))}
    all_slots = (1 << len(tables)) - 1

    avail = []
    for i, p in enumerate(instance.participants):
        mask = all_slots
        for j, slot_id in enumerate(p.unavailable):
            where = f"participants[{i}].unavailable[{j}]"
            if slot_id not in slot_pos:
                raise InvalidInstance.field(where, f"unknown slot {slot_id!r}")
            bit = 1 << slot_index[slot_id]
            if not mask & bit:
                raise InvalidInstance.field(where, f"slot {slot_id!r} is listed twice")
            mask &= ~bit
        avail.append(mask)

    meeting_parts = []
    for i, m in enumerate(instance.meetings):
        seen: set[str] = set()
        for j, pid in enumerate(m.participants):
            where = f"meetings[{i}].participants[{j}]"
            if pid not in part_pos:
                raise InvalidInstance.field(where, f"unknown participant {pid!r}")
            if pid in seen:
                raise InvalidInstance.field(where, f"participant {pid!r} is listed twice")
            seen.add(pid)
        meeting_parts.append(tuple(part_pos[pid] for pid in m.participants))

    locked, cap, free = _compile_locks(instance, slot_index, meeting_pos, part_pos, meeting_parts, avail, tables)
    locked_positions = {pos for pos, _, _ in locked}
    meetings, parts, weight, allowed = [], [], [], []
    for pos, m in enumerate(instance.meetings):
        if pos in locked_positions:
            continue
        mask = all_slots
        for p in meeting_parts[pos]:
            mask &= free[p]
        meetings.append(pos)
        parts.append(meeting_parts[pos])
        weight.append(m.priority)
        allowed.append(mask)
    return Problem(
        instance=instance, slot_order=slot_order, tables=tables, cap=cap,
        day=[day_numbers[d] for d in dates], avail=avail, free=free, meetings=meetings, parts=parts,
        weight=weight, allowed=allowed, locked=locked,
        locked_weight=sum(instance.meetings[pos].priority for pos, _, _ in locked),
    )


def _unique_ids(field: str, ids: list[str], noun: str) -> dict[str, int]:
    positions: dict[str, int] = {}
    for i, ident in enumerate(ids):
        if ident in positions:
            raise InvalidInstance.field(
                f"{field}[{i}].id", f"duplicate {noun} id {ident!r} (also {field}[{positions[ident]}])")
        positions[ident] = i
    return positions


def _compile_locks(instance, slot_index, meeting_pos, part_pos, meeting_parts, avail, tables):
    cap = list(tables)
    free = list(avail)
    locked: list[tuple[int, int, int]] = []
    lock_of_meeting: dict[int, int] = {}
    table_taken: dict[tuple[int, int], int] = {}
    busy: dict[tuple[int, int], int] = {}
    part_ids = [p.id for p in instance.participants]
    for i, lock in enumerate(instance.locked):
        where = f"locked[{i}]"
        if lock.meeting not in meeting_pos:
            raise InvalidInstance.field(f"{where}.meeting", f"unknown meeting {lock.meeting!r}")
        pos = meeting_pos[lock.meeting]
        if pos in lock_of_meeting:
            raise InvalidInstance.field(
                f"{where}.meeting", f"meeting {lock.meeting!r} is already locked by locked[{lock_of_meeting[pos]}]")
        if lock.slot not in slot_index:
            raise InvalidInstance.field(f"{where}.slot", f"unknown slot {lock.slot!r}")
        s = slot_index[lock.slot]
        match = TABLE_NAME.fullmatch(lock.table)
        if not match or int(match.group(1)) > tables[s]:
            span = f"tables T1..T{tables[s]}" if tables[s] else "it has no tables"
            raise InvalidInstance.field(
                f"{where}.table", f"table {lock.table!r} does not exist in slot {lock.slot!r} ({span})")
        table = int(match.group(1))
        if (s, table) in table_taken:
            other = table_taken[s, table]
            raise InvalidInstance.field(
                f"{where}.table", f"table {lock.table!r} in slot {lock.slot!r} is already taken by "
                f"locked[{other}] (meeting {instance.locked[other].meeting!r})")
        for p in meeting_parts[pos]:
            if not avail[p] >> s & 1:
                raise InvalidInstance.field(
                    where, f"participant {part_ids[p]!r} is unavailable in slot {lock.slot!r}")
            if (p, s) in busy:
                other = busy[p, s]
                raise InvalidInstance.field(
                    where, f"participant {part_ids[p]!r} is double-booked in slot {lock.slot!r} "
                    f"(also in locked[{other}], meeting {instance.locked[other].meeting!r})")
        for p in meeting_parts[pos]:
            busy[p, s] = i
            free[p] &= ~(1 << s)
        lock_of_meeting[pos] = i
        table_taken[s, table] = i
        cap[s] -= 1
        locked.append((pos, s, table))
    return locked, cap, free
