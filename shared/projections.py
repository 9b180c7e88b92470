"""What the services' inline projectors share: the version and time stamps of a read-model row,
inserting rows, and dispatching a service's events to its projector's `on_<Name>` methods."""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import Column, Connection, Dialect, Integer, String, Table, insert

from shared.eventlog import RecordedEvent


def stamps() -> list[Column]:
    """The columns every read-model row of a stream carries: its stream version and times."""
    return [
        Column("version", Integer, nullable=False),
        Column("created_at", String(32), nullable=False),
        Column("updated_at", String(32), nullable=False),
    ]


def created(recorded: RecordedEvent) -> dict[str, Any]:
    return {"version": recorded.version, "created_at": recorded.recorded_at, "updated_at": recorded.recorded_at}


def touched(recorded: RecordedEvent) -> dict[str, Any]:
    return {"version": recorded.version, "updated_at": recorded.recorded_at}


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT `rows` (each with the same keys) into `table` in one statement on the driver.

    Projectors run in every write's transaction: building, caching and executing a SQLAlchemy
    statement per row costs several times what the driver takes to insert it. The SQL and
    the columns' bind processors (JSON text, booleans) are SQLAlchemy's own, so the rows stored
    are the ones `conn.execute(insert(table), rows)` stores."""
    if not rows:
        return
    sql, parameters = _compiled_insert(table, tuple(rows[0]), conn.dialect)
    driver = conn.connection.driver_connection
    if len(rows) == 1:
        driver.execute(sql, parameters(rows[0]))
    elif conn.dialect.name == "sqlite":
        driver.executemany(sql, [parameters(row) for row in rows])
    else:
        with driver.cursor() as cursor:  # psycopg pipelines an executemany: one round trip
            cursor.executemany(sql, [parameters(row) for row in rows])


@functools.cache
def _compiled_insert(table: Table, keys: tuple[str, ...],
                     dialect: Dialect) -> tuple[str, Callable[[Mapping[str, Any]], Any]]:
    """The INSERT of `keys` in the dialect's SQL, and what turns a row into its driver parameters."""
    compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
    processors = {key: table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys}
    processors = {key: process for key, process in processors.items() if process is not None}

    def processed(row: Mapping[str, Any]) -> dict[str, Any]:
        values = dict(row)
        for key, process in processors.items():
            values[key] = process(values[key])
        return values

    if compiled.positiontup is None:  # named parameters (psycopg)
        return compiled.string, processed
    order = tuple(compiled.positiontup)

    def positional(row: Mapping[str, Any]) -> tuple[Any, ...]:
        values = processed(row)
        return tuple(values[key] for key in order)

    return compiled.string, positional


class DispatchingProjector:
    """Dispatches `<prefix>.<Name>` to `on_<Name>(conn, event, recorded)`."""

    prefix: ClassVar[str]  # the service's event-type prefix
    name: str
    tables: Sequence[Table]

    def _method(self, event_type: str) -> Any:
        prefix, _, name = event_type.partition(".")
        return getattr(self, f"on_{name}", None) if prefix == self.prefix else None

    def handles(self, event_type: str) -> bool:
        return self._method(event_type) is not None

    def apply(self, conn: Connection, recorded: RecordedEvent) -> None:
        self._method(recorded.event_type)(conn, recorded.event, recorded)
