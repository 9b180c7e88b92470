"""Event statistics for the organiser: registrations, requests, meetings and their outcomes (JSON or CSV).

A meeting counts as held when either side reports it held or reports a follow-up or a
partnership (which imply it took place); its outcome counts once however many sides report.
"""
from __future__ import annotations

import csv
import io

from pydantic import BaseModel
from sqlalchemy import Connection, distinct, func, select

from services.events.projections import meetings, outcomes, participants

HELD = ("held", "follow_up_planned", "partnership_agreed")


class Statistics(BaseModel):
    event_id: str
    registrations: int
    registered: int
    waitlisted: int
    cancelled: int
    checked_in: int
    no_shows: int
    b2b_participants: int
    requests: int
    pending: int
    accepted: int
    declined: int
    cancelled_meetings: int
    scheduled: int
    held: int
    meeting_no_shows: int
    follow_ups: int
    partnerships: int


def compute(conn: Connection, event_id: str) -> Statistics:
    people: dict[str, int] = dict(conn.execute(
        select(participants.c.status, func.count()).where(participants.c.event_id == event_id)
        .group_by(participants.c.status)).all())
    attendance: dict[str, int] = dict(conn.execute(
        select(participants.c.attendance, func.count()).where(participants.c.event_id == event_id,
                                                              participants.c.attendance.is_not(None))
        .group_by(participants.c.attendance)).all())
    b2b = conn.execute(select(func.count()).where(participants.c.event_id == event_id,
                                                  participants.c.status == "registered",
                                                  participants.c.b2b.is_(True))).scalar_one()
    by_status: dict[str, int] = dict(conn.execute(
        select(meetings.c.status, func.count()).where(meetings.c.event_id == event_id)
        .group_by(meetings.c.status)).all())
    scheduled = conn.execute(select(func.count()).where(meetings.c.event_id == event_id,
                                                        meetings.c.status == "accepted",
                                                        meetings.c.slot_id.is_not(None))).scalar_one()

    def reported(*kinds: str) -> int:
        return conn.execute(select(func.count(distinct(outcomes.c.meeting_id))).where(
            outcomes.c.event_id == event_id, outcomes.c.outcome.in_(kinds))).scalar_one()

    return Statistics(
        event_id=event_id, registrations=sum(people.values()), registered=people.get("registered", 0),
        waitlisted=people.get("waitlisted", 0), cancelled=people.get("cancelled", 0),
        checked_in=attendance.get("checked_in", 0), no_shows=attendance.get("no_show", 0), b2b_participants=b2b,
        requests=sum(by_status.values()), pending=by_status.get("requested", 0),
        accepted=by_status.get("accepted", 0), declined=by_status.get("declined", 0),
        cancelled_meetings=by_status.get("cancelled", 0), scheduled=scheduled, held=reported(*HELD),
        meeting_no_shows=reported("no_show"), follow_ups=reported("follow_up_planned", "partnership_agreed"),
        partnerships=reported("partnership_agreed"))


def to_csv(statistics: Statistics) -> str:
    """Two columns, one figure a row: opens as is in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["metric", "value"])
    for name, value in statistics.model_dump().items():
        writer.writerow([name, value])
    return out.getvalue()
