"""API keys (shared/api_keys.py): hashed secrets of machine clients, outside the log; and the log
indexed by tenant, for `GET /v1/audit` as a cluster manager sees it.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("cluster", sa.String(64)),
        sa.Column("organisation", sa.String(64)),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("revoked_at", sa.String(32)),
    )
    op.create_index("ix_events_tenant", "events", ["tenant", "position"])


def downgrade() -> None:
    op.drop_index("ix_events_tenant", "events")
    op.drop_table("auth_api_keys")
