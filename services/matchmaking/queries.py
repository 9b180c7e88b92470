"""Reads over the matchmaking read models: one row by id, filtered lists with keyset pagination.

Opportunity reads take today's date: a published opportunity past its last open day reads as
expired at once, before the sweep records the event (see `domain.py`).
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, String, and_, cast, func, not_, or_, select
from sqlalchemy.sql import ColumnElement

from services.matchmaking.models import CallPublic, InterestPublic, OpportunityPublic, Page
from services.matchmaking.projections import calls, interests, opportunities
from shared.pagination import paged

T = TypeVar("T")
o = opportunities.c


# --------------------------------------------------------------------------------------------
# Opportunities


def _due(on: date) -> ColumnElement[bool]:
    return and_(o.status == "published", o.expires_on < on)


def effective(row: dict[str, Any], on: date) -> dict[str, Any]:
    """The row as of `on`: published but past its last open day reads as expired (why, and since when)."""
    if row["status"] == "published" and row["expires_on"] is not None and row["expires_on"] < on:
        deadline = row["deadline"]
        reason = "deadline" if deadline is not None and deadline <= row["expires_on"] else "twelve_months"
        return {**row, "status": "expired", "expired_on": row["expires_on"] + timedelta(days=1),
                "expiry_reason": reason}
    return row


def _with_interest_count() -> Select:
    count = (select(func.count()).select_from(interests).where(interests.c.opportunity_id == o.id)
             .scalar_subquery())
    return select(opportunities, count.label("interest_count"))


def get_opportunity(conn: Connection, opportunity_id: str, *, on: date) -> OpportunityPublic | None:
    row = conn.execute(_with_interest_count().where(o.id == opportunity_id)).mappings().first()
    return OpportunityPublic.model_validate(effective(dict(row), on)) if row else None


def list_opportunities(conn: Connection, *, on: date, status: str | None = None, kind: str | None = None,
                       organisation_id: str | None = None, call_id: str | None = None, cursor: str | None = None,
                       limit: int = 50, visible: ColumnElement[bool] | None = None) -> Page[OpportunityPublic]:
    """`visible` limits the rows to what the caller may see."""
    stmt = _with_interest_count() if visible is None else _with_interest_count().where(visible)
    if status == "published":
        stmt = stmt.where(o.status == "published", not_(_due(on)))
    elif status == "expired":
        stmt = stmt.where(or_(o.status == "expired", _due(on)))
    elif status is not None:
        stmt = stmt.where(o.status == status)
    for column, value in ((o.kind, kind), (o.organisation_id, organisation_id), (o.call_id, call_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    return paged(conn, stmt, [(o.created_at, str), (o.id, str)], cursor, limit,
                 lambda row: OpportunityPublic.model_validate(effective(row, on)))


def open_opportunities_of(conn: Connection, organisation_id: str, kind: str, *, on: date) -> list[dict[str, Any]]:
    """The organisation's opportunities of this kind that are still open (not expired or closed)."""
    rows = conn.execute(select(o.id, o.title, o.summary).where(
        o.organisation_id == organisation_id, o.kind == kind, o.status.in_(("draft", "submitted", "published")),
        not_(_due(on)))).mappings()
    return [dict(row) for row in rows]


def due_opportunity_ids(conn: Connection, *, on: date) -> list[str]:
    return list(conn.execute(select(o.id).where(_due(on)).order_by(o.expires_on, o.id)).scalars())


# --------------------------------------------------------------------------------------------
# Expressions of interest


def _interest(row: dict[str, Any]) -> InterestPublic:
    contacts = None
    if row["status"] == "accepted":
        contacts = {"owner": {"organisation_id": row["owner_organisation_id"], "contact_id": row["owner_contact_id"]},
                    "interested": {"organisation_id": row["organisation_id"], "contact_id": row["contact_id"]}}
    return InterestPublic.model_validate({**row, "contacts": contacts})


def get_interest(conn: Connection, interest_id: str) -> InterestPublic | None:
    row = conn.execute(select(interests).where(interests.c.id == interest_id)).mappings().first()
    return _interest(dict(row)) if row else None


def list_interests(conn: Connection, opportunity_id: str, *, status: str | None = None, cursor: str | None = None,
                   limit: int = 50) -> Page[InterestPublic]:
    stmt = select(interests).where(interests.c.opportunity_id == opportunity_id)
    if status is not None:
        stmt = stmt.where(interests.c.status == status)
    return paged(conn, stmt, [(interests.c.created_at, str), (interests.c.id, str)], cursor, limit, _interest)


def open_interest_of(conn: Connection, opportunity_id: str, organisation_id: str) -> str | None:
    """The organisation's pending or accepted interest in the opportunity, if any."""
    i = interests.c
    return conn.execute(select(i.id).where(i.opportunity_id == opportunity_id, i.organisation_id == organisation_id,
                                           i.status.in_(("pending", "accepted")))).scalars().first()


# --------------------------------------------------------------------------------------------
# Funding calls


def get_call(conn: Connection, call_id: str) -> CallPublic | None:
    row = conn.execute(select(calls).where(calls.c.id == call_id)).mappings().first()
    return CallPublic.model_validate(dict(row)) if row else None


def list_calls(conn: Connection, *, programme: str | None = None, open_on: date | None = None,
               cursor: str | None = None, limit: int = 50) -> Page[CallPublic]:
    stmt = select(calls)
    if programme is not None:
        stmt = stmt.where(calls.c.programme == programme)
    if open_on is not None:
        stmt = stmt.where(calls.c.deadline >= open_on, or_(calls.c.opens_on.is_(None), calls.c.opens_on <= open_on))
    # Dates page as ISO text: the cursor carries JSON values.
    return paged(conn, stmt, [(cast(calls.c.deadline, String), str), (calls.c.id, str)], cursor, limit,
                 CallPublic.model_validate)
