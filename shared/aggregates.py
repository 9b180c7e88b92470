"""The base of the registry's and matchmaking's aggregates: state folded from one stream, saved
back by appending at the version it was loaded at (so a concurrent writer is a 409, never a lost
update). The events service keeps its entities in read-model rows instead (services/events/domain.py)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from sqlalchemy import Connection

from shared.errors import Conflict, NotFound, PreconditionFailed
from shared.eventlog import DomainEvent, EventLog, Metadata, RecordedEvent, stream_id


@dataclass
class Aggregate:
    """State folded from one stream; `version` is the stream version it was loaded at."""

    id: str
    version: int = 0
    kind: ClassVar[str]  # stream prefix
    label: ClassVar[str]  # what errors call it
    stream_types: ClassVar[Mapping[str, str]]  # stream prefix -> stream type, the service's own

    @classmethod
    def load(cls, conn: Connection, log: EventLog, entity_id: str) -> Self:
        aggregate = cls(entity_id)
        for recorded in log.read_stream(conn, aggregate.stream_id):
            handler = getattr(aggregate, f"on_{type(recorded.event).__name__}", None)
            if handler:
                handler(recorded.event)
            aggregate.version = recorded.version
        return aggregate

    @property
    def stream_id(self) -> str:
        return stream_id(self.kind, self.id)

    @property
    def exists(self) -> bool:
        return self.version > 0

    def found(self, expected_version: int | None = None) -> Self:
        """This aggregate, if it exists and (when the caller says) is still at `expected_version`."""
        if not self.exists:
            raise NotFound(f"{self.label} {self.id} not found")
        if expected_version is not None and expected_version != self.version:
            raise PreconditionFailed(f"{self.label} {self.id} is at version {self.version}, not {expected_version}",
                                     current_version=self.version)
        return self

    def new(self) -> None:
        if self.exists:
            raise Conflict(f"{self.label} {self.id} already exists", id=self.id)

    def save(self, conn: Connection, log: EventLog, events: list[DomainEvent],
             metadata: Metadata) -> list[RecordedEvent]:
        """Append `events` at the version loaded; returns them as recorded."""
        if not events:
            return []
        recorded = log.append(conn, self.stream_id, self.stream_types[self.kind], self.version, events, metadata)
        self.version += len(events)
        return recorded
