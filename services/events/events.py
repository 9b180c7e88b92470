"""The events service's event types: frozen, past tense, versioned. Stored by name (`events.<Name>`).

Streams:
- `event-{id}` (events.Event): the event itself: details, lifecycle, B2B sessions, scheduler
  runs, agenda publication.
- `participant-{id}` (events.Participant): one registration of a person for an event (the
  participant id is the registration id): waitlist, check-in, B2B profile, availability, booth.
- `meeting-{id}` (events.Meeting): one B2B meeting request, from request to outcome.

What a notifier needs travels in the events: participant ids everywhere, display names where a
message names someone, and the registrant's e-mail address in the two events that start a
participant stream (`ParticipantRegistered`, `ParticipantWaitlisted`), so that a projector of
this log alone can address every later message by participant id. Updates carry only the
changed fields under `changes`. Times are UTC ISO 8601 (`datetime` with zone).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.eventlog import DomainEvent, stream_id  # noqa: F401 - the service names its streams from here

STREAM_TYPES = {
    "event": "events.Event",
    "participant": "events.Participant",
    "meeting": "events.Meeting",
}


# -- the event: details and lifecycle (draft -> published -> registration_closed -> held -> archived)


class EventScheduled(DomainEvent):
    """An event was created, as a draft. `b2b` holds the brokerage settings (None: no B2B meetings)."""

    event_type = "events.EventScheduled"
    schema_version = 1

    event_id: str
    title: str
    kind: str
    organiser_cluster_ids: list[str]
    members_only: bool = False
    description: str | None = None
    venue: str | None = None
    online_url: str | None = None
    time_zone: str
    starts_at: datetime
    ends_at: datetime
    capacity: int | None = None
    registration_opens_at: datetime | None = None
    registration_closes_at: datetime | None = None
    sessions: list[dict[str, Any]] = []  # {id, title, starts_at, ends_at, room, speakers}
    b2b: dict[str, Any] | None = None  # {request_mode, scheduling_mode, meeting_cap}


class EventUpdated(DomainEvent):
    event_type = "events.EventUpdated"
    schema_version = 1

    event_id: str
    changes: dict[str, Any]


class EventPublished(DomainEvent):
    event_type = "events.EventPublished"
    schema_version = 1

    event_id: str


class RegistrationClosed(DomainEvent):
    event_type = "events.RegistrationClosed"
    schema_version = 1

    event_id: str


class EventHeld(DomainEvent):
    event_type = "events.EventHeld"
    schema_version = 1

    event_id: str


class EventArchived(DomainEvent):
    event_type = "events.EventArchived"
    schema_version = 1

    event_id: str
    reason: str | None = None


# -- B2B sessions, scheduling and the agenda (event stream)


class B2BSessionAdded(DomainEvent):
    """A block of meeting slots; slot ids are `{session_id}-{n}` for n = 1..slot_count."""

    event_type = "events.B2BSessionAdded"
    schema_version = 1

    event_id: str
    session_id: str
    title: str | None = None
    starts_at: datetime
    slot_minutes: int
    slot_count: int
    tables: int
    room: str | None = None


class B2BSessionRemoved(DomainEvent):
    event_type = "events.B2BSessionRemoved"
    schema_version = 1

    event_id: str
    session_id: str


class ScheduleGenerated(DomainEvent):
    """The organiser ran the auto-scheduler; the placements follow as meeting events."""

    event_type = "events.ScheduleGenerated"
    schema_version = 1

    event_id: str
    time_limit: float
    objective: int
    upper_bound: int
    scheduled: int
    unscheduled: list[dict[str, str]]  # {meeting, reason}


class AgendaPublished(DomainEvent):
    """The final agenda: the schedule is frozen until `AgendaUnlocked`."""

    event_type = "events.AgendaPublished"
    schema_version = 1

    event_id: str
    meetings: int
    participant_ids: list[str]  # those with at least one scheduled meeting


class AgendaUnlocked(DomainEvent):
    event_type = "events.AgendaUnlocked"
    schema_version = 1

    event_id: str
    reason: str | None = None


# -- participants (registrations)
#
# v2 of ParticipantRegistered, ParticipantWaitlisted, WaitlistPromoted and MeetingRequested: the
# person's name and e-mail are sealed envelopes under the contact's key (shared/pii.py), so that
# erasing the contact erases them here too. v1 values were plaintext and read through unchanged.


def _same(data: dict[str, Any]) -> dict[str, Any]:
    return data


class ParticipantRegistered(DomainEvent):
    """A person registered on behalf of an organisation and has a seat."""

    event_type = "events.ParticipantRegistered"
    schema_version = 2
    upcast_v1_v2 = staticmethod(_same)  # same fields; v1 held plaintext

    participant_id: str
    event_id: str
    contact_id: str
    organisation_id: str
    name: str
    email: str | None = None
    organisation_name: str
    b2b: bool = False


class ParticipantWaitlisted(DomainEvent):
    """A person registered while the event was full: on the waitlist, in registration order."""

    event_type = "events.ParticipantWaitlisted"
    schema_version = 2
    upcast_v1_v2 = staticmethod(_same)  # same fields; v1 held plaintext

    participant_id: str
    event_id: str
    contact_id: str
    organisation_id: str
    name: str
    email: str | None = None
    organisation_name: str
    b2b: bool = False


class WaitlistPromoted(DomainEvent):
    """A seat freed up and the first waitlisted participant took it."""

    event_type = "events.WaitlistPromoted"
    schema_version = 2
    upcast_v1_v2 = staticmethod(_same)  # same fields; v1 held plaintext

    participant_id: str
    event_id: str
    name: str
    freed_by: str | None = None  # the participant whose cancellation freed the seat


class RegistrationCancelled(DomainEvent):
    event_type = "events.RegistrationCancelled"
    schema_version = 1

    participant_id: str
    event_id: str
    was_waitlisted: bool
    reason: str | None = None


class ParticipantCheckedIn(DomainEvent):
    event_type = "events.ParticipantCheckedIn"
    schema_version = 1

    participant_id: str
    event_id: str


class NoShowRecorded(DomainEvent):
    event_type = "events.NoShowRecorded"
    schema_version = 1

    participant_id: str
    event_id: str


class B2BProfileUpdated(DomainEvent):
    """The participant's brokerage profile, as a whole (what they offer, what they seek)."""

    event_type = "events.B2BProfileUpdated"
    schema_version = 1

    participant_id: str
    event_id: str
    offer: str | None = None
    seek: str | None = None
    keywords: list[str] = []


class AvailabilityUpdated(DomainEvent):
    """The slots the participant cannot meet in, as a whole."""

    event_type = "events.AvailabilityUpdated"
    schema_version = 1

    participant_id: str
    event_id: str
    unavailable_slots: list[str]


class BoothAssigned(DomainEvent):
    """An exhibitor's fixed booth: their meetings take place there (None: back to tables)."""

    event_type = "events.BoothAssigned"
    schema_version = 1

    participant_id: str
    event_id: str
    booth: str | None


# -- meetings


class MeetingRequested(DomainEvent):
    event_type = "events.MeetingRequested"
    schema_version = 2
    upcast_v1_v2 = staticmethod(_same)  # same fields; v1 held plaintext

    meeting_id: str
    event_id: str
    requester_id: str
    receiver_id: str
    requester_name: str
    requester_organisation_name: str
    receiver_name: str
    receiver_organisation_name: str
    message: str | None = None
    priority: int = 1


class MeetingAccepted(DomainEvent):
    """The receiver accepted, or (opt-out mode) the request was accepted on arrival."""

    event_type = "events.MeetingAccepted"
    schema_version = 1

    meeting_id: str
    event_id: str
    requester_id: str
    receiver_id: str
    automatically: bool = False


class MeetingDeclined(DomainEvent):
    event_type = "events.MeetingDeclined"
    schema_version = 1

    meeting_id: str
    event_id: str
    requester_id: str
    receiver_id: str
    reason: str | None = None


class MeetingScheduled(DomainEvent):
    """The meeting got a slot and a place: table `T<n>` or the booth holder's booth."""

    event_type = "events.MeetingScheduled"
    schema_version = 1

    meeting_id: str
    event_id: str
    participant_ids: list[str]
    slot_id: str
    starts_at: datetime
    ends_at: datetime
    table: str | None = None
    booth: str | None = None
    by: str  # "participant", "scheduler" or "organiser"


class MeetingMoved(DomainEvent):
    event_type = "events.MeetingMoved"
    schema_version = 1

    meeting_id: str
    event_id: str
    participant_ids: list[str]
    from_slot_id: str
    slot_id: str
    starts_at: datetime
    ends_at: datetime
    table: str | None = None
    booth: str | None = None
    by: str  # "scheduler" or "organiser"


class MeetingUnscheduled(DomainEvent):
    """A re-run of the scheduler left the meeting out; it stays accepted, without a slot."""

    event_type = "events.MeetingUnscheduled"
    schema_version = 1

    meeting_id: str
    event_id: str
    participant_ids: list[str]
    from_slot_id: str
    reason: str


class MeetingLocked(DomainEvent):
    event_type = "events.MeetingLocked"
    schema_version = 1

    meeting_id: str
    event_id: str


class MeetingUnlocked(DomainEvent):
    event_type = "events.MeetingUnlocked"
    schema_version = 1

    meeting_id: str
    event_id: str


class MeetingCancelled(DomainEvent):
    """Withdrawn by a participant, cancelled by the organiser, or a participant left the event."""

    event_type = "events.MeetingCancelled"
    schema_version = 1

    meeting_id: str
    event_id: str
    participant_ids: list[str]
    by: str  # a participant id, or "organiser"
    was_scheduled: bool
    reason: str | None = None


class MeetingOutcomeRecorded(DomainEvent):
    event_type = "events.MeetingOutcomeRecorded"
    schema_version = 1

    meeting_id: str
    event_id: str
    participant_id: str  # who reports it
    outcome: str  # held, no_show, follow_up_planned, partnership_agreed
    note: str | None = None
