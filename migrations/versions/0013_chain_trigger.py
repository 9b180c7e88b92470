"""SQLite: the database itself refuses an event that does not continue the log (shared/eventlog.py).

A BEFORE INSERT trigger checks each new row against what is stored: its position must be the
head's + 1 and its `prev_hash` the head's hash (on an empty log: position 1 after the genesis
hash), and its version the stream's last + 1 (1 for a new stream). Whoever writes the row,
the database refuses a broken chain, a position gap or a stream version gap, with one of two
messages that both begin with `event log refused` (shared.eventlog.CHAIN_REFUSED).

That check also lets an append skip reading the head: it chains its rows onto where the log's
last append ended and inserts them; when another writer appended since, the trigger refuses the
first row, and the log reads the head and chains again, still under the same write lock.

PostgreSQL: the append functions (0011) run the same checks; no trigger is added there.

Revision ID: 0013
Revises: 0012
"""
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64  # shared.eventlog.GENESIS_HASH, frozen here as migrations are
# The head is one descending step on the position index; the stream's version one on
# (stream_id, version). An empty log has no head row: the subquery is NULL, and the row must
# then be the first.
_CONTINUES_CHAIN = (
    "coalesce((SELECT position = NEW.position - 1 AND hash = NEW.prev_hash FROM events "
    "ORDER BY position DESC LIMIT 1), "
    f"NEW.position = 1 AND NEW.prev_hash = '{GENESIS_HASH}') IS 1"
)
_CONTINUES_STREAM = (
    "coalesce((SELECT max(version) FROM events WHERE stream_id = NEW.stream_id), 0) IS NEW.version - 1"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(f"""
CREATE TRIGGER events_continue_log BEFORE INSERT ON events
BEGIN
    SELECT CASE
        WHEN NOT ({_CONTINUES_CHAIN})
        THEN RAISE(ABORT, 'event log refused: position and prev_hash must follow the head of the log')
        WHEN NOT ({_CONTINUES_STREAM})
        THEN RAISE(ABORT, 'event log refused: version must follow the stream''s last version')
    END;
END""")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER events_continue_log")
