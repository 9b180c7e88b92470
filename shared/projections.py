"""What the services' inline projectors share: the version and time stamps of a read-model row,
and dispatching a service's events to its projector's `on_<Name>` methods."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import Column, Connection, Integer, String, Table

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
