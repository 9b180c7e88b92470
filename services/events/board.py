"""Where meetings are: an event's slots and scheduled meetings, who is busy when, which tables are taken.

Booth holders meet at their booth, so their meetings take no table; a booth holder is in at
most one meeting per slot, like everyone, which keeps a booth to one meeting at a time.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from services.events.projections import meetings, participants, slots
from shared.errors import Conflict, InvalidInput

if TYPE_CHECKING:
    from services.events.domain import Meeting


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Slot:
    id: str
    starts_at: datetime
    ends_at: datetime
    tables: int


@dataclass(frozen=True)
class Place:
    slot: Slot
    table: str | None  # T1..Tn, or None at a booth
    booth: str | None


class Board:
    """The event's slots and scheduled meetings: who is busy when, which tables are taken."""

    def __init__(self, slot_list: list[Slot], placed: Iterable[dict[str, Any]],
                 people: Iterable[dict[str, Any]]) -> None:
        self.slots = {slot.id: slot for slot in slot_list}  # in start order
        self.unavailable = {p["id"]: set(p["unavailable_slots"]) for p in people}
        self.booths = {pid: booth for pid, booth in ((p["id"], p["booth"]) for p in people) if booth}
        self.busy: dict[tuple[str, str], str] = {}  # (participant, slot) -> meeting
        self.tables: dict[tuple[str, str], str] = {}  # (slot, table) -> meeting
        for row in placed:
            self._occupy(row["id"], (row["requester_id"], row["receiver_id"]), row["slot_id"], row["table_name"])

    @classmethod
    def load(cls, conn: Connection, event_id: str) -> Board:
        slot_rows = conn.execute(select(slots).where(slots.c.event_id == event_id)
                                 .order_by(slots.c.starts_at, slots.c.id)).mappings()
        placed = conn.execute(select(meetings.c.id, meetings.c.requester_id, meetings.c.receiver_id,
                                     meetings.c.slot_id, meetings.c.table_name)
                              .where(meetings.c.event_id == event_id, meetings.c.status == "accepted",
                                     meetings.c.slot_id.is_not(None))).mappings().all()
        people = conn.execute(select(participants.c.id, participants.c.unavailable_slots, participants.c.booth)
                              .where(participants.c.event_id == event_id, participants.c.b2b.is_(True),
                                     participants.c.status != "cancelled")).mappings().all()
        slot_list = [Slot(r["id"], parse_utc(r["starts_at"]), parse_utc(r["ends_at"]), r["tables"])
                     for r in slot_rows]
        return cls(slot_list, placed, people)

    def cleared(self) -> Board:
        """The same slots and people, with no meeting placed."""
        other = Board([], [], [])
        other.slots, other.unavailable, other.booths = self.slots, self.unavailable, self.booths
        return other

    def _occupy(self, meeting_id: str, people: tuple[str, ...], slot_id: str, table: str | None) -> None:
        for person in people:
            self.busy[person, slot_id] = meeting_id
        if table:
            self.tables[slot_id, table] = meeting_id

    def release(self, meeting: Meeting) -> None:
        if meeting.placed:
            for person in meeting.participant_ids:
                self.busy.pop((person, meeting.row["slot_id"]), None)
            self.tables.pop((meeting.row["slot_id"], meeting.row["table_name"]), None)

    def take(self, meeting: Meeting, place: Place) -> None:
        self._occupy(meeting.id, tuple(meeting.participant_ids), place.slot.id, place.table)

    def booth_of(self, meeting: Meeting) -> str | None:
        """Where a meeting with a booth holder takes place: the receiver's booth, else the requester's."""
        return self.booths.get(meeting.row["receiver_id"]) or self.booths.get(meeting.row["requester_id"])

    def why_not(self, meeting: Meeting, slot: Slot) -> str | None:
        """Why `meeting` cannot take place in `slot` (tables aside), or None."""
        for person in meeting.participant_ids:
            if slot.id in self.unavailable.get(person, ()):
                return f"participant {person} is unavailable in slot {slot.id}"
            other = self.busy.get((person, slot.id))
            if other and other != meeting.id:
                return f"participant {person} already meets in slot {slot.id} (meeting {other})"
        return None

    def free_table(self, slot: Slot) -> str | None:
        return next((f"T{n}" for n in range(1, slot.tables + 1) if (slot.id, f"T{n}") not in self.tables), None)

    def place_at(self, meeting: Meeting, slot_id: str, table: str | None = None, *,
                 field: str = "body.slot_id") -> Place:
        """The place for `meeting` in `slot_id` (at `table` if given), or the error saying why not."""
        slot = self.slots.get(slot_id)
        if slot is None:
            raise InvalidInput.field(field, f"no slot {slot_id} in this event")
        problem = self.why_not(meeting, slot)
        if problem:
            raise Conflict(problem, slot_id=slot_id)
        booth = self.booth_of(meeting)
        if booth:
            if table:
                raise InvalidInput.field("body.table", f"this meeting takes place at booth {booth}")
            return Place(slot, None, booth)
        if table is None:
            table = self.free_table(slot)
            if table is None:
                raise Conflict(f"every table in slot {slot_id} is taken", slot_id=slot_id)
        elif int(table[1:]) > slot.tables:
            raise InvalidInput.field("body.table", f"slot {slot_id} has tables T1..T{slot.tables}")
        else:
            other = self.tables.get((slot_id, table))
            if other and other != meeting.id:
                raise Conflict(f"table {table} in slot {slot_id} is taken (meeting {other})", meeting_id=other)
        return Place(slot, table, None)

    def first_place(self, meeting: Meeting) -> Place | None:
        """The earliest slot where both are free and there is room: what self-scheduling takes."""
        booth = self.booth_of(meeting)
        for slot in self.slots.values():
            if self.why_not(meeting, slot) is None:
                table = None if booth else self.free_table(slot)
                if booth or table:
                    return Place(slot, table, booth)
        return None
