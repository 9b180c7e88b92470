"""Events e-mail notifications (services/events/notifications.py): the outbox and what addresses it.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events_notify_events",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("starts_at", sa.String(32), nullable=False),
        sa.Column("ends_at", sa.String(32), nullable=False),
        sa.Column("venue", sa.String(300)),
        sa.Column("online_url", sa.String(500)),
        sa.Column("agenda_published", sa.Boolean, nullable=False),
    )
    op.create_table(
        "events_notify_participants",
        sa.Column("participant_id", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("organisation_name", sa.String(300), nullable=False),
    )
    op.create_table(
        "events_notify_meetings",
        sa.Column("meeting_id", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("requester_id", sa.String(64), nullable=False),
        sa.Column("receiver_id", sa.String(64), nullable=False),
        sa.Column("starts_at", sa.String(32)),
        sa.Column("ends_at", sa.String(32)),
        sa.Column("place", sa.String(100)),
    )
    op.create_index("ix_events_notify_meetings_event", "events_notify_meetings", ["event_id"])
    op.create_table(
        "events_outbox",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("event_position", sa.BigInteger, nullable=False),
        sa.Column("event_type", sa.String(150), nullable=False),
        sa.Column("participant_id", sa.String(64)),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("recipient_name", sa.String(200)),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.String(32), nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("claimed_by", sa.String(100)),
        sa.Column("claimed_until", sa.String(32)),
        sa.Column("sent_at", sa.String(32)),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("event_position", "recipient", name="uq_events_outbox_event_recipient"),
    )
    op.create_index("ix_events_outbox_due", "events_outbox", ["status", "next_attempt_at"])
    op.create_index("ix_events_outbox_participant", "events_outbox", ["participant_id"])


def downgrade() -> None:
    for table in ("events_outbox", "events_notify_meetings", "events_notify_participants", "events_notify_events"):
        op.drop_table(table)
