"""Federation's event types: frozen, past tense, versioned. Stored by name (`federation.<Name>`).

Streams:
- `agreement-{id}` (federation.SharingAgreement): what an owner cluster shares with a partner
  cluster, from concluded through amended to ended.
- `webhook-{id}` (federation.Webhook): a partner's webhook subscription. The signing secret is
  never in the log (the log is readable through the audit API); it lives in its table only.
- `peer-{id}` (federation.Peer): on the receiving side, a remote cluster whose webhook deliveries
  this instance accepts, and the joint items and forwarded registrations that came through it.
"""
from __future__ import annotations

from typing import Any

from shared.eventlog import DomainEvent, stream_id  # noqa: F401 - the package names its streams from here

STREAM_TYPES = {
    "agreement": "federation.SharingAgreement",
    "webhook": "federation.Webhook",
    "peer": "federation.Peer",
}


# -- sharing agreements (owner side)


class SharingAgreementConcluded(DomainEvent):
    """`event_ids`: the owner's events shared as joint events (each named explicitly: sharing is
    never implied by publishing); `public_profiles`: the profiles of the owner's active members;
    `shareable_opportunities`: published opportunities with visibility `partner_clusters` or `public`."""

    event_type = "federation.SharingAgreementConcluded"
    schema_version = 1

    agreement_id: str
    owner_cluster_id: str
    partner_cluster_id: str
    event_ids: list[str] = []
    public_profiles: bool = False
    shareable_opportunities: bool = False


class SharingAgreementAmended(DomainEvent):
    """The terms as a whole after the amendment (not a difference)."""

    event_type = "federation.SharingAgreementAmended"
    schema_version = 1

    agreement_id: str
    event_ids: list[str]
    public_profiles: bool
    shareable_opportunities: bool


class SharingAgreementEnded(DomainEvent):
    event_type = "federation.SharingAgreementEnded"
    schema_version = 1

    agreement_id: str
    reason: str | None = None


# -- webhooks (owner side)


class WebhookRegistered(DomainEvent):
    event_type = "federation.WebhookRegistered"
    schema_version = 1

    webhook_id: str
    partner_cluster_id: str
    url: str


class WebhookRemoved(DomainEvent):
    event_type = "federation.WebhookRemoved"
    schema_version = 1

    webhook_id: str


# -- the receiving side


class PeerConfigured(DomainEvent):
    """A remote cluster whose deliveries `local_cluster_id` accepts (its secret stays in the table)."""

    event_type = "federation.PeerConfigured"
    schema_version = 1

    peer_id: str
    local_cluster_id: str
    remote_cluster_id: str
    source: str
    events_url: str | None = None


class FederatedItemReceived(DomainEvent):
    """A signed CloudEvent from a peer, verified and recorded as it came (its data is the sender's
    public projection, never personal data)."""

    event_type = "federation.FederatedItemReceived"
    schema_version = 1

    peer_id: str
    cloud_event_id: str
    cloud_event_type: str
    source: str
    subject: str | None = None
    time: str | None = None
    sequence: str | None = None  # the sender's order (CloudEvents `sequence` extension)
    data: dict[str, Any] = {}


class RegistrationForwarded(DomainEvent):
    """A local member registered for a peer's joint event, and the peer accepted it."""

    event_type = "federation.RegistrationForwarded"
    schema_version = 1

    peer_id: str
    remote_event_id: str
    remote_participant_id: str
    organisation_id: str
    contact_id: str
    status: str
