"""The events service's API schemas: one family per resource (Create, Update, Public), strict on input.

Times come in as ISO 8601 with a zone (naive times are refused: a brokerage day in Brussels
and one in Bucharest differ by an hour) and are kept in UTC; each event also names its IANA
time zone, which agendas use for display.
"""
from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, model_validator

# The same conventions as the registry's schemas: strict input, pages, stamps, ids, keywords.
from services.registry.models import READ, STRICT, Keywords, Page, Stamps, Uuid, Website

__all__ = ["Page"]  # re-exported: the events API pages its lists the registry's way


class EventKind(StrEnum):
    conference = "conference"
    workshop = "workshop"
    webinar = "webinar"
    brokerage = "brokerage"
    plenary_meeting = "plenary_meeting"
    working_group_meeting = "working_group_meeting"
    training = "training"
    company_mission = "company_mission"


class EventStatus(StrEnum):
    draft = "draft"
    published = "published"
    registration_closed = "registration_closed"
    held = "held"
    archived = "archived"


class RequestMode(StrEnum):
    opt_in = "opt_in"  # the receiver accepts or declines
    opt_out = "opt_out"  # accepted on arrival


class SchedulingMode(StrEnum):
    self = "self"  # accepting takes the first common free slot, or one the receiver picks
    organiser = "organiser"  # the organiser runs the auto-scheduler


class Outcome(StrEnum):
    held = "held"
    no_show = "no_show"
    follow_up_planned = "follow_up_planned"
    partnership_agreed = "partnership_agreed"


def _utc(value: datetime) -> datetime:
    # Bounded so that converting to UTC and laying out slots (at most 96 x 240 minutes later) can
    # never overflow datetime (year 1..9999), which would be a 500 rather than a 422.
    if not 1900 <= value.year <= 2200:
        raise ValueError("must be between the years 1900 and 2200")
    return value.astimezone(UTC)


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not an IANA time zone (e.g. Europe/Brussels)") from None
    return value


Moment = Annotated[AwareDatetime, AfterValidator(_utc), Field(examples=["2026-03-10T09:00:00+01:00"])]
TimeZone = Annotated[str, Field(max_length=60, examples=["Europe/Brussels"]), AfterValidator(_time_zone)]
Title = Annotated[str, Field(min_length=1, max_length=300)]
Text = Annotated[str, Field(max_length=5000)]
Reason = Annotated[str, Field(max_length=500)]
SlotId = Annotated[str, Field(min_length=1, max_length=80)]
ClusterIds = Annotated[list[Uuid], Field(min_length=1, max_length=10)]


def _distinct(values: list[Any], what: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} are listed twice")


# --------------------------------------------------------------------------------------------
# Events


class Session(BaseModel):
    """A programme item (talk, panel, workshop); B2B meeting slots are `B2BSession`s."""

    model_config = STRICT

    id: str | None = Field(default=None, max_length=36, description="Given when absent")
    title: Title
    starts_at: Moment
    ends_at: Moment
    room: str | None = Field(default=None, max_length=200)
    speakers: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default=[], max_length=50)

    @model_validator(mode="after")
    def _ordered(self) -> Session:
        if self.ends_at <= self.starts_at:
            raise ValueError("a session must end after it starts")
        return self


class B2BSettings(BaseModel):
    model_config = STRICT

    request_mode: RequestMode = RequestMode.opt_in
    scheduling_mode: SchedulingMode = SchedulingMode.self
    meeting_cap: int = Field(default=12, ge=1, le=200, description="Most accepted meetings per participant")


class EventBase(BaseModel):
    model_config = STRICT

    title: Title
    kind: EventKind
    organiser_cluster_ids: ClusterIds = Field(description="One cluster, or several for a joint event")
    members_only: bool = Field(default=False, description="Open only to active members of an organiser cluster")
    description: Text | None = None
    venue: str | None = Field(default=None, max_length=500)
    online_url: Website | None = None
    time_zone: TimeZone
    starts_at: Moment
    ends_at: Moment
    capacity: int | None = Field(default=None, ge=1, le=100_000, description="Seats; none means unlimited")
    registration_opens_at: Moment | None = None
    registration_closes_at: Moment | None = None
    sessions: list[Session] = Field(default=[], max_length=500)
    b2b: B2BSettings | None = Field(default=None, description="Brokerage settings; brokerage events get defaults")

    @model_validator(mode="after")
    def _consistent(self) -> EventBase:
        _distinct(self.organiser_cluster_ids, "organiser clusters")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if (self.registration_opens_at and self.registration_closes_at
                and self.registration_closes_at <= self.registration_opens_at):
            raise ValueError("registration_closes_at must be after registration_opens_at")
        if self.registration_closes_at and self.registration_closes_at > self.ends_at:
            raise ValueError("registration_closes_at must not be after the event ends")
        if self.b2b is None and self.kind == EventKind.brokerage:
            self.b2b = B2BSettings()
        return self


class EventCreate(EventBase):
    pass


class EventUpdate(BaseModel):
    """Only the fields sent change (null clears an optional one); the result is validated whole."""

    model_config = STRICT

    title: Title | None = None
    kind: EventKind | None = None
    organiser_cluster_ids: ClusterIds | None = None
    members_only: bool | None = None
    description: Text | None = None
    venue: str | None = Field(default=None, max_length=500)
    online_url: Website | None = None
    time_zone: TimeZone | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    capacity: int | None = Field(default=None, ge=1, le=100_000)
    registration_opens_at: Moment | None = None
    registration_closes_at: Moment | None = None
    sessions: list[Session] | None = Field(default=None, max_length=500)
    b2b: B2BSettings | None = None


class EventPublic(EventBase, Stamps):
    model_config = READ

    status: EventStatus
    agenda_published: bool
    last_schedule: dict[str, Any] | None = Field(default=None, description="The last scheduler run")
    registered: int = Field(description="Participants holding a seat")
    waitlisted: int


class ArchiveRequest(BaseModel):
    model_config = STRICT

    reason: Reason | None = None


# --------------------------------------------------------------------------------------------
# B2B sessions and slots


class B2BSessionCreate(BaseModel):
    """`slot_count` consecutive slots of `slot_minutes`, each with `tables` tables."""

    model_config = STRICT

    title: str | None = Field(default=None, max_length=200)
    starts_at: Moment
    slot_minutes: int = Field(ge=5, le=240)
    slot_count: int = Field(ge=1, le=96)
    tables: int = Field(ge=0, le=2000, description="Tables per slot (booth holders meet at their booth)")
    room: str | None = Field(default=None, max_length=200)


class SlotPublic(BaseModel):
    id: str
    starts_at: datetime
    ends_at: datetime
    tables: int


class B2BSessionPublic(BaseModel):
    model_config = READ

    id: str
    title: str | None
    starts_at: datetime
    slot_minutes: int
    slot_count: int
    tables: int
    room: str | None
    slots: list[SlotPublic]


# --------------------------------------------------------------------------------------------
# Registrations (participants)


class RegistrationCreate(BaseModel):
    model_config = STRICT

    organisation_id: Uuid
    contact_id: Uuid = Field(description="The person registering, a contact of the organisation")
    b2b: bool | None = Field(default=None, description="Takes part in B2B meetings (default: if the event has them)")


class CancelRequest(BaseModel):
    model_config = STRICT

    reason: Reason | None = None


class ProfileUpdate(BaseModel):
    """The whole B2B profile (PUT semantics)."""

    model_config = STRICT

    offer: Text | None = None
    seek: Text | None = None
    keywords: Keywords = []


class AvailabilityUpdate(BaseModel):
    """The slots the participant cannot meet in (replaces the previous list)."""

    model_config = STRICT

    unavailable_slots: list[SlotId] = Field(max_length=500)

    @model_validator(mode="after")
    def _distinct_slots(self) -> AvailabilityUpdate:
        _distinct(self.unavailable_slots, "slots")
        return self


class BoothUpdate(BaseModel):
    model_config = STRICT

    booth: str | None = Field(min_length=1, max_length=40, description="Booth name; null: meet at tables")


class ParticipantPublic(Stamps):
    model_config = READ

    event_id: str
    contact_id: str
    organisation_id: str
    name: str
    email: str | None
    organisation_name: str
    b2b: bool
    status: Literal["registered", "waitlisted", "cancelled"]
    attendance: Literal["checked_in", "no_show"] | None
    offer: str | None
    seek: str | None
    keywords: list[str]
    unavailable_slots: list[str]
    booth: str | None


class ParticipantCard(BaseModel):
    """What other participants see when browsing (no e-mail address)."""

    model_config = READ

    id: str
    name: str
    organisation_id: str
    organisation_name: str
    offer: str | None
    seek: str | None
    keywords: list[str]
    booth: str | None


# --------------------------------------------------------------------------------------------
# Meetings


class MeetingRequestCreate(BaseModel):
    model_config = STRICT

    requester_id: str = Field(min_length=1, max_length=36, description="The requesting participant")
    receiver_id: str = Field(min_length=1, max_length=36)
    message: Text | None = None
    priority: int = Field(default=1, ge=1, le=100, description="Weight for the auto-scheduler")


class AcceptRequest(BaseModel):
    model_config = STRICT

    slot_id: SlotId | None = Field(default=None, description="Self-scheduling: this slot (default: first common free)")


class DeclineRequest(BaseModel):
    model_config = STRICT

    reason: Reason | None = None


class MeetingCancel(BaseModel):
    model_config = STRICT

    by: str | None = Field(default=None, max_length=36, description="The participant withdrawing; absent: organiser")
    reason: Reason | None = None


class MeetingMove(BaseModel):
    model_config = STRICT

    slot_id: SlotId
    table: str | None = Field(default=None, pattern=r"^T[1-9][0-9]{0,3}$",
                              description="T1..Tn (default: the first free); not for booth meetings")


class OutcomeCreate(BaseModel):
    model_config = STRICT

    participant_id: str = Field(min_length=1, max_length=36, description="The side reporting")
    outcome: Outcome
    note: Text | None = None


class OutcomePublic(BaseModel):
    participant_id: str
    outcome: Outcome
    note: str | None
    recorded_at: str


class MeetingPublic(Stamps):
    model_config = READ

    event_id: str
    requester_id: str
    receiver_id: str
    requester_name: str
    requester_organisation_name: str
    receiver_name: str
    receiver_organisation_name: str
    message: str | None
    priority: int
    status: Literal["requested", "accepted", "declined", "cancelled"]
    slot_id: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    table: str | None
    booth: str | None
    locked: bool
    decline_reason: str | None
    cancelled_by: str | None
    cancel_reason: str | None
    outcomes: list[OutcomePublic] = []


class ScheduleRun(BaseModel):
    model_config = STRICT

    time_limit: float = Field(default=10.0, gt=0, le=60, description="Seconds the scheduler may search")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class UnscheduledMeeting(BaseModel):
    meeting_id: str
    reason: str


class ScheduleResult(BaseModel):
    objective: int
    upper_bound: int
    scheduled: int
    moved: int
    unscheduled: list[UnscheduledMeeting]
    seconds: float


class AgendaUnlock(BaseModel):
    model_config = STRICT

    reason: Reason | None = None
