"""Reads over the registry's read models: one row by id, filtered lists with keyset pagination.

Lists order by a unique key (e.g. name_key, id) and page with an opaque cursor holding the last
row's key, so a page stays stable while rows are added before it (no OFFSET drift).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from sqlalchemy import JSON, Connection, Select, Table, Text, and_, bindparam, case, cast, exists, or_, select, tuple_
from sqlalchemy.sql import ColumnElement

from services.registry.models import (
    ClusterPublic,
    ConnectionPublic,
    ContactPublic,
    MembershipPublic,
    OrganisationPublic,
    Page,
    WorkingGroupMemberPublic,
    WorkingGroupPublic,
)
from services.registry.projections import (
    clusters,
    connections,
    contacts,
    memberships,
    organisation_facets,
    person_consents,
    organisations,
    working_group_members,
    working_groups,
)
from shared import pii
from shared.errors import InvalidInput
from shared.pii import person_keys
from shared.pagination import decode_cursor, encode_cursor, paged
from shared.text import words

T = TypeVar("T")
OPEN_STATUSES = ("applied", "active", "suspended")


# --------------------------------------------------------------------------------------------
# Keyset pagination


def _one(conn: Connection, stmt: Select, public: Callable[[dict[str, Any]], T],
         params: dict[str, Any] | None = None) -> T | None:
    row = conn.execute(stmt, params).mappings().first()
    return public(dict(row)) if row else None


# Lists as JSON straight from the rows, for the busiest routes. A page of 50 read models costs
# ~1 ms of pydantic validation (the Create models' input checks, run again on our own stored
# rows) and JSON decoding of list columns, for a response that FastAPI then serialises again.
# Here the selected columns are exactly the model's fields (nothing else can leak out), JSON
# columns travel as the text stored (orjson.Fragment), and the route declares the model as its
# response_model, so the OpenAPI schema is unchanged and schemathesis checks the output against it.


class JsonColumns:
    """The columns of `table` that make up `model`, in its field order; JSON ones as their stored text."""

    def __init__(self, table: Table, model: type[BaseModel]) -> None:
        self.names = list(model.model_fields)
        self.json = frozenset(name for name in self.names if isinstance(table.c[name].type, JSON))
        self.columns = [cast(table.c[name], Text).label(name) if name in self.json else table.c[name]
                        for name in self.names]

    def record(self, row: Sequence[Any]) -> dict[str, Any]:
        json, record = self.json, {}
        for name, value in zip(self.names, row):
            record[name] = orjson.Fragment(value) if name in json and value is not None else value
        return record


def _page_json(conn: Connection, stmt: Select, keys: Sequence[tuple[ColumnElement, type]], cursor: str | None,
               limit: int, columns: JsonColumns) -> bytes:
    """`paged` rendered as the JSON of `Page[model]`, for a `stmt` that selects `columns.columns`."""
    order = [expr for expr, _ in keys]
    if cursor:
        stmt = stmt.where(tuple_(*order) > tuple_(*decode_cursor(cursor, [t for _, t in keys])))
    width = len(columns.names)
    stmt = stmt.add_columns(*(expr.label(f"_key{i}") for i, expr in enumerate(order)))
    rows = conn.execute(stmt.order_by(*order).limit(limit + 1)).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(list(rows[-1][width:]))
    return orjson.dumps({"data": [columns.record(row) for row in rows], "next_cursor": next_cursor})


# --------------------------------------------------------------------------------------------
# Clusters


def get_cluster(conn: Connection, cluster_id: str) -> ClusterPublic | None:
    return _one(conn, select(clusters).where(clusters.c.id == cluster_id), ClusterPublic.model_validate)


def list_clusters(conn: Connection, *, country: str | None = None, include_archived: bool = False,
                  cursor: str | None = None, limit: int = 50) -> Page[ClusterPublic]:
    stmt = select(clusters)
    if country:
        stmt = stmt.where(clusters.c.country == country)
    if not include_archived:
        stmt = stmt.where(clusters.c.archived.is_(False))
    return paged(conn, stmt, [(clusters.c.name_key, str), (clusters.c.id, str)], cursor, limit,
                 ClusterPublic.model_validate)


# --------------------------------------------------------------------------------------------
# Organisations


# Built once: building a statement costs more than running it on SQLite.
_ORGANISATION = select(organisations).where(organisations.c.id == bindparam("organisation_id"))
ORGANISATION_COLUMNS = JsonColumns(organisations, OrganisationPublic)


def get_organisation(conn: Connection, organisation_id: str) -> OrganisationPublic | None:
    return _one(conn, _ORGANISATION, OrganisationPublic.model_validate, {"organisation_id": organisation_id})


@functools.lru_cache(maxsize=1024)
def _organisation_json_if_visible(visible: ColumnElement[bool]) -> Select:
    return (select(*ORGANISATION_COLUMNS.columns, visible.label("_visible"))
            .where(organisations.c.id == bindparam("organisation_id")))


def get_visible_organisation_json(conn: Connection, organisation_id: str,
                                  visible: ColumnElement[bool]) -> tuple[bytes, int] | None:
    """The organisation's JSON (see `JsonColumns`) and version, if `visible` (the caller's access condition)
    holds for it: one statement where a check and a read take two. `visible` should be one object per
    caller scope (statements are kept per condition object)."""
    row = conn.execute(_organisation_json_if_visible(visible), {"organisation_id": organisation_id}).first()
    if row is None or not row[-1]:
        return None
    record = ORGANISATION_COLUMNS.record(row)
    return orjson.dumps(record), record["version"]


def _has_facet(facet: str, value: str) -> ColumnElement[bool]:
    f = organisation_facets.c
    return exists().where(f.facet == facet, f.value == value, f.organisation_id == organisations.c.id)


def list_organisations_json(conn: Connection, *, cursor: str | None = None, limit: int = 50,
                            **filters: Any) -> bytes:
    """A page of organisations as the JSON of `Page[OrganisationPublic]` (see `JsonColumns`); filters
    (`_organisations_where`) combine with AND."""
    stmt, keys = _organisations_where(select(*ORGANISATION_COLUMNS.columns), **filters)
    return _page_json(conn, stmt, keys, cursor, limit, ORGANISATION_COLUMNS)


def _organisations_where(
    stmt: Select,
    *,
    kind: str | None = None,
    role: str | None = None,
    stage: str | None = None,
    competency: str | None = None,
    country: str | None = None,
    region: str | None = None,
    cluster: str | None = None,
    membership_status: str | None = None,
    q: str | None = None,
    include_archived: bool = False,
    visible: ColumnElement[bool] | None = None,
    membership_visible: ColumnElement[bool] | None = None,
) -> tuple[Select, list[tuple[ColumnElement, type]]]:
    """`stmt` (a select from organisations) filtered, and its sort keys. `region` matches a NUTS code
    and the regions inside it. `visible` limits the rows to what the caller may see,
    `membership_visible` the memberships they may filter by."""
    o = organisations.c
    if visible is not None:
        stmt = stmt.where(visible)
    for column, value in ((o.kind, kind), (o.country, country)):
        if value:
            stmt = stmt.where(column == value)
    if region:
        # NUTS codes nest by prefix (BE3 ⊃ BE32 ⊃ BE323); validated codes hold no LIKE wildcards.
        stmt = stmt.where(o.nuts_region.like(f"{region}%"))
    for facet, value in (("role", role), ("stage", stage), ("competency", competency)):
        if value:
            stmt = stmt.where(_has_facet(facet, value))
    if cluster or membership_status:
        m = memberships.c
        conditions = [m.organisation_id == o.id]
        if cluster:
            conditions.append(m.cluster_id == cluster)
        if membership_status:
            conditions.append(m.status == membership_status)
        if membership_visible is not None:
            conditions.append(membership_visible)
        stmt = stmt.where(exists().where(*conditions))
    if not include_archived:
        stmt = stmt.where(o.archived.is_(False))
    keys: list[tuple[ColumnElement, type]] = [(o.name_key, str), (o.id, str)]
    terms = words(q or "")
    if terms:
        stmt = stmt.where(*(o.search_text.like(f"%{term}%") for term in terms))
        # Rank: how many terms hit the names; best first, then alphabetical.
        hits = sum((case((o.name_text.like(f"%{term}%"), 1), else_=0) for term in terms), start=0)
        keys.insert(0, (-hits, int))  # type: ignore[arg-type]
    elif q is not None and q.strip():
        raise InvalidInput.field("query.q", "no searchable words (letters or digits)")
    return stmt, keys


# --------------------------------------------------------------------------------------------
# Contacts


def _contacts() -> Select:
    consent, key = person_consents.c, person_keys.c
    return (select(contacts, consent.newsletter, consent.share_profile_with_partner_clusters,
                   consent.recorded_at.label("consents_recorded_at"), key.erased_at)
            .outerjoin(person_consents, consent.person_id == contacts.c.id)
            .outerjoin(person_keys, key.person_id == contacts.c.id))


def _contact(row: dict[str, Any]) -> ContactPublic:
    """A contact row with its envelopes already opened (pii), as the API shows it."""
    if row["consents_recorded_at"] is not None:
        row["consents"] = {"newsletter": row["newsletter"], "recorded_at": row["consents_recorded_at"],
                           "share_profile_with_partner_clusters": row["share_profile_with_partner_clusters"]}
    row["erased"] = row["erased_at"] is not None
    return ContactPublic.model_validate(row)


def get_contact(conn: Connection, contact_id: str) -> ContactPublic | None:
    row = conn.execute(_contacts().where(contacts.c.id == contact_id)).mappings().first()
    return _contact(pii.open_rows(conn, [row])[0]) if row else None


def list_contacts(conn: Connection, organisation_id: str, *, cursor: str | None = None,
                  limit: int = 50) -> Page[ContactPublic]:
    """In the order they were added: names are sealed (pii), so SQL can neither sort nor search by them."""
    stmt = _contacts().where(contacts.c.organisation_id == organisation_id)
    page = paged(conn, stmt, [(contacts.c.created_at, str), (contacts.c.id, str)], cursor, limit, dict)
    return Page[ContactPublic](data=[_contact(row) for row in pii.open_rows(conn, page.data)],
                               next_cursor=page.next_cursor)


# --------------------------------------------------------------------------------------------
# Memberships


def get_membership(conn: Connection, membership_id: str) -> MembershipPublic | None:
    return _one(conn, select(memberships).where(memberships.c.id == membership_id), MembershipPublic.model_validate)


def open_membership_id(conn: Connection, organisation_id: str, cluster_id: str) -> str | None:
    """The organisation's membership of the cluster that has not ended, if any."""
    m = memberships.c
    return conn.execute(select(m.id).where(m.organisation_id == organisation_id, m.cluster_id == cluster_id,
                                           m.status.in_(OPEN_STATUSES))).scalar()


def list_memberships(conn: Connection, *, organisation_id: str | None = None, cluster_id: str | None = None,
                     status: str | None = None, cursor: str | None = None, limit: int = 50,
                     visible: ColumnElement[bool] | None = None) -> Page[MembershipPublic]:
    m = memberships.c
    stmt = select(memberships) if visible is None else select(memberships).where(visible)
    for column, value in ((m.organisation_id, organisation_id), (m.cluster_id, cluster_id), (m.status, status)):
        if value:
            stmt = stmt.where(column == value)
    return paged(conn, stmt, [(m.created_at, str), (m.id, str)], cursor, limit, MembershipPublic.model_validate)


# --------------------------------------------------------------------------------------------
# Connections


def get_connection(conn: Connection, connection_id: str) -> ConnectionPublic | None:
    return _one(conn, select(connections).where(connections.c.id == connection_id), ConnectionPublic.model_validate)


def active_connection_id(conn: Connection, source_id: str, target_id: str, kind: str) -> str | None:
    c = connections.c
    return conn.execute(select(c.id).where(c.source_id == source_id, c.target_id == target_id, c.kind == kind,
                                           c.active.is_(True))).scalar()


def list_connections(conn: Connection, *, organisation_id: str | None = None, kind: str | None = None,
                     include_ended: bool = False, cursor: str | None = None, limit: int = 50,
                     visible: ColumnElement[bool] | None = None) -> Page[ConnectionPublic]:
    """`organisation_id` matches either end of a connection."""
    c = connections.c
    stmt = select(connections) if visible is None else select(connections).where(visible)
    if organisation_id:
        stmt = stmt.where(or_(c.source_id == organisation_id, c.target_id == organisation_id))
    if kind:
        stmt = stmt.where(c.kind == kind)
    if not include_ended:
        stmt = stmt.where(c.active.is_(True))
    return paged(conn, stmt, [(c.created_at, str), (c.id, str)], cursor, limit, ConnectionPublic.model_validate)


# --------------------------------------------------------------------------------------------
# Working groups


def get_working_group(conn: Connection, working_group_id: str) -> WorkingGroupPublic | None:
    return _one(conn, select(working_groups).where(working_groups.c.id == working_group_id),
                WorkingGroupPublic.model_validate)


def working_group_named(conn: Connection, cluster_id: str, key: str) -> str | None:
    w = working_groups.c
    return conn.execute(select(w.id).where(and_(w.cluster_id == cluster_id, w.name_key == key))).scalar()


def list_working_groups(conn: Connection, *, cluster_id: str | None = None, organisation_id: str | None = None,
                        cursor: str | None = None, limit: int = 50,
                        visible: ColumnElement[bool] | None = None) -> Page[WorkingGroupPublic]:
    w = working_groups.c
    stmt = select(working_groups) if visible is None else select(working_groups).where(visible)
    if cluster_id:
        stmt = stmt.where(w.cluster_id == cluster_id)
    if organisation_id:
        members = working_group_members.c
        stmt = stmt.where(exists().where(members.working_group_id == w.id, members.organisation_id == organisation_id))
    return paged(conn, stmt, [(w.name_key, str), (w.id, str)], cursor, limit, WorkingGroupPublic.model_validate)


def list_working_group_members(conn: Connection, working_group_id: str, *, cursor: str | None = None,
                               limit: int = 50) -> Page[WorkingGroupMemberPublic]:
    members = working_group_members.c
    stmt = select(working_group_members).where(members.working_group_id == working_group_id)
    return paged(conn, stmt, [(members.organisation_id, str)], cursor, limit,
                 WorkingGroupMemberPublic.model_validate)
