"""Federation: sharing agreements between clusters, the partner feed, webhooks and their delivery log,
and on the receiving side peers, received items and forwarded registrations
(services/registry/federation/tables.py).

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_agreements",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner_cluster_id", sa.String(64), nullable=False),
        sa.Column("partner_cluster_id", sa.String(64), nullable=False),
        sa.Column("event_ids", sa.JSON, nullable=False),
        sa.Column("public_profiles", sa.Boolean, nullable=False),
        sa.Column("shareable_opportunities", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("concluded_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_federation_agreements_owner", "federation_agreements", ["owner_cluster_id"])
    op.create_index("ix_federation_agreements_partner", "federation_agreements", ["partner_cluster_id"])
    op.create_table(
        "federation_builder_agreements",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner_cluster_id", sa.String(64), nullable=False),
        sa.Column("partner_cluster_id", sa.String(64), nullable=False),
        sa.Column("event_ids", sa.JSON, nullable=False),
        sa.Column("public_profiles", sa.Boolean, nullable=False),
        sa.Column("shareable_opportunities", sa.Boolean, nullable=False),
        sa.Column("in_force", sa.Boolean, nullable=False),
    )
    op.create_table(
        "federation_builder_events",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("organiser_cluster_ids", sa.JSON, nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=False),
    )
    op.create_table(
        "federation_builder_organisations",
        sa.Column("organisation_id", sa.String(64), primary_key=True),
        sa.Column("archived", sa.Boolean, nullable=False),
        sa.Column("profile", sa.JSON, nullable=False),
    )
    op.create_table(
        "federation_builder_memberships",
        sa.Column("membership_id", sa.String(64), primary_key=True),
        sa.Column("organisation_id", sa.String(64), nullable=False),
        sa.Column("cluster_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
    )
    op.create_index("ix_federation_builder_memberships_cluster", "federation_builder_memberships", ["cluster_id", "status"])
    op.create_index("ix_federation_builder_memberships_org", "federation_builder_memberships", ["organisation_id"])
    op.create_table(
        "federation_builder_opportunities",
        sa.Column("opportunity_id", sa.String(64), primary_key=True),
        sa.Column("cluster_id", sa.String(64)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("visibility", sa.String(30), nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=False),
    )
    op.create_index("ix_federation_builder_opportunities_cluster", "federation_builder_opportunities", ["cluster_id", "status"])
    op.create_table(
        "federation_feed_items",
        sa.Column("partner_cluster_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("item_index", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("owner_cluster_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(150), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "federation_webhooks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("partner_cluster_id", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_federation_webhooks_partner", "federation_webhooks", ["partner_cluster_id", "active"])
    op.create_table(
        "federation_deliveries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("webhook_id", sa.String(36), nullable=False),
        sa.Column("partner_cluster_id", sa.String(64), nullable=False),
        sa.Column("owner_cluster_id", sa.String(64), nullable=False),
        sa.Column("item_position", sa.BigInteger, nullable=False),
        sa.Column("item_index", sa.Integer, nullable=False),
        sa.Column("cloud_event_id", sa.String(100), nullable=False),
        sa.Column("cloud_event_type", sa.String(150), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.String(32), nullable=False),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.String(200)),
        sa.Column("claimed_by", sa.String(100)),
        sa.Column("claimed_until", sa.String(32)),
        sa.Column("delivered_at", sa.String(32)),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("webhook_id", "item_position", "item_index", name="uq_federation_deliveries_item"),
    )
    op.create_index("ix_federation_deliveries_due", "federation_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_federation_deliveries_owner", "federation_deliveries", ["owner_cluster_id", "created_at"])
    op.create_table(
        "federation_delivery_attempts",
        sa.Column("delivery_id", sa.String(36), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("error", sa.String(200)),
        sa.Column("duration_ms", sa.Integer, nullable=False),
    )
    op.create_table(
        "federation_peers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("local_cluster_id", sa.String(64), nullable=False),
        sa.Column("remote_cluster_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("events_url", sa.String(500)),
        sa.Column("token", sa.Text),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_federation_peers_source", "federation_peers", ["source"])
    op.create_table(
        "federation_received",
        sa.Column("peer_id", sa.String(36), primary_key=True),
        sa.Column("cloud_event_id", sa.String(100), primary_key=True),
        sa.Column("received_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "federation_joint_events",
        sa.Column("peer_id", sa.String(36), primary_key=True),
        sa.Column("remote_event_id", sa.String(64), primary_key=True),
        sa.Column("local_cluster_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=False),
        sa.Column("sequence", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "federation_forwarded_registrations",
        sa.Column("remote_participant_id", sa.String(64), primary_key=True),
        sa.Column("peer_id", sa.String(36), nullable=False),
        sa.Column("remote_event_id", sa.String(64), nullable=False),
        sa.Column("local_cluster_id", sa.String(64), nullable=False),
        sa.Column("organisation_id", sa.String(64), nullable=False),
        sa.Column("contact_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_federation_forwarded_event", "federation_forwarded_registrations", ["peer_id", "remote_event_id"])


def downgrade() -> None:
    op.drop_table("federation_forwarded_registrations")
    op.drop_table("federation_joint_events")
    op.drop_table("federation_received")
    op.drop_table("federation_peers")
    op.drop_table("federation_delivery_attempts")
    op.drop_table("federation_deliveries")
    op.drop_table("federation_webhooks")
    op.drop_table("federation_feed_items")
    op.drop_table("federation_builder_opportunities")
    op.drop_table("federation_builder_memberships")
    op.drop_table("federation_builder_organisations")
    op.drop_table("federation_builder_events")
    op.drop_table("federation_builder_agreements")
    op.drop_table("federation_agreements")
