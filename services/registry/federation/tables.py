"""Federation's tables (migration 0009 creates exactly these), on the shared metadata.

Owner side: the agreements' read model, partners' webhooks, the feed (one row per item a partner
may read, materialised in log order), its builder's own state, webhook deliveries and attempts.
Receiving side: peers, the items received from them, their joint events, forwarded registrations.
"""
from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, Index, Integer, String, Table, Text, UniqueConstraint

from shared.tables import metadata

# -- owner side: agreements (inline projection, for the API)

agreements = Table(
    "federation_agreements",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_cluster_id", String(64), nullable=False),
    Column("partner_cluster_id", String(64), nullable=False),
    Column("event_ids", JSON, nullable=False),
    Column("public_profiles", Boolean, nullable=False),
    Column("shareable_opportunities", Boolean, nullable=False),
    Column("status", String(10), nullable=False),  # in_force | ended
    Column("concluded_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_federation_agreements_owner", "owner_cluster_id"),
    Index("ix_federation_agreements_partner", "partner_cluster_id"),
)

# -- owner side: the feed, and what its builder knows at the position it has reached

feed_items = Table(
    "federation_feed_items",
    metadata,
    Column("partner_cluster_id", String(64), primary_key=True),
    Column("position", BigInteger, primary_key=True, autoincrement=False),  # of the log event behind it
    Column("item_index", Integer, primary_key=True, autoincrement=False),  # several items per event
    Column("owner_cluster_id", String(64), nullable=False),
    Column("type", String(150), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),  # the structured CloudEvent, exactly as served and signed
)

builder_agreements = Table(
    "federation_builder_agreements",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_cluster_id", String(64), nullable=False),
    Column("partner_cluster_id", String(64), nullable=False),
    Column("event_ids", JSON, nullable=False),
    Column("public_profiles", Boolean, nullable=False),
    Column("shareable_opportunities", Boolean, nullable=False),
    Column("in_force", Boolean, nullable=False),
)

builder_events = Table(
    "federation_builder_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("organiser_cluster_ids", JSON, nullable=False),
    Column("status", String(30), nullable=False),
    Column("snapshot", JSON, nullable=False),
)

builder_organisations = Table(
    "federation_builder_organisations",
    metadata,
    Column("organisation_id", String(64), primary_key=True),
    Column("archived", Boolean, nullable=False),
    Column("profile", JSON, nullable=False),
)

builder_memberships = Table(
    "federation_builder_memberships",
    metadata,
    Column("membership_id", String(64), primary_key=True),
    Column("organisation_id", String(64), nullable=False),
    Column("cluster_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Index("ix_federation_builder_memberships_org", "organisation_id"),
    Index("ix_federation_builder_memberships_cluster", "cluster_id", "status"),
)

builder_opportunities = Table(
    "federation_builder_opportunities",
    metadata,
    Column("opportunity_id", String(64), primary_key=True),
    Column("cluster_id", String(64)),
    Column("status", String(20), nullable=False),
    Column("visibility", String(30), nullable=False),
    Column("snapshot", JSON, nullable=False),
    Index("ix_federation_builder_opportunities_cluster", "cluster_id", "status"),
)

# -- owner side: webhooks and their delivery log

webhooks = Table(
    "federation_webhooks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("partner_cluster_id", String(64), nullable=False),
    Column("url", String(2000), nullable=False),
    # Kept as given: HMAC signing needs the secret itself, so it cannot be stored hashed.
    Column("secret", String(200), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", String(32), nullable=False),
    Index("ix_federation_webhooks_partner", "partner_cluster_id", "active"),
)

deliveries = Table(
    "federation_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("webhook_id", String(36), nullable=False),
    Column("partner_cluster_id", String(64), nullable=False),
    Column("owner_cluster_id", String(64), nullable=False),
    Column("item_position", BigInteger, nullable=False),
    Column("item_index", Integer, nullable=False),
    Column("cloud_event_id", String(100), nullable=False),
    Column("cloud_event_type", String(150), nullable=False),
    Column("status", String(10), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),  # since it was last queued (a replay starts again)
    Column("next_attempt_at", String(32), nullable=False),
    Column("last_status_code", Integer),
    Column("last_error", String(200)),
    Column("claimed_by", String(100)),
    Column("claimed_until", String(32)),
    Column("delivered_at", String(32)),
    Column("created_at", String(32), nullable=False),
    UniqueConstraint("webhook_id", "item_position", "item_index", name="uq_federation_deliveries_item"),
    Index("ix_federation_deliveries_due", "status", "next_attempt_at"),
    Index("ix_federation_deliveries_owner", "owner_cluster_id", "created_at"),
)

delivery_attempts = Table(
    "federation_delivery_attempts",
    metadata,
    Column("delivery_id", String(36), primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),  # 1, 2, … over the delivery's life
    Column("at", String(32), nullable=False),
    Column("outcome", String(10), nullable=False),  # delivered | retry | failed
    Column("http_status", Integer),
    Column("error", String(200)),  # a category (timeout, connection, http_5xx…), never the target's text
    Column("duration_ms", Integer, nullable=False),
)

# -- receiving side

peers = Table(
    "federation_peers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("local_cluster_id", String(64), nullable=False),
    Column("remote_cluster_id", String(64), nullable=False),
    Column("source", String(500), nullable=False),  # the CloudEvents `source` its deliveries carry
    Column("secret", String(200), nullable=False),  # the webhook secret the remote side returned
    Column("events_url", String(500)),  # the remote events API, for forwarded registrations
    Column("token", Text),  # the partner_cluster credential the remote operator issued to us
    Column("created_at", String(32), nullable=False),
    Index("ix_federation_peers_source", "source"),
)

received = Table(
    "federation_received",
    metadata,
    Column("peer_id", String(36), primary_key=True),
    Column("cloud_event_id", String(100), primary_key=True),
    Column("received_at", String(32), nullable=False),
)

joint_events = Table(
    "federation_joint_events",
    metadata,
    Column("peer_id", String(36), primary_key=True),
    Column("remote_event_id", String(64), primary_key=True),
    Column("local_cluster_id", String(64), nullable=False),
    Column("status", String(30), nullable=False),
    Column("snapshot", JSON, nullable=False),
    Column("sequence", String(40), nullable=False),  # of the item it was last set from: older ones are ignored
    Column("updated_at", String(32), nullable=False),
)

forwarded = Table(
    "federation_forwarded_registrations",
    metadata,
    Column("remote_participant_id", String(64), primary_key=True),
    Column("peer_id", String(36), nullable=False),
    Column("remote_event_id", String(64), nullable=False),
    Column("local_cluster_id", String(64), nullable=False),
    Column("organisation_id", String(64), nullable=False),
    Column("contact_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", String(32), nullable=False),
    Index("ix_federation_forwarded_event", "peer_id", "remote_event_id"),
)

BUILDER_TABLES = (builder_agreements, builder_events, builder_organisations, builder_memberships,
                  builder_opportunities, feed_items)
TABLES = (agreements, *BUILDER_TABLES, webhooks, deliveries, delivery_attempts, peers, received, joint_events,
          forwarded)
