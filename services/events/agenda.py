"""A participant's agenda: their scheduled meetings as JSON, iCalendar (RFC 5545) and a printable page.

Until the organiser publishes the final agenda it is preliminary: the calendar marks its
meetings TENTATIVE, and each VEVENT's SEQUENCE is the meeting's stream version, so a calendar
that imported an earlier copy replaces a moved meeting rather than keeping both.
"""
from __future__ import annotations

import html
from datetime import UTC, datetime
from string import Template
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar
from icalendar import Event as CalendarEvent
from pydantic import BaseModel
from sqlalchemy import Connection, or_, select

from services.events.projections import b2b_sessions, events, meetings, participants, slots
from shared import pii
from shared.errors import NotFound


class Counterpart(BaseModel):
    participant_id: str
    name: str
    organisation_name: str


class AgendaItem(BaseModel):
    meeting_id: str
    version: int
    slot_id: str
    starts_at: datetime
    ends_at: datetime
    table: str | None
    booth: str | None
    room: str | None
    location: str
    counterpart: Counterpart
    message: str | None
    locked: bool


class Agenda(BaseModel):
    event_id: str
    event_title: str
    time_zone: str
    venue: str | None
    participant_id: str
    name: str
    organisation_name: str
    final: bool
    meetings: list[AgendaItem]


def _location(table: str | None, booth: str | None, room: str | None) -> str:
    place = f"Booth {booth}" if booth else f"Table {table}"
    return f"{place}, {room}" if room else place


def load_agenda(conn: Connection, event_id: str, participant_id: str) -> Agenda:
    event = conn.execute(select(events).where(events.c.id == event_id)).mappings().first()
    person = conn.execute(select(participants).where(participants.c.id == participant_id,
                                                     participants.c.event_id == event_id)).mappings().first()
    if event is None or person is None:
        raise NotFound(f"participant {participant_id} not found in event {event_id}")
    rows = conn.execute(
        select(meetings, b2b_sessions.c.room)
        .join(slots, (slots.c.event_id == meetings.c.event_id) & (slots.c.id == meetings.c.slot_id))
        .join(b2b_sessions, (b2b_sessions.c.event_id == slots.c.event_id) & (b2b_sessions.c.id == slots.c.session_id))
        .where(meetings.c.event_id == event_id, meetings.c.status == "accepted", meetings.c.slot_id.is_not(None),
               or_(meetings.c.requester_id == participant_id, meetings.c.receiver_id == participant_id))
        .order_by(meetings.c.starts_at, meetings.c.id)).mappings().all()
    # Names are sealed in the tables (shared/pii.py): opened here, "erased" once erased.
    person, *rows = pii.open_rows(conn, [person, *rows])
    items = []
    for row in rows:
        side = "receiver" if row["requester_id"] == participant_id else "requester"
        items.append(AgendaItem(
            meeting_id=row["id"], version=row["version"], slot_id=row["slot_id"], starts_at=row["starts_at"],
            ends_at=row["ends_at"], table=row["table_name"], booth=row["booth"], room=row["room"],
            location=_location(row["table_name"], row["booth"], row["room"]),
            counterpart=Counterpart(participant_id=row[f"{side}_id"], name=row[f"{side}_name"],
                                    organisation_name=row[f"{side}_organisation_name"]),
            message=row["message"], locked=row["locked"]))
    return Agenda(event_id=event_id, event_title=event["title"], time_zone=event["time_zone"], venue=event["venue"],
                  participant_id=participant_id, name=person["name"], organisation_name=person["organisation_name"],
                  final=event["agenda_published"], meetings=items)


def to_ics(agenda: Agenda, *, now: datetime | None = None) -> bytes:
    """One VEVENT per meeting: LOCATION the table or booth, SUMMARY and DESCRIPTION the other party."""
    calendar = Calendar()
    calendar.add("prodid", "-//clusterhub//events//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"{agenda.event_title}: B2B meetings of {agenda.name}")
    calendar.add("x-wr-timezone", agenda.time_zone)
    stamp = now or datetime.now(UTC)
    for item in agenda.meetings:
        other = item.counterpart
        vevent = CalendarEvent()
        vevent.add("uid", f"{item.meeting_id}@clusterhub.eu")
        vevent.add("dtstamp", stamp)
        vevent.add("dtstart", item.starts_at.astimezone(UTC))
        vevent.add("dtend", item.ends_at.astimezone(UTC))
        vevent.add("summary", f"B2B meeting: {other.name} ({other.organisation_name})")
        location = item.location if not agenda.venue else f"{item.location}, {agenda.venue}"
        vevent.add("location", location)
        description = [f"Meeting with {other.name}, {other.organisation_name}", f"Where: {item.location}",
                       f"Event: {agenda.event_title}"]
        if item.message:
            description.append(f"Request: {item.message}")
        vevent.add("description", "\n".join(description))
        vevent.add("status", "CONFIRMED" if agenda.final else "TENTATIVE")
        vevent.add("sequence", item.version)
        calendar.add_component(vevent)
    return calendar.to_ical()


_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>$title</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #111; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ccc; padding: .4rem .6rem; text-align: left; vertical-align: top; }
.status { font-weight: bold; }
@media print { body { margin: 0; } .status { color: #000; } }
</style>
</head>
<body>
<h1>$event_title</h1>
<h2>$name, $organisation_name</h2>
<p class="status">$status</p>
<p>Times in $time_zone.$venue</p>
<table>
<thead><tr><th>Day</th><th>Time</th><th>Where</th><th>With</th><th>Request</th></tr></thead>
<tbody>
$rows
</tbody>
</table>
</body>
</html>
""")
_ROW = Template("<tr><td>$day</td><td>$start&ndash;$end</td><td>$location</td><td>$who</td><td>$message</td></tr>")


def to_html(agenda: Agenda) -> str:
    """A printable page; every value from users is escaped."""
    zone = ZoneInfo(agenda.time_zone)
    e = html.escape

    def row(item: AgendaItem) -> str:
        start, end = item.starts_at.astimezone(zone), item.ends_at.astimezone(zone)
        return _ROW.substitute(
            day=e(start.strftime("%a %d %b %Y")), start=e(start.strftime("%H:%M")), end=e(end.strftime("%H:%M")),
            location=e(item.location), who=f"{e(item.counterpart.name)}<br>{e(item.counterpart.organisation_name)}",
            message=e(item.message or ""))

    rows: Any = "\n".join(row(item) for item in agenda.meetings) or '<tr><td colspan="5">No meetings yet.</td></tr>'
    return _PAGE.substitute(
        title=e(f"{agenda.event_title}: agenda of {agenda.name}"), event_title=e(agenda.event_title),
        name=e(agenda.name), organisation_name=e(agenda.organisation_name),
        status="Final agenda" if agenda.final else "Preliminary agenda: meetings may still change",
        time_zone=e(agenda.time_zone), venue=f" Venue: {e(agenda.venue)}." if agenda.venue else "", rows=rows)
