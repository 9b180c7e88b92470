"""Matchmaking read models: opportunities, expressions of interest and funding calls, fed by the
service's own events in the append's transaction (rebuildable: `clusterhub projections rebuild`).

Each projector handles `matchmaking.<Name>` with a method `on_<Name>`, reading the typed event.
The recommender's index is not here: it lives in memory and follows the whole log (`feed.py`).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Date,
    Index,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from shared.eventlog import DomainEvent, Projector, RecordedEvent
from shared.projections import DispatchingProjector, created, stamps, touched
from shared.tables import metadata

# --------------------------------------------------------------------------------------------
# Tables (migration 0005 creates exactly these)


opportunities = Table(
    "matchmaking_opportunities",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("organisation_id", String(36), nullable=False),
    Column("contact_id", String(36), nullable=False),
    Column("cluster_id", String(36)),
    Column("kind", String(30), nullable=False),
    Column("title", String(300), nullable=False),
    Column("summary", String(1000), nullable=False),
    Column("description", Text),
    Column("keywords", JSON, nullable=False),
    Column("competencies", JSON, nullable=False),
    Column("stages", JSON, nullable=False),
    Column("partner_kinds", JSON, nullable=False),
    Column("target_countries", JSON, nullable=False),
    Column("target_regions", JSON, nullable=False),
    Column("call_id", String(100)),
    Column("deadline", Date),
    Column("visibility", String(20), nullable=False),
    Column("status", String(12), nullable=False),
    Column("published_on", Date),
    Column("published_by", String(200)),
    Column("expires_on", Date),
    Column("expired_on", Date),
    Column("expiry_reason", String(20)),
    Column("closed_on", Date),
    Column("close_reason", String(1000)),
    Column("rejection_reason", String(1000)),
    Column("duplicate_of", JSON, nullable=False),  # [{opportunity_id, similarity}]
    *stamps(),
    Index("ix_matchmaking_opportunities_owner", "organisation_id", "kind", "status"),
    Index("ix_matchmaking_opportunities_expiry", "status", "expires_on"),
    Index("ix_matchmaking_opportunities_created", "created_at", "id"),
)

interests = Table(
    "matchmaking_interests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("opportunity_id", String(36), nullable=False),
    Column("organisation_id", String(36), nullable=False),
    Column("contact_id", String(36), nullable=False),
    Column("message", Text, nullable=False),
    Column("contribution", Text),
    Column("status", String(10), nullable=False),
    Column("owner_organisation_id", String(36)),  # set on acceptance: the contact exchange
    Column("owner_contact_id", String(36)),
    Column("decided_at", String(32)),
    Column("decline_reason", String(1000)),
    *stamps(),
    Index("ix_matchmaking_interests_opportunity", "opportunity_id", "created_at", "id"),
    Index("ix_matchmaking_interests_organisation", "organisation_id", "status"),
)

calls = Table(
    "matchmaking_calls",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("programme", String(30), nullable=False),
    Column("title", String(300), nullable=False),
    Column("description", Text),
    Column("url", String(300)),
    Column("opens_on", Date),
    Column("deadline", Date, nullable=False),
    Column("min_partners", Integer, nullable=False),
    Column("min_countries", Integer, nullable=False),
    Column("required_kinds", JSON, nullable=False),
    Column("eligible_countries", JSON, nullable=False),
    Column("keywords", JSON, nullable=False),
    Column("competencies", JSON, nullable=False),
    *stamps(),
    Index("ix_matchmaking_calls_deadline", "deadline", "id"),
)

TABLES = (opportunities, interests, calls)


# --------------------------------------------------------------------------------------------
# Projectors


class _Projector(DispatchingProjector):
    prefix = "matchmaking"


def _fields(event: DomainEvent, *, without: str) -> dict[str, Any]:
    return {k: v for k, v in event.model_dump().items() if k != without}


def _dated(changes: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """`changes` as the columns take them: JSON date strings back to dates."""
    values = dict(changes)
    for name in names:
        if isinstance(values.get(name), str):
            values[name] = date.fromisoformat(values[name])
    return values


class OpportunityProjector(_Projector):
    name = "matchmaking.opportunities"
    tables: Sequence[Table] = (opportunities,)

    def _set(self, conn: Connection, opportunity_id: str, recorded: RecordedEvent, **values: Any) -> None:
        conn.execute(update(opportunities).where(opportunities.c.id == opportunity_id)
                     .values(**values, **touched(recorded)))

    def on_OpportunityDrafted(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(insert(opportunities).values(id=event.opportunity_id, **_fields(event, without="opportunity_id"),
                                                  status="draft", duplicate_of=[], **created(recorded)))

    def on_OpportunityUpdated(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.opportunity_id, recorded, **_dated(event.changes, ["deadline"]))

    def on_DuplicateFlagged(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        flags = conn.execute(select(opportunities.c.duplicate_of)
                             .where(opportunities.c.id == event.opportunity_id)).scalar_one()
        flag = {"opportunity_id": event.duplicate_of, "similarity": event.similarity}
        self._set(conn, event.opportunity_id, recorded, duplicate_of=[*flags, flag])

    def on_OpportunitySubmitted(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.opportunity_id, recorded, status="submitted")

    def on_OpportunityRejected(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.opportunity_id, recorded, status="draft", rejection_reason=event.reason)

    def on_OpportunityPublished(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.opportunity_id, recorded, status="published", published_on=event.on,
                  published_by=event.reviewer, expires_on=event.expires_on, rejection_reason=None)

    def on_OpportunityExpired(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.opportunity_id, recorded, status="expired", expired_on=event.on,
                  expiry_reason=event.reason)

    def on_OpportunityRenewed(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.opportunity_id, recorded, status="published", deadline=event.deadline,
                  expires_on=event.expires_on, expired_on=None, expiry_reason=None)

    def on_OpportunityClosed(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.opportunity_id, recorded, status="closed", closed_on=event.on, close_reason=event.reason)


class InterestProjector(_Projector):
    name = "matchmaking.interests"
    tables: Sequence[Table] = (interests,)

    def on_InterestExpressed(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(insert(interests).values(id=event.interest_id, **_fields(event, without="interest_id"),
                                              status="pending", **created(recorded)))

    def on_InterestAccepted(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(update(interests).where(interests.c.id == event.interest_id).values(
            status="accepted", owner_organisation_id=event.owner_organisation_id,
            owner_contact_id=event.owner_contact_id, decided_at=recorded.recorded_at, **touched(recorded)))

    def on_InterestDeclined(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(update(interests).where(interests.c.id == event.interest_id).values(
            status="declined", decline_reason=event.reason, decided_at=recorded.recorded_at, **touched(recorded)))


class CallProjector(_Projector):
    name = "matchmaking.calls"
    tables: Sequence[Table] = (calls,)

    def on_FundingCallRegistered(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(insert(calls).values(id=event.call_id, **_fields(event, without="call_id"), **created(recorded)))

    def on_FundingCallUpdated(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(update(calls).where(calls.c.id == event.call_id)
                     .values(**_dated(event.changes, ["opens_on", "deadline"]), **touched(recorded)))


PROJECTORS: list[Projector] = [OpportunityProjector(), InterestProjector(), CallProjector()]
