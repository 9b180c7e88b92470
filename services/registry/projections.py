"""Registry read models: tables fed by the registry's events in the append's own transaction.

Each projector handles `registry.<Name>` events with a method `on_<Name>`, reading the typed
(upcast) event, so a v1 event stored years ago projects like a current one. The tables hold
nothing the log does not: `clusterhub projections rebuild` clears and replays them.

Searching and filtering work the same on SQLite and PostgreSQL: list facets (roles, stages,
competencies) go to a side table indexed by (facet, value), and full-text search is an AND of
LIKE terms over `search_text`, a folded copy of names, description and keywords.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    case,
    delete,
    insert,
    select,
    update,
)

from services.registry.vocabulary import COMPETENCY_LABELS, Competency
from shared.eventlog import DomainEvent, Projector, RecordedEvent
from shared.pii import ERASED
from shared.projections import DispatchingProjector, created, insert_rows, stamps, touched
from shared.tables import metadata
from shared.text import fold, name_key

# --------------------------------------------------------------------------------------------
# Tables (migration 0002 creates exactly these)


clusters = Table(
    "registry_clusters",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("acronym", String(30), nullable=False),
    Column("country", String(2), nullable=False),
    Column("nuts_region", String(5)),
    Column("thematic_focus", String(500)),
    Column("legal_form", String(40), nullable=False),
    Column("website", String(300)),
    Column("description", Text),
    Column("name_key", String(300), nullable=False),
    Column("archived", Boolean, nullable=False),
    *stamps(),
    Index("ix_registry_clusters_name_key", "name_key", "id"),
)

organisations = Table(
    "registry_organisations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("legal_name", String(300), nullable=False),
    Column("short_name", String(100)),
    Column("kind", String(40), nullable=False),
    Column("company_size", String(10)),
    Column("roles", JSON, nullable=False),
    Column("stages", JSON, nullable=False),
    Column("competencies", JSON, nullable=False),
    Column("keywords", JSON, nullable=False),
    Column("country", String(2), nullable=False),
    Column("nuts_region", String(5)),
    Column("website", String(300)),
    Column("description", Text),
    Column("vat", String(20)),
    Column("pic", String(9)),
    Column("ror", String(9)),
    Column("name_key", String(300), nullable=False),
    Column("name_text", String(500), nullable=False),  # folded names, ranks name hits first
    Column("search_text", Text, nullable=False),
    Column("archived", Boolean, nullable=False),
    *stamps(),
    Index("ix_registry_organisations_name_key", "name_key", "id"),
    Index("ix_registry_organisations_kind", "kind"),
    Index("ix_registry_organisations_country", "country", "nuts_region"),
    Index("ix_registry_organisations_nuts_region", "nuts_region"),
    Index("ix_registry_organisations_pic", "pic"),
    Index("ix_registry_organisations_vat", "vat"),
)

# (organisation, facet, value) for roles, stages and competencies: filters are indexed lookups.
organisation_facets = Table(
    "registry_organisation_facets",
    metadata,
    Column("organisation_id", String(36), nullable=False),
    Column("facet", String(20), nullable=False),
    Column("value", String(60), nullable=False),
    PrimaryKeyConstraint("facet", "value", "organisation_id", name="pk_registry_organisation_facets"),
    Index("ix_registry_organisation_facets_organisation", "organisation_id"),
)

# Person data, kept apart from organisations. Name, e-mail, phone and position hold sealed
# envelopes (shared/pii.py, migration 0008): ciphertext, so neither sorted nor searched in SQL.
contacts = Table(
    "registry_contacts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("organisation_id", String(36), nullable=False),
    Column("name", Text, nullable=False),
    Column("email", Text),
    Column("phone", Text),
    Column("position", Text),
    *stamps(),
    Index("ix_registry_contacts_organisation", "organisation_id", "created_at", "id"),
)

# A person's current consents (registry.ConsentRecorded); no row: never asked, so nothing given.
person_consents = Table(
    "registry_person_consents",
    metadata,
    Column("person_id", String(36), primary_key=True),
    Column("newsletter", Boolean, nullable=False),
    Column("share_profile_with_partner_clusters", Boolean, nullable=False),
    Column("recorded_at", String(32), nullable=False),
)

memberships = Table(
    "registry_memberships",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("organisation_id", String(36), nullable=False),
    Column("cluster_id", String(36), nullable=False),
    Column("fee_category", String(30), nullable=False),
    Column("yearly_fee", String(20), nullable=False),  # decimal as text, like the events
    Column("currency", String(3), nullable=False),
    Column("status", String(10), nullable=False),
    Column("applied_on", Date, nullable=False),
    Column("activated_on", Date),
    Column("suspended_on", Date),
    Column("ended_on", Date),
    Column("period_end", Date),
    Column("status_reason", String(500)),
    *stamps(),
    Index("ix_registry_memberships_cluster", "cluster_id", "status", "organisation_id"),
    Index("ix_registry_memberships_organisation", "organisation_id", "status"),
    Index("ix_registry_memberships_created", "created_at", "id"),
)

connections = Table(
    "registry_connections",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("source_id", String(36), nullable=False),
    Column("target_id", String(36), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("description", String(1000)),
    Column("since", Date),
    Column("ended_on", Date),
    Column("active", Boolean, nullable=False),
    *stamps(),
    Index("ix_registry_connections_source", "source_id", "kind"),
    Index("ix_registry_connections_target", "target_id", "kind"),
    Index("ix_registry_connections_created", "created_at", "id"),
)

working_groups = Table(
    "registry_working_groups",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("cluster_id", String(36), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text),
    Column("name_key", String(200), nullable=False),
    Column("member_count", Integer, nullable=False),
    *stamps(),
    Index("ix_registry_working_groups_cluster", "cluster_id", "name_key", "id"),
    Index("ix_registry_working_groups_name_key", "name_key", "id"),
)

working_group_members = Table(
    "registry_working_group_members",
    metadata,
    Column("working_group_id", String(36), nullable=False),
    Column("organisation_id", String(36), nullable=False),
    Column("role", String(10), nullable=False),
    Column("joined_at", String(32), nullable=False),
    PrimaryKeyConstraint("working_group_id", "organisation_id", name="pk_registry_working_group_members"),
    Index("ix_registry_working_group_members_organisation", "organisation_id"),
)

TABLES = (clusters, organisations, organisation_facets, contacts, person_consents, memberships, connections, working_groups,
          working_group_members)


# --------------------------------------------------------------------------------------------
# Projectors


class _Projector(DispatchingProjector):
    prefix = "registry"


def _fields(event: DomainEvent, *, without: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in event.model_dump().items() if k not in without}


class ClusterProjector(_Projector):
    name = "registry.clusters"
    tables: Sequence[Table] = (clusters,)

    def on_ClusterRegistered(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        row = _fields(event, without=("cluster_id",))
        conn.execute(insert(clusters).values(id=event.cluster_id, **row, name_key=name_key(event.name),
                                             archived=False, **created(recorded)))

    def on_ClusterUpdated(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        values = dict(event.changes)
        if "name" in values:
            values["name_key"] = name_key(values["name"])
        conn.execute(update(clusters).where(clusters.c.id == event.cluster_id).values(**values, **touched(recorded)))

    def on_ClusterArchived(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(update(clusters).where(clusters.c.id == event.cluster_id)
                     .values(archived=True, **touched(recorded)))


_FACETS = {"roles": "role", "stages": "stage", "competencies": "competency"}


class OrganisationProjector(_Projector):
    name = "registry.organisations"
    tables: Sequence[Table] = (organisations, organisation_facets)

    def on_OrganisationRegistered(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        record = _fields(event, without=("organisation_id",))
        insert_rows(conn, organisations, [{"id": event.organisation_id, **record, **_derived(record),
                                           "archived": False, **created(recorded)}])
        # A new organisation has no facet rows to clear.
        insert_rows(conn, organisation_facets, _facet_rows(event.organisation_id, record))

    def on_OrganisationUpdated(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        row = conn.execute(select(organisations).where(organisations.c.id == event.organisation_id)).mappings().one()
        record = {**dict(row), **event.changes}
        conn.execute(update(organisations).where(organisations.c.id == event.organisation_id)
                     .values(**event.changes, **_derived(record), **touched(recorded)))
        if _FACETS.keys() & event.changes.keys():
            self._write_facets(conn, event.organisation_id, record)

    def on_OrganisationArchived(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(update(organisations).where(organisations.c.id == event.organisation_id)
                     .values(archived=True, **touched(recorded)))

    @staticmethod
    def _write_facets(conn: Connection, organisation_id: str, record: dict[str, Any]) -> None:
        conn.execute(delete(organisation_facets).where(organisation_facets.c.organisation_id == organisation_id))
        insert_rows(conn, organisation_facets, _facet_rows(organisation_id, record))


def _facet_rows(organisation_id: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"organisation_id": organisation_id, "facet": facet, "value": value}
            for field, facet in _FACETS.items() for value in record[field]]


def _derived(record: dict[str, Any]) -> dict[str, Any]:
    """The columns computed from an organisation's fields: keys for de-duplication and search."""
    names = " ".join(filter(None, [record["legal_name"], record["short_name"]]))
    labels = [COMPETENCY_LABELS[Competency(code)] for code in record["competencies"]]
    searchable = [names, record["description"] or "", *record["keywords"], *labels]
    return {
        "name_key": name_key(record["legal_name"]),
        "name_text": fold(names),
        "search_text": fold(" ".join(searchable)),
    }


class ContactProjector(_Projector):
    """Copies the events' envelopes as they are: the table never holds a person's plaintext."""

    name = "registry.contacts"
    tables: Sequence[Table] = (contacts, person_consents)

    def on_ContactAdded(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(insert(contacts).values(id=event.contact_id, **_fields(event, without=("contact_id",)),
                                             **created(recorded)))

    def on_ContactUpdated(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(update(contacts).where(contacts.c.id == event.contact_id)
                     .values(**event.changes, **touched(recorded)))

    def on_ContactRemoved(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(delete(contacts).where(contacts.c.id == event.contact_id))

    def on_ConsentRecorded(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(delete(person_consents).where(person_consents.c.person_id == event.contact_id))
        conn.execute(insert(person_consents).values(
            person_id=event.contact_id, newsletter=event.newsletter, recorded_at=event.recorded_at,
            share_profile_with_partner_clusters=event.share_profile_with_partner_clusters))
        conn.execute(update(contacts).where(contacts.c.id == event.contact_id).values(**touched(recorded)))

    def on_PersonErased(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        # The key is gone (shared/pii.py), so the envelopes read "erased" anyway; the row says so
        # outright, which also covers contacts recorded in plaintext before sealing (v1 events).
        c = contacts.c
        conn.execute(update(contacts).where(c.id == event.contact_id).values(
            name=ERASED, **{column.name: case((column.is_(None), None), else_=ERASED)
                            for column in (c.email, c.phone, c.position)}, **touched(recorded)))


class MembershipProjector(_Projector):
    name = "registry.memberships"
    tables: Sequence[Table] = (memberships,)

    def on_MembershipApplied(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(insert(memberships).values(id=event.membership_id, **_fields(event, without=("membership_id",)),
                                                status="applied", **created(recorded)))

    def _set(self, conn: Connection, membership_id: str, recorded: RecordedEvent, **values: Any) -> None:
        conn.execute(update(memberships).where(memberships.c.id == membership_id)
                     .values(**values, **touched(recorded)))

    def on_MembershipActivated(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.membership_id, recorded, status="active", activated_on=event.on,
                  period_end=event.period_end, status_reason=None)

    def on_MembershipSuspended(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.membership_id, recorded, status="suspended", suspended_on=event.on,
                  status_reason=event.reason)

    def on_MembershipRenewed(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.membership_id, recorded, period_end=event.period_end, yearly_fee=event.yearly_fee)

    def on_MembershipEnded(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        self._set(conn, event.membership_id, recorded, status="ended", ended_on=event.on, status_reason=event.reason)


class ConnectionProjector(_Projector):
    name = "registry.connections"
    tables: Sequence[Table] = (connections,)

    def on_ConnectionRecorded(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(insert(connections).values(id=event.connection_id, **_fields(event, without=("connection_id",)),
                                                active=True, **created(recorded)))

    def on_ConnectionEnded(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(update(connections).where(connections.c.id == event.connection_id)
                     .values(active=False, ended_on=event.on, **touched(recorded)))


class WorkingGroupProjector(_Projector):
    name = "registry.working_groups"
    tables: Sequence[Table] = (working_groups, working_group_members)

    def on_WorkingGroupFormed(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(insert(working_groups).values(
            id=event.working_group_id, cluster_id=event.cluster_id, name=event.name, description=event.description,
            name_key=name_key(event.name), member_count=0, **created(recorded)))

    def on_WorkingGroupMemberJoined(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        conn.execute(insert(working_group_members).values(
            working_group_id=event.working_group_id, organisation_id=event.organisation_id, role=event.role,
            joined_at=recorded.recorded_at))
        self._count(conn, event.working_group_id, recorded, +1)

    def on_WorkingGroupMemberLeft(self, conn: Connection, event: Any, recorded: RecordedEvent) -> None:
        members = working_group_members.c
        conn.execute(delete(working_group_members).where(members.working_group_id == event.working_group_id,
                                                         members.organisation_id == event.organisation_id))
        self._count(conn, event.working_group_id, recorded, -1)

    @staticmethod
    def _count(conn: Connection, working_group_id: str, recorded: RecordedEvent, step: int) -> None:
        conn.execute(update(working_groups).where(working_groups.c.id == working_group_id)
                     .values(member_count=working_groups.c.member_count + step, **touched(recorded)))


PROJECTORS: list[Projector] = [
    ClusterProjector(),
    OrganisationProjector(),
    ContactProjector(),
    MembershipProjector(),
    ConnectionProjector(),
    WorkingGroupProjector(),
]

