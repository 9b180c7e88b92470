"""SQLite: the database itself refuses an event that does not continue the log (shared/eventlog.py).

A BEFORE INSERT trigger checks each new row against what is stored: its position must be the
head's + 1 and its `prev_hash` the head's hash (on an empty log: position 1 after the genesis
hash), and its version the stream's last + 1 (1 for a new stream). Whoever writes the row,
the database refuses a broken chain, a position gap or a stream version gap, with one of two
messages that both begin with `event log refused` (shared.eventlog.CHAIN_REFUSED).

That check also lets an append skip reading the head: it chains its rows onto where the log's
last append ended and inserts them; when another writer appended since, the trigger refuses the
first row, and the log reads the head and chains again, still under the same write lock.

The table is rebuilt first, with `position INTEGER PRIMARY KEY`: the position becomes SQLite's
rowid, the key the rows are stored by, instead of a BIGINT column with an index of its own
beside the rowid, so each append writes one B-tree fewer and the trigger finds the head at the
end of the table itself. Rows, indexes and triggers are kept as they are.

PostgreSQL: the append functions (0011) run the same checks; no trigger is added there, and
the table is left as it is.

Revision ID: 0013
Revises: 0012
"""
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64  # shared.eventlog.GENESIS_HASH, frozen here as migrations are
# The head is the table's last row (position is the rowid); the stream's version one step on
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


_COLUMNS = """
    stream_id VARCHAR(200) NOT NULL,
    stream_type VARCHAR(100) NOT NULL,
    version INTEGER NOT NULL,
    event_type VARCHAR(150) NOT NULL,
    schema_version INTEGER NOT NULL,
    data TEXT NOT NULL,
    metadata TEXT NOT NULL,
    actor VARCHAR(200),
    tenant VARCHAR(100),
    recorded_at VARCHAR(32) NOT NULL,
    prev_hash VARCHAR(64) NOT NULL,
    hash VARCHAR(64) NOT NULL,
    CONSTRAINT uq_events_stream_version UNIQUE (stream_id, version)"""
ROWID_KEY = f"CREATE TABLE events_rebuilt (\n    position INTEGER NOT NULL PRIMARY KEY,{_COLUMNS}\n)"
SEPARATE_KEY = (f"CREATE TABLE events_rebuilt (\n    position BIGINT NOT NULL,{_COLUMNS},\n"
                "    PRIMARY KEY (position)\n)")  # as 0001 made it


def _rebuild_events(create: str) -> None:
    """Copy the log into a table made by `create`, put it in the place of `events`, and make
    the old table's indexes and triggers again on it (SQLite cannot change a key in place)."""
    conn = op.get_bind()
    kept = [sql for (sql,) in conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'events' AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL ORDER BY type, name")]
    for sql in (create, "INSERT INTO events_rebuilt SELECT * FROM events", "DROP TABLE events",
                "ALTER TABLE events_rebuilt RENAME TO events", *kept):
        conn.exec_driver_sql(sql)  # as written: no parameters to look for in trigger bodies


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild_events(ROWID_KEY)
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
    _rebuild_events(SEPARATE_KEY)
