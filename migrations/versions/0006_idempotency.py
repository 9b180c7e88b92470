"""Idempotency keys (shared/idempotency.py): the first response to each keyed write, kept 24 hours.

Not part of the log and not rebuildable: rows are deleted once they expire.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("service", sa.String(50), nullable=False),
        sa.Column("client", sa.String(80), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("owner", sa.String(32), nullable=False),
        sa.Column("locked_until", sa.String(32), nullable=False),
        sa.Column("response_status", sa.Integer),
        sa.Column("response_headers", sa.Text),
        sa.Column("response_body", sa.LargeBinary),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
