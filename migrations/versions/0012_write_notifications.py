"""PostgreSQL: NOTIFY on every committed write, for the per-process read cache (shared/read_cache.py).

A process caches its hot read responses and must drop them as soon as anything they were read
from changes, in any process. A round trip per request to ask "has anything changed?" would cost
as much as the read it saves, so the database tells instead: statement-level triggers send
`pg_notify('clusterhub_writes', '')`, which PostgreSQL delivers to every listening session when
(and only if) the writing transaction commits, and folds into one notification per transaction
(same channel, same payload).

The triggers sit on the event log (every domain write appends to it) and on the registry's read
models, so that writes that bypass the log (a projection rebuilt from the log, an erasure, a repair by hand)
invalidate too. The channel name is `shared.read_cache.CHANNEL`, frozen here as migrations are.

SQLite has nothing to add: `PRAGMA data_version` already tells a connection that another one
committed (see shared/read_cache.py).

Revision ID: 0012
Revises: 0011
"""
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

CHANNEL = "clusterhub_writes"
# The registry's read models, and the personal-data keys (erasing a person deletes theirs).
READ_MODELS = tuple(f"registry_{name}" for name in (
    "clusters", "organisations", "organisation_facets", "memberships", "contacts", "person_consents", "connections",
    "working_groups", "working_group_members")) + ("person_keys",)


def _triggers() -> list[tuple[str, str, str]]:
    """(trigger, table, events): inserts on the append-only log; any change on the read models."""
    return ([("clusterhub_events_notify", "events", "INSERT")]
            + [(f"{table}_notify", table, "INSERT OR UPDATE OR DELETE OR TRUNCATE")
               for table in READ_MODELS])


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
CREATE FUNCTION clusterhub_notify_write() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
END $$
""")
    for name, table, events in _triggers():
        op.execute(f"CREATE TRIGGER {name} AFTER {events} ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION clusterhub_notify_write()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, _ in _triggers():
        op.execute(f"DROP TRIGGER {name} ON {table}")
    op.execute("DROP FUNCTION clusterhub_notify_write()")
