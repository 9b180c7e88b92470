"""PostgreSQL: the event log's append as one server-side call (shared/eventlog.py).

An append must take the log's lock, read the chain head and the stream's version, and insert
rows chained onto that head. Sent as separate statements that is a round trip each; these
functions do all of it in one. The rows (hashes included) are computed by the caller from the
head it expects (where its last append ended): a function inserts them only if that is still
the head and the stream is at the expected version, and otherwise inserts nothing and returns
the head it found; the caller then chains the rows onto that head and inserts them (it holds
the lock by then, so the head cannot move). PL/pgSQL takes a fresh snapshot per statement, so
the reads after the lock see every append committed before it was granted.

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
_TYPES = ("bigint", "text", "text", "integer", "text", "integer", "text", "text", "text", "text", "text", "text",
          "text")
_ONE_PARAMETERS = ", ".join(f"p_{name.strip()} {kind}" for name, kind in zip(COLUMNS.split(","), _TYPES))
_ONE_VALUES = ", ".join(f"p_{name.strip()}" for name in COLUMNS.split(","))
_LOCK = f"PERFORM pg_advisory_xact_lock({ADVISORY_LOCK_KEY});"
# Whether the head is (position, hash); on an empty log, whether they are (0, the genesis hash).
_HEAD_IS = ("coalesce((SELECT e.position = {0} AND e.hash = {1} FROM events AS e ORDER BY e.position DESC LIMIT 1), "
            "{0} = 0 AND {1} = repeat('0', 64))")
_VERSION = "coalesce((SELECT max(e.version) FROM events AS e WHERE e.stream_id = p_stream_id), 0)"
# On a miss: the stream's version and the head, for the caller to chain onto, as one text
# (a scalar result costs the server less than a row of OUT parameters).
_MISS = f"""
    SELECT e.position, e.hash INTO head_position, head_hash FROM events AS e ORDER BY e.position DESC LIMIT 1;
    RETURN {_VERSION} || ',' || coalesce(head_position, 0) || ',' || coalesce(head_hash, repeat('0', 64));"""
_DECLARE = "DECLARE head_position bigint; head_hash text;"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # One event, as typed parameters (a JSON document costs the server more than the insert):
    # the row goes in if the head is the event before it and its stream is at the version
    # before its own. NULL when it went in (two statements: the lock and the guarded insert),
    # else "stream version,head position,head hash".
    op.execute(f"""
CREATE FUNCTION clusterhub_append_one({_ONE_PARAMETERS}) RETURNS text
LANGUAGE plpgsql AS $$
{_DECLARE}
BEGIN
    {_LOCK}
    INSERT INTO events ({COLUMNS}) SELECT {_ONE_VALUES}
    WHERE {_HEAD_IS.format("p_position - 1", "p_prev_hash")} AND {_VERSION} = p_version - 1;
    IF FOUND THEN
        RETURN NULL;
    END IF;{_MISS}
END $$
""")
    # Any number of events, as a JSON array of `events` records, chained onto (p_after,
    # p_after_hash) at version p_expected (NULL: any); with no rows, only the lock and the reads.
    # Returns as clusterhub_append_one does.
    op.execute(f"""
CREATE FUNCTION clusterhub_append(p_stream_id text, p_expected integer, p_after bigint, p_after_hash text,
                                  p_rows json) RETURNS text
LANGUAGE plpgsql AS $$
{_DECLARE}
BEGIN
    {_LOCK}
    IF p_rows IS NOT NULL THEN
        INSERT INTO events ({COLUMNS})
        SELECT {COLUMNS} FROM json_populate_recordset(NULL::events, p_rows)
        WHERE {_HEAD_IS.format("p_after", "p_after_hash")} AND (p_expected IS NULL OR {_VERSION} = p_expected);
        IF FOUND THEN
            RETURN NULL;
        END IF;
    END IF;{_MISS}
END $$
""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION clusterhub_append(text, integer, bigint, text, json)")
        op.execute(f"DROP FUNCTION clusterhub_append_one({', '.join(_TYPES)})")
