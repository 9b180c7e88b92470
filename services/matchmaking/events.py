"""The matchmaking service's event types: frozen, past tense, versioned. Stored by name (`matchmaking.<Name>`).

Streams:
- `opportunity-{id}` (matchmaking.Opportunity): a cooperation opportunity from draft to closed,
  with the duplicate flags raised against it.
- `interest-{id}` (matchmaking.Interest): one expression of interest, from sent to accepted or
  declined. Acceptance carries both sides' organisation and contact, so that a reader of the
  log alone (the index feeder) learns the new tie without looking anything up.
- `call-{call_id}` (matchmaking.FundingCall): a funding call of the catalogue, by its official id.

Updates carry only the changed fields, as JSON values, under `changes`. Dates are ISO dates.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from shared.eventlog import DomainEvent, stream_id  # noqa: F401 - the service names its streams from here

STREAM_TYPES = {
    "opportunity": "matchmaking.Opportunity",
    "interest": "matchmaking.Interest",
    "call": "matchmaking.FundingCall",
}


# -- opportunities: draft -> submitted -> published -> expired -> published (renewed); any -> closed


class OpportunityDrafted(DomainEvent):
    event_type = "matchmaking.OpportunityDrafted"
    schema_version = 1

    opportunity_id: str
    organisation_id: str
    contact_id: str
    cluster_id: str | None = None
    kind: str
    title: str
    summary: str
    description: str | None = None
    keywords: list[str] = []
    competencies: list[str] = []
    stages: list[str] = []
    partner_kinds: list[str] = []
    target_countries: list[str] = []
    target_regions: list[str] = []
    call_id: str | None = None
    deadline: date | None = None
    visibility: str


class OpportunityUpdated(DomainEvent):
    event_type = "matchmaking.OpportunityUpdated"
    schema_version = 1

    opportunity_id: str
    changes: dict[str, Any]


class DuplicateFlagged(DomainEvent):
    """The opportunity looks like another open one of the same organisation: flagged, not refused."""

    event_type = "matchmaking.DuplicateFlagged"
    schema_version = 1

    opportunity_id: str
    duplicate_of: str
    similarity: float


class OpportunitySubmitted(DomainEvent):
    event_type = "matchmaking.OpportunitySubmitted"
    schema_version = 1

    opportunity_id: str


class OpportunityRejected(DomainEvent):
    """The reviewer sent it back to draft, saying why."""

    event_type = "matchmaking.OpportunityRejected"
    schema_version = 1

    opportunity_id: str
    reviewer: str
    reason: str


class OpportunityPublished(DomainEvent):
    """A cluster manager reviewed and published it; open through `expires_on`."""

    event_type = "matchmaking.OpportunityPublished"
    schema_version = 1

    opportunity_id: str
    reviewer: str
    on: date
    expires_on: date


class OpportunityExpired(DomainEvent):
    event_type = "matchmaking.OpportunityExpired"
    schema_version = 1

    opportunity_id: str
    on: date
    reason: str  # "deadline" or "twelve_months"


class OpportunityRenewed(DomainEvent):
    event_type = "matchmaking.OpportunityRenewed"
    schema_version = 1

    opportunity_id: str
    on: date
    deadline: date | None = None
    expires_on: date


class OpportunityClosed(DomainEvent):
    event_type = "matchmaking.OpportunityClosed"
    schema_version = 1

    opportunity_id: str
    on: date
    reason: str | None = None


# -- expressions of interest


class InterestExpressed(DomainEvent):
    event_type = "matchmaking.InterestExpressed"
    schema_version = 1

    interest_id: str
    opportunity_id: str
    organisation_id: str
    contact_id: str
    message: str
    contribution: str | None = None  # what they bring


class InterestAccepted(DomainEvent):
    """The owner accepted: each side now sees the other's organisation and contact."""

    event_type = "matchmaking.InterestAccepted"
    schema_version = 1

    interest_id: str
    opportunity_id: str
    owner_organisation_id: str
    owner_contact_id: str
    organisation_id: str
    contact_id: str


class InterestDeclined(DomainEvent):
    event_type = "matchmaking.InterestDeclined"
    schema_version = 1

    interest_id: str
    opportunity_id: str
    reason: str | None = None


# -- funding calls


class FundingCallRegistered(DomainEvent):
    event_type = "matchmaking.FundingCallRegistered"
    schema_version = 1

    call_id: str
    programme: str
    title: str
    description: str | None = None
    url: str | None = None
    opens_on: date | None = None
    deadline: date
    min_partners: int = 1
    min_countries: int = 1
    required_kinds: list[str] = []
    eligible_countries: list[str] = []
    keywords: list[str] = []
    competencies: list[str] = []


class FundingCallUpdated(DomainEvent):
    event_type = "matchmaking.FundingCallUpdated"
    schema_version = 1

    call_id: str
    changes: dict[str, Any]
