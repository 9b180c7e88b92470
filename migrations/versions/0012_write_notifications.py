"""The registry's read models tell when they change, for the per-process read cache (shared/read_cache.py).

A process caches its hot read responses and must drop them as soon as anything they were read
from changes, in any process; writes elsewhere in the store (the other services' events and read
models, leases, checkpoints, the outbox, idempotency keys) should not. The changes that count: a
row of a registry read model or person key changed, by whatever means (a registry write's inline
projection, a projection rebuilt from the log, an erasure, a repair by hand). The cached
responses are read from those tables only, so an append to the log counts through the read-model
rows its projection writes in the same transaction, not on its own.

PostgreSQL: a round trip per request to ask "has anything changed?" would cost as much as the
read it saves, so the database tells instead: statement-level triggers send
`pg_notify('clusterhub_writes', '')`, which PostgreSQL delivers to every listening session when
(and only if) the writing transaction commits, folded into one notification per transaction
(same channel, same payload). The channel name is `shared.read_cache.CHANNEL`, frozen here.

SQLite: a process learns of any commit by another connection from `PRAGMA data_version` (no
I/O); row triggers count the changes that count in `read_model_version`, which the process reads
only when data_version has moved, to tell a registry write from any other.

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
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
    """(trigger, table, events): any change on the read models."""
    return [(f"{table}_notify", table, "INSERT OR UPDATE OR DELETE OR TRUNCATE") for table in READ_MODELS]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_upgrade()
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


def _sqlite_triggers() -> list[tuple[str, str, str]]:
    """(trigger, table, event): SQLite has row triggers only, one event each."""
    return [(f"{table}_{event.lower()}_version", table, event)
            for table in READ_MODELS for event in ("INSERT", "UPDATE", "DELETE")]


def _sqlite_upgrade() -> None:
    op.create_table("read_model_version", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("version", sa.BigInteger, nullable=False))
    op.execute("INSERT INTO read_model_version (id, version) VALUES (1, 0)")
    for name, table, event in _sqlite_triggers():
        op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} "
                   "BEGIN UPDATE read_model_version SET version = version + 1 WHERE id = 1; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, _, _ in _sqlite_triggers():
            op.execute(f"DROP TRIGGER {name}")
        op.drop_table("read_model_version")
        return
    for name, table, _ in _triggers():
        op.execute(f"DROP TRIGGER {name} ON {table}")
    op.execute("DROP FUNCTION clusterhub_notify_write()")
