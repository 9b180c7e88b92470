"""Events service read models (services/events/projections.py): rebuildable from the event log.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
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
        "events_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("organiser_cluster_ids", sa.JSON, nullable=False),
        sa.Column("members_only", sa.Boolean, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("venue", sa.String(500)),
        sa.Column("online_url", sa.String(300)),
        sa.Column("time_zone", sa.String(60), nullable=False),
        sa.Column("starts_at", sa.String(20), nullable=False),
        sa.Column("ends_at", sa.String(20), nullable=False),
        sa.Column("capacity", sa.Integer),
        sa.Column("registration_opens_at", sa.String(20)),
        sa.Column("registration_closes_at", sa.String(20)),
        sa.Column("sessions", sa.JSON, nullable=False),
        sa.Column("b2b", sa.JSON),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("agenda_published", sa.Boolean, nullable=False),
        sa.Column("session_count", sa.Integer, nullable=False),
        sa.Column("last_schedule", sa.JSON),
        *_stamps(),
    )
    op.create_index("ix_events_events_starts_at", "events_events", ["starts_at", "id"])

    op.create_table(
        "events_b2b_sessions",
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("id", sa.String(10), nullable=False),
        sa.Column("title", sa.String(200)),
        sa.Column("starts_at", sa.String(20), nullable=False),
        sa.Column("slot_minutes", sa.Integer, nullable=False),
        sa.Column("slot_count", sa.Integer, nullable=False),
        sa.Column("tables", sa.Integer, nullable=False),
        sa.Column("room", sa.String(200)),
        sa.PrimaryKeyConstraint("event_id", "id", name="pk_events_b2b_sessions"),
    )

    op.create_table(
        "events_slots",
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("id", sa.String(20), nullable=False),
        sa.Column("session_id", sa.String(10), nullable=False),
        sa.Column("starts_at", sa.String(20), nullable=False),
        sa.Column("ends_at", sa.String(20), nullable=False),
        sa.Column("tables", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("event_id", "id", name="pk_events_slots"),
    )
    op.create_index("ix_events_slots_start", "events_slots", ["event_id", "starts_at"])

    op.create_table(
        "events_participants",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("organisation_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("organisation_name", sa.String(300), nullable=False),
        sa.Column("b2b", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attendance", sa.String(12)),
        sa.Column("queue_position", sa.BigInteger, nullable=False),
        sa.Column("offer", sa.Text),
        sa.Column("seek", sa.Text),
        sa.Column("keywords", sa.JSON, nullable=False),
        sa.Column("unavailable_slots", sa.JSON, nullable=False),
        sa.Column("booth", sa.String(40)),
        *_stamps(),
    )
    op.create_index("ix_events_participants_event", "events_participants", ["event_id", "status", "queue_position"])
    op.create_index("ix_events_participants_contact", "events_participants", ["event_id", "contact_id"])

    op.create_table(
        "events_meetings",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("requester_id", sa.String(36), nullable=False),
        sa.Column("receiver_id", sa.String(36), nullable=False),
        sa.Column("requester_name", sa.String(200), nullable=False),
        sa.Column("requester_organisation_name", sa.String(300), nullable=False),
        sa.Column("receiver_name", sa.String(200), nullable=False),
        sa.Column("receiver_organisation_name", sa.String(300), nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("slot_id", sa.String(20)),
        sa.Column("starts_at", sa.String(20)),
        sa.Column("ends_at", sa.String(20)),
        sa.Column("table_name", sa.String(10)),
        sa.Column("booth", sa.String(40)),
        sa.Column("locked", sa.Boolean, nullable=False),
        sa.Column("decline_reason", sa.String(500)),
        sa.Column("cancelled_by", sa.String(36)),
        sa.Column("cancel_reason", sa.String(500)),
        *_stamps(),
    )
    op.create_index("ix_events_meetings_event", "events_meetings", ["event_id", "status", "created_at"])
    op.create_index("ix_events_meetings_slot", "events_meetings", ["event_id", "slot_id"])
    op.create_index("ix_events_meetings_requester", "events_meetings", ["requester_id", "status"])
    op.create_index("ix_events_meetings_receiver", "events_meetings", ["receiver_id", "status"])

    op.create_table(
        "events_meeting_outcomes",
        sa.Column("meeting_id", sa.String(36), nullable=False),
        sa.Column("participant_id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("meeting_id", "participant_id", name="pk_events_meeting_outcomes"),
    )
    op.create_index("ix_events_meeting_outcomes_event", "events_meeting_outcomes", ["event_id"])


def downgrade() -> None:
    for table in ("events_meeting_outcomes", "events_meetings", "events_participants", "events_slots",
                  "events_b2b_sessions", "events_events"):
        op.drop_table(table)
