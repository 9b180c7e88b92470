"""Matchmaking read models (services/matchmaking/projections.py): rebuildable from the event log.

The recommender's index has no table: it is held in memory and rebuilt from the log on start.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column]:
    return [
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "matchmaking_opportunities",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organisation_id", sa.String(36), nullable=False),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("cluster_id", sa.String(36)),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("summary", sa.String(1000), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("keywords", sa.JSON, nullable=False),
        sa.Column("competencies", sa.JSON, nullable=False),
        sa.Column("stages", sa.JSON, nullable=False),
        sa.Column("partner_kinds", sa.JSON, nullable=False),
        sa.Column("target_countries", sa.JSON, nullable=False),
        sa.Column("target_regions", sa.JSON, nullable=False),
        sa.Column("call_id", sa.String(100)),
        sa.Column("deadline", sa.Date),
        sa.Column("visibility", sa.String(20), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("published_on", sa.Date),
        sa.Column("published_by", sa.String(200)),
        sa.Column("expires_on", sa.Date),
        sa.Column("expired_on", sa.Date),
        sa.Column("expiry_reason", sa.String(20)),
        sa.Column("closed_on", sa.Date),
        sa.Column("close_reason", sa.String(1000)),
        sa.Column("rejection_reason", sa.String(1000)),
        sa.Column("duplicate_of", sa.JSON, nullable=False),
        *_stamps(),
    )
    op.create_index("ix_matchmaking_opportunities_owner", "matchmaking_opportunities",
                    ["organisation_id", "kind", "status"])
    op.create_index("ix_matchmaking_opportunities_expiry", "matchmaking_opportunities", ["status", "expires_on"])
    op.create_index("ix_matchmaking_opportunities_created", "matchmaking_opportunities", ["created_at", "id"])

    op.create_table(
        "matchmaking_interests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("opportunity_id", sa.String(36), nullable=False),
        sa.Column("organisation_id", sa.String(36), nullable=False),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("contribution", sa.Text),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("owner_organisation_id", sa.String(36)),
        sa.Column("owner_contact_id", sa.String(36)),
        sa.Column("decided_at", sa.String(32)),
        sa.Column("decline_reason", sa.String(1000)),
        *_stamps(),
    )
    op.create_index("ix_matchmaking_interests_opportunity", "matchmaking_interests",
                    ["opportunity_id", "created_at", "id"])
    op.create_index("ix_matchmaking_interests_organisation", "matchmaking_interests", ["organisation_id", "status"])

    op.create_table(
        "matchmaking_calls",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("programme", sa.String(30), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("url", sa.String(300)),
        sa.Column("opens_on", sa.Date),
        sa.Column("deadline", sa.Date, nullable=False),
        sa.Column("min_partners", sa.Integer, nullable=False),
        sa.Column("min_countries", sa.Integer, nullable=False),
        sa.Column("required_kinds", sa.JSON, nullable=False),
        sa.Column("eligible_countries", sa.JSON, nullable=False),
        sa.Column("keywords", sa.JSON, nullable=False),
        sa.Column("competencies", sa.JSON, nullable=False),
        *_stamps(),
    )
    op.create_index("ix_matchmaking_calls_deadline", "matchmaking_calls", ["deadline", "id"])


def downgrade() -> None:
    for table in ("matchmaking_calls", "matchmaking_interests", "matchmaking_opportunities"):
        op.drop_table(table)
