"""Tables every service shares: the event log and the subscription checkpoints.

Read-model tables live with their service (`services/<name>/projections.py`) on the same
metadata, so Alembic and `projections rebuild` see one schema.
"""
from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()

# Stored text, not JSONB: the hash chain covers the exact bytes, and they must read back unchanged.
events = Table(
    "events",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("stream_id", String(200), nullable=False),
    Column("stream_type", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("event_type", String(150), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("data", Text, nullable=False),
    Column("metadata", Text, nullable=False),
    Column("actor", String(200), nullable=True),
    Column("tenant", String(100), nullable=True),
    Column("recorded_at", String(32), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
    Index("ix_events_event_type", "event_type", "position"),
    Index("ix_events_actor", "actor", "position"),
    Index("ix_events_tenant", "tenant", "position"),  # audit as a cluster manager sees it (migration 0007)
    Index("ix_events_recorded_at", "recorded_at"),
)

subscription_checkpoints = Table(
    "subscription_checkpoints",
    metadata,
    Column("subscription", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", String(32), nullable=False),
)
