"""The scheduler's two file formats, INSTANCE.json in and SCHEDULE.json out, as pydantic models.

Unknown keys are refused: a misspelt "unavailble" would otherwise silently drop a participant's
constraints. Numbers are strict (no "3" for 3) and priorities are integers, which is what makes
the floor of the LP value a valid upper bound.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

Id = Annotated[StrictStr, Field(min_length=1)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Slot(_Record):
    id: Id
    start: datetime
    tables: Annotated[StrictInt, Field(ge=0)]


class Participant(_Record):
    id: Id
    unavailable: list[Id] = []


class Meeting(_Record):
    id: Id
    participants: Annotated[list[Id], Field(min_length=2)]
    priority: Annotated[StrictInt, Field(ge=1)] = 1


class Lock(_Record):
    meeting: Id
    slot: Id
    table: Id


class Instance(_Record):
    slots: list[Slot]
    participants: list[Participant]
    meetings: list[Meeting]
    locked: list[Lock] = []


class Assignment(_Record):
    meeting: str
    slot: str
    table: str


class Unscheduled(_Record):
    meeting: str
    reason: str


class Schedule(_Record):
    assignments: list[Assignment]
    unscheduled: list[Unscheduled]
    objective: int
    upper_bound: int
