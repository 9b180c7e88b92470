"""The registry's event types: frozen, past tense, versioned. Stored by name, never by import path.

Streams: `cluster-{id}`, `organisation-{id}`, `person-{id}` (contacts: person data apart, so a
later issue can crypto-shred it), `membership-{id}`, `connection-{id}`, `working-group-{id}`.
Updates carry only the changed fields, as JSON values, under `changes`.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from shared.eventlog import DomainEvent, stream_id  # noqa: F401 - the service names its streams from here

STREAM_TYPES = {
    "cluster": "registry.Cluster",
    "organisation": "registry.Organisation",
    "person": "registry.Person",
    "membership": "registry.Membership",
    "connection": "registry.Connection",
    "working-group": "registry.WorkingGroup",
}


# -- clusters ----------------------------------------------------------------------------------


class ClusterRegistered(DomainEvent):
    event_type = "registry.ClusterRegistered"
    schema_version = 1

    cluster_id: str
    name: str
    acronym: str
    country: str
    nuts_region: str | None = None
    thematic_focus: str | None = None
    legal_form: str
    website: str | None = None
    description: str | None = None


class ClusterUpdated(DomainEvent):
    event_type = "registry.ClusterUpdated"
    schema_version = 1

    cluster_id: str
    changes: dict[str, Any]


class ClusterArchived(DomainEvent):
    event_type = "registry.ClusterArchived"
    schema_version = 1

    cluster_id: str
    reason: str | None = None


# -- organisations -----------------------------------------------------------------------------


class OrganisationRegistered(DomainEvent):
    """v2 split v1's single `name` into `legal_name` and `short_name`."""

    event_type = "registry.OrganisationRegistered"
    schema_version = 2

    organisation_id: str
    legal_name: str
    short_name: str | None = None
    kind: str
    company_size: str | None = None
    roles: list[str] = []
    stages: list[str] = []
    competencies: list[str] = []
    keywords: list[str] = []
    country: str
    nuts_region: str | None = None
    website: str | None = None
    description: str | None = None
    vat: str | None = None
    pic: str | None = None
    ror: str | None = None

    @staticmethod
    def upcast_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
        data["legal_name"] = data.pop("name")
        data["short_name"] = None
        return data


class OrganisationUpdated(DomainEvent):
    event_type = "registry.OrganisationUpdated"
    schema_version = 1

    organisation_id: str
    changes: dict[str, Any]


class OrganisationArchived(DomainEvent):
    event_type = "registry.OrganisationArchived"
    schema_version = 1

    organisation_id: str
    reason: str | None = None


# -- contacts (person streams) -----------------------------------------------------------------
#
# v2 of ContactAdded and ContactUpdated: name, email, phone and position are sealed envelopes
# (`pii:v1:<person>:...`, shared/pii.py), never plaintext; a v1 event kept its plaintext, which
# reads through unchanged (opening a value that is not an envelope returns it as it is).


def _same(data: dict[str, Any]) -> dict[str, Any]:
    return data


class ContactAdded(DomainEvent):
    event_type = "registry.ContactAdded"
    schema_version = 2

    contact_id: str
    organisation_id: str
    name: str
    email: str | None = None
    phone: str | None = None
    position: str | None = None

    upcast_v1_v2 = staticmethod(_same)  # same fields; v1 values are plaintext


class ContactUpdated(DomainEvent):
    event_type = "registry.ContactUpdated"
    schema_version = 2

    contact_id: str
    changes: dict[str, Any]  # sealed values since v2

    upcast_v1_v2 = staticmethod(_same)


class ContactRemoved(DomainEvent):
    event_type = "registry.ContactRemoved"
    schema_version = 1

    contact_id: str
    organisation_id: str


class ConsentRecorded(DomainEvent):
    """What the person agreed to, as a whole, at `recorded_at` (UTC, ISO 8601)."""

    event_type = "registry.ConsentRecorded"
    schema_version = 1

    contact_id: str
    newsletter: bool
    share_profile_with_partner_clusters: bool
    recorded_at: str


class PersonErased(DomainEvent):
    """The person's key was deleted: their sealed data in every event and table reads "erased".
    Carries no personal data (who asked is in the metadata, as for every event)."""

    event_type = "registry.PersonErased"
    schema_version = 1

    contact_id: str
    erased_at: str


# -- memberships -------------------------------------------------------------------------------


class MembershipApplied(DomainEvent):
    event_type = "registry.MembershipApplied"
    schema_version = 1

    membership_id: str
    organisation_id: str
    cluster_id: str
    fee_category: str
    yearly_fee: str  # decimal as text: money never passes through a float
    currency: str
    applied_on: date


class MembershipActivated(DomainEvent):
    event_type = "registry.MembershipActivated"
    schema_version = 1

    membership_id: str
    on: date
    period_end: date


class MembershipSuspended(DomainEvent):
    event_type = "registry.MembershipSuspended"
    schema_version = 1

    membership_id: str
    on: date
    reason: str | None = None


class MembershipRenewed(DomainEvent):
    event_type = "registry.MembershipRenewed"
    schema_version = 1

    membership_id: str
    period_end: date
    yearly_fee: str


class MembershipEnded(DomainEvent):
    event_type = "registry.MembershipEnded"
    schema_version = 1

    membership_id: str
    on: date
    reason: str | None = None


# -- connections -------------------------------------------------------------------------------


class ConnectionRecorded(DomainEvent):
    event_type = "registry.ConnectionRecorded"
    schema_version = 1

    connection_id: str
    source_id: str
    target_id: str
    kind: str
    description: str | None = None
    since: date | None = None


class ConnectionEnded(DomainEvent):
    event_type = "registry.ConnectionEnded"
    schema_version = 1

    connection_id: str
    on: date


# -- working groups ----------------------------------------------------------------------------


class WorkingGroupFormed(DomainEvent):
    event_type = "registry.WorkingGroupFormed"
    schema_version = 1

    working_group_id: str
    cluster_id: str
    name: str
    description: str | None = None


class WorkingGroupMemberJoined(DomainEvent):
    event_type = "registry.WorkingGroupMemberJoined"
    schema_version = 1

    working_group_id: str
    organisation_id: str
    role: str


class WorkingGroupMemberLeft(DomainEvent):
    event_type = "registry.WorkingGroupMemberLeft"
    schema_version = 1

    working_group_id: str
    organisation_id: str
