"""`GET /v1/audit`: the shared event log as its readers may see it. One service serves it, since every
service appends to the same log: platform admins read all of it, a cluster manager the events
recorded for their cluster (the tenant of the token that caused them)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from services.registry.api import Db, Log, Manager
from shared import pii
from shared.errors import Forbidden, InvalidInput
from shared.eventlog import to_timestamp_text
from shared.http import problems

router = APIRouter(prefix="/v1", tags=["audit"])

MAX_EVENT_TYPES = 20


class AuditPage(BaseModel):
    data: list[dict[str, Any]]
    next_after: int | None = Field(description="Pass as `after` for the next page; null on the last one")


@router.get("/audit", responses=problems(401, 403, 422))
async def audit(
    db: Db,
    log: Log,
    principal: Manager,
    actor: Annotated[str | None, Query(max_length=200, description="Who caused it (the token's subject)")] = None,
    stream: Annotated[str | None, Query(max_length=200, description="One stream, e.g. organisation-<id>")] = None,
    event_type: Annotated[list[str] | None, Query(description="Event types (repeatable)")] = None,
    tenant: Annotated[str | None, Query(max_length=100, description="Recorded for this cluster (admins)")] = None,
    since: Annotated[datetime | None, Query(description="Recorded at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Recorded before (ISO 8601)")] = None,
    after: Annotated[int, Query(ge=0, description="Only events after this position (`next_after`)")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Events of the log, oldest first, filtered; a cluster manager sees their cluster's only."""
    if not principal.is_admin:
        if tenant is not None and tenant != principal.managed_cluster:
            raise Forbidden(f"you may read the audit log of cluster {principal.managed_cluster} only")
        tenant = principal.managed_cluster
    types = event_type or []
    if len(types) > MAX_EVENT_TYPES or any(len(name) > 150 for name in types):
        raise InvalidInput.field("query.event_type", f"at most {MAX_EVENT_TYPES} types of 150 characters")
    if since is not None and until is not None and until <= since:
        raise InvalidInput.field("query.until", "must be after since")
    def read(conn: Connection) -> list[dict[str, Any]]:
        events = log.read(conn, after=after, limit=limit, event_types=types, stream_id=stream, actor=actor,
                          tenant=tenant, since=to_timestamp_text(since) if since else None,
                          until=to_timestamp_text(until) if until else None)
        # Personal data is sealed in the log: opened for the reader, "erased" once erased.
        return pii.open_tree(conn, [event.public() for event in events])

    events = await db.read(read)
    next_after = events[-1]["position"] if len(events) == limit else None
    return AuditPage(data=events, next_after=next_after)
