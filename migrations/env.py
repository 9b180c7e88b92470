"""Alembic environment: the URL comes from the caller (shared.migrate) or CLUSTERHUB_DATABASE_URL."""
from alembic import context
from sqlalchemy import create_engine

from shared.db import normalise_url
from shared.settings import CommonSettings

config = context.config
url = config.attributes.get("database_url") or CommonSettings().database_url
connection = config.attributes.get("connection")


def run(conn) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=conn, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    engine = create_engine(normalise_url(url))
    with engine.connect() as conn:
        run(conn)
        conn.commit()
    engine.dispose()
