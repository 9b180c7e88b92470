"""PostgreSQL: the event log's append as one server-side call (shared/eventlog.py).

An append must take the log's lock, read the chain head and the stream's version, and insert
rows chained onto that head. Sent as separate statements that is a round trip each; this
function does all of it in one. The rows (hashes included) are computed by the caller from the
head it expects (the last one it appended): the function inserts them only if that is still the
head and the stream is at the expected version, and otherwise inserts nothing and returns the
head it found, so that the caller chains the rows onto it and calls again (the lock is then
already held, so the second call cannot miss). PL/pgSQL takes a fresh snapshot per statement,
so the reads after the lock see every append committed before it was granted.

SQLite has nothing to add: `BEGIN IMMEDIATE` already serialises appends and a statement costs
no round trip.

Revision ID: 0011
Revises: 0010
"""
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ADVISORY_LOCK_KEY = 0x636C7573  # shared.eventlog.ADVISORY_LOCK_KEY, frozen here as migrations are
COLUMNS = ("position, stream_id, stream_type, version, event_type, schema_version, data, metadata, actor, tenant, "
           "recorded_at, prev_hash, hash")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
CREATE FUNCTION clusterhub_append(p_stream_id text, p_expected integer, p_after bigint, p_after_hash text,
                                  p_rows json)
RETURNS TABLE (stream_version integer, head_position bigint, head_hash text, inserted boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v integer;
    pos bigint;
    h text;
BEGIN
    PERFORM pg_advisory_xact_lock({ADVISORY_LOCK_KEY});
    SELECT max(e.version) INTO v FROM events AS e WHERE e.stream_id = p_stream_id;
    SELECT e.position, e.hash INTO pos, h FROM events AS e ORDER BY e.position DESC LIMIT 1;
    v := coalesce(v, 0);
    pos := coalesce(pos, 0);
    h := coalesce(h, repeat('0', 64));
    IF p_rows IS NULL OR pos <> p_after OR h <> p_after_hash
            OR (p_expected IS NOT NULL AND v <> p_expected) THEN
        RETURN QUERY SELECT v, pos, h, false;
        RETURN;
    END IF;
    INSERT INTO events ({COLUMNS})
    SELECT {COLUMNS} FROM json_populate_recordset(NULL::events, p_rows);
    RETURN QUERY SELECT v, pos, h, true;
END $$
""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION clusterhub_append(text, integer, bigint, text, json)")
