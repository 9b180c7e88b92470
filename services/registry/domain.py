"""Registry aggregates (they own the rules) and command handlers (load, decide, append).

Each handler loads an aggregate from its stream, asks it for new events (it raises a
DomainError instead when the command breaks a rule), appends them at the version it loaded,
and returns the read model, which the inline projectors updated in this same transaction.
Field names in errors follow the API's request locations (`body.organisation_id`).
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection

from services.registry import queries
from services.registry.events import (
    STREAM_TYPES,
    ClusterArchived,
    ClusterRegistered,
    ClusterUpdated,
    ConnectionEnded,
    ConnectionRecorded,
    ContactAdded,
    ContactRemoved,
    ContactUpdated,
    ConsentRecorded,
    MembershipActivated,
    MembershipApplied,
    MembershipEnded,
    MembershipRenewed,
    MembershipSuspended,
    OrganisationArchived,
    OrganisationRegistered,
    OrganisationUpdated,
    PersonErased,
    WorkingGroupFormed,
    WorkingGroupMemberJoined,
    WorkingGroupMemberLeft,
)
from services.registry.models import (
    ClusterCreate,
    ClusterPublic,
    ClusterUpdate,
    ConnectionCreate,
    ConnectionEnd,
    ConnectionPublic,
    Consents,
    ContactCreate,
    ContactPublic,
    ContactUpdate,
    MembershipActivate,
    MembershipCreate,
    MembershipEnd,
    MembershipPublic,
    MembershipRenew,
    MembershipSuspend,
    OrganisationCreate,
    OrganisationPublic,
    OrganisationUpdate,
    WorkingGroupCreate,
    WorkingGroupJoin,
    WorkingGroupPublic,
)
from shared import aggregates, pii
from shared.errors import Conflict, InvalidInput, NotFound
from shared.eventlog import DomainEvent, EventLog, Metadata, RecordedEvent, utc_now_text
from shared.text import name_key


P = TypeVar("P", bound=BaseModel)


def new_id() -> str:
    return str(uuid.uuid4())


def today() -> date:
    return datetime.now(UTC).date()


def invalid_input(exc: ValidationError, prefix: str = "body") -> InvalidInput:
    errors = [{"field": ".".join([prefix, *map(str, e["loc"])]), "message": e["msg"]} for e in exc.errors()]
    return InvalidInput("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors)


# --------------------------------------------------------------------------------------------
# Aggregates


@dataclass
class Aggregate(aggregates.Aggregate):
    stream_types: ClassVar[Mapping[str, str]] = STREAM_TYPES


@dataclass
class Record(Aggregate):
    """An aggregate whose state is a record of fields that always satisfies its Create schema."""

    fields: dict[str, Any] = field(default_factory=dict)
    archived: bool = False
    schema: ClassVar[type[BaseModel]]

    def live(self) -> Self:
        if self.archived:
            raise Conflict(f"{self.label} {self.id} is archived", id=self.id)
        return self

    def changed(self, changes: BaseModel) -> dict[str, Any]:
        """The fields `changes` sets to new values; the merged record is re-validated as a whole."""
        self.live()
        sent = changes.model_dump(mode="json", include=changes.model_fields_set)
        try:
            merged = self.schema.model_validate({**self.fields, **sent}).model_dump(mode="json")
        except ValidationError as exc:
            raise invalid_input(exc) from None
        return {name: merged[name] for name in sent if merged[name] != self.fields.get(name)}


@dataclass
class Cluster(Record):
    kind, label, schema = "cluster", "cluster", ClusterCreate

    def register(self, data: ClusterCreate) -> list[DomainEvent]:
        self.new()
        return [ClusterRegistered(cluster_id=self.id, **data.model_dump(mode="json"))]

    def update(self, changes: ClusterUpdate) -> list[DomainEvent]:
        diff = self.changed(changes)
        return [ClusterUpdated(cluster_id=self.id, changes=diff)] if diff else []

    def archive(self, reason: str | None) -> list[DomainEvent]:
        self.live()
        return [ClusterArchived(cluster_id=self.id, reason=reason)]

    def on_ClusterRegistered(self, event: ClusterRegistered) -> None:
        self.fields = event.model_dump(mode="json", exclude={"cluster_id"})

    def on_ClusterUpdated(self, event: ClusterUpdated) -> None:
        self.fields.update(event.changes)

    def on_ClusterArchived(self, _: ClusterArchived) -> None:
        self.archived = True


@dataclass
class Organisation(Record):
    kind, label, schema = "organisation", "organisation", OrganisationCreate

    def register(self, data: OrganisationCreate) -> list[DomainEvent]:
        self.new()
        return [OrganisationRegistered(organisation_id=self.id, **data.model_dump(mode="json"))]

    def update(self, changes: OrganisationUpdate) -> list[DomainEvent]:
        diff = self.changed(changes)
        return [OrganisationUpdated(organisation_id=self.id, changes=diff)] if diff else []

    def archive(self, reason: str | None) -> list[DomainEvent]:
        self.live()
        return [OrganisationArchived(organisation_id=self.id, reason=reason)]

    def on_OrganisationRegistered(self, event: OrganisationRegistered) -> None:
        self.fields = event.model_dump(mode="json", exclude={"organisation_id"})

    def on_OrganisationUpdated(self, event: OrganisationUpdated) -> None:
        self.fields.update(event.changes)

    def on_OrganisationArchived(self, _: OrganisationArchived) -> None:
        self.archived = True


PERSONAL_FIELDS = ("name", "email", "phone", "position")


@dataclass
class Contact(Record):
    """A person at an organisation; `archived` here means removed, and a removed contact is gone.

    Its personal fields travel sealed (shared/pii.py): `save` seals them before the append, and
    `load` opens them, so the rules compare and validate plaintext. Once erased, nothing
    personal about them is recorded again (PersonErased, 409)."""

    kind, label, schema = "person", "contact", ContactCreate
    organisation_id: str = ""
    erased: bool = False

    @classmethod
    def load(cls, conn: Connection, log: EventLog, entity_id: str) -> Self:
        contact = super().load(conn, log, entity_id)
        contact.fields = pii.open_tree(conn, contact.fields)
        return contact

    def save(self, conn: Connection, log: EventLog, events: list[DomainEvent],
             metadata: Metadata) -> list[RecordedEvent]:
        sealed: list[DomainEvent] = []
        for event in events:
            if isinstance(event, ContactAdded):
                event = event.model_copy(update=pii.seal_fields(conn, self.id, event.model_dump(), PERSONAL_FIELDS))
            elif isinstance(event, ContactUpdated):
                event = event.model_copy(update={"changes": pii.seal_fields(conn, self.id, event.changes,
                                                                            PERSONAL_FIELDS)})
            sealed.append(event)
        return super().save(conn, log, sealed, metadata)

    def not_erased(self) -> Self:
        if self.erased:
            raise pii.PersonErased(f"person {self.id} was erased; no personal data of theirs is recorded again",
                                   person_id=self.id)
        return self

    def found(self, expected_version: int | None = None) -> Self:
        if self.archived:
            raise NotFound(f"contact {self.id} not found")
        return super().found(expected_version)

    def add(self, organisation_id: str, data: ContactCreate) -> list[DomainEvent]:
        self.new()
        return [ContactAdded(contact_id=self.id, organisation_id=organisation_id, **data.model_dump(mode="json"))]

    def update(self, changes: ContactUpdate) -> list[DomainEvent]:
        diff = self.not_erased().changed(changes)
        return [ContactUpdated(contact_id=self.id, changes=diff)] if diff else []

    def remove(self) -> list[DomainEvent]:
        return [ContactRemoved(contact_id=self.id, organisation_id=self.organisation_id)]

    def record_consents(self, consents: Consents, *, at: str) -> list[DomainEvent]:
        self.not_erased()
        return [ConsentRecorded(contact_id=self.id, recorded_at=at, **consents.model_dump())]

    def erase(self, *, at: str) -> list[DomainEvent]:
        """Nothing when already erased: a second erasure changes nothing (the API answers 204)."""
        if not self.exists:
            raise NotFound(f"person {self.id} not found")
        return [] if self.erased else [PersonErased(contact_id=self.id, erased_at=at)]

    def on_ContactAdded(self, event: ContactAdded) -> None:
        self.organisation_id = event.organisation_id
        self.fields = event.model_dump(mode="json", exclude={"contact_id", "organisation_id"})

    def on_ContactUpdated(self, event: ContactUpdated) -> None:
        self.fields.update(event.changes)

    def on_ContactRemoved(self, _: ContactRemoved) -> None:
        self.archived = True

    def on_PersonErased(self, _: PersonErased) -> None:
        self.erased = True


def _add_year(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


@dataclass
class Membership(Aggregate):
    """applied -> active <-> suspended; any of them -> ended. Renewal extends an active period."""

    kind, label = "membership", "membership"
    status: str = ""
    yearly_fee: str = "0"
    period_end: date | None = None

    def apply(self, data: MembershipCreate, *, open_membership: str | None, on: date) -> list[DomainEvent]:
        self.new()
        if open_membership:
            raise Conflict("the organisation already has a membership of this cluster that has not ended",
                           membership_id=open_membership)
        values = data.model_dump(mode="json", exclude={"applied_on", "yearly_fee"})
        return [MembershipApplied(membership_id=self.id, **values, yearly_fee=str(data.yearly_fee),
                                  applied_on=data.applied_on or on)]

    def _expect(self, action: str, *allowed: str) -> None:
        if self.status not in allowed:
            raise Conflict(f"cannot {action} a membership that is {self.status}", status=self.status)

    def activate(self, data: MembershipActivate, *, on: date) -> list[DomainEvent]:
        self._expect("activate", "applied", "suspended")
        on = data.on or on
        current = self.period_end if self.period_end and self.period_end >= on else None
        period_end = data.period_end or current or date(on.year, 12, 31)
        if period_end < on:
            raise InvalidInput.field("body.period_end", "must not be before the activation date")
        return [MembershipActivated(membership_id=self.id, on=on, period_end=period_end)]

    def suspend(self, data: MembershipSuspend, *, on: date) -> list[DomainEvent]:
        self._expect("suspend", "active")
        return [MembershipSuspended(membership_id=self.id, on=data.on or on, reason=data.reason)]

    def renew(self, data: MembershipRenew) -> list[DomainEvent]:
        self._expect("renew", "active", "suspended")
        assert self.period_end is not None  # set by activation, which both allowed states passed through
        period_end = data.period_end or _add_year(self.period_end)
        if period_end <= self.period_end:
            raise InvalidInput.field("body.period_end", f"must be after the current period end {self.period_end}")
        fee = str(data.yearly_fee) if data.yearly_fee is not None else self.yearly_fee
        return [MembershipRenewed(membership_id=self.id, period_end=period_end, yearly_fee=fee)]

    def end(self, data: MembershipEnd, *, on: date) -> list[DomainEvent]:
        self._expect("end", "applied", "active", "suspended")
        return [MembershipEnded(membership_id=self.id, on=data.on or on, reason=data.reason)]

    def on_MembershipApplied(self, event: MembershipApplied) -> None:
        self.status, self.yearly_fee = "applied", event.yearly_fee

    def on_MembershipActivated(self, event: MembershipActivated) -> None:
        self.status, self.period_end = "active", event.period_end

    def on_MembershipSuspended(self, _: MembershipSuspended) -> None:
        self.status = "suspended"

    def on_MembershipRenewed(self, event: MembershipRenewed) -> None:
        self.period_end, self.yearly_fee = event.period_end, event.yearly_fee

    def on_MembershipEnded(self, _: MembershipEnded) -> None:
        self.status = "ended"


@dataclass
class OrganisationConnection(Aggregate):
    kind, label = "connection", "connection"
    active: bool = False

    def record(self, data: ConnectionCreate, *, existing: str | None) -> list[DomainEvent]:
        self.new()
        if existing:
            raise Conflict("this connection is already recorded", connection_id=existing)
        return [ConnectionRecorded(connection_id=self.id, **data.model_dump(mode="json"))]

    def end(self, data: ConnectionEnd, *, on: date) -> list[DomainEvent]:
        if not self.active:
            raise Conflict(f"connection {self.id} has already ended")
        return [ConnectionEnded(connection_id=self.id, on=data.on or on)]

    def on_ConnectionRecorded(self, _: ConnectionRecorded) -> None:
        self.active = True

    def on_ConnectionEnded(self, _: ConnectionEnded) -> None:
        self.active = False


@dataclass
class WorkingGroup(Aggregate):
    kind, label = "working-group", "working group"
    members: dict[str, str] = field(default_factory=dict)  # organisation id -> role

    def form(self, data: WorkingGroupCreate, *, same_name: str | None) -> list[DomainEvent]:
        self.new()
        if same_name:
            raise Conflict("the cluster already has a working group of that name", working_group_id=same_name)
        return [WorkingGroupFormed(working_group_id=self.id, **data.model_dump(mode="json"))]

    def join(self, data: WorkingGroupJoin) -> list[DomainEvent]:
        if data.organisation_id in self.members:
            raise Conflict(f"organisation {data.organisation_id} is already a member of working group {self.id}")
        return [WorkingGroupMemberJoined(working_group_id=self.id, **data.model_dump(mode="json"))]

    def leave(self, organisation_id: str) -> list[DomainEvent]:
        if organisation_id not in self.members:
            raise NotFound(f"organisation {organisation_id} is not a member of working group {self.id}")
        return [WorkingGroupMemberLeft(working_group_id=self.id, organisation_id=organisation_id)]

    def on_WorkingGroupMemberJoined(self, event: WorkingGroupMemberJoined) -> None:
        self.members[event.organisation_id] = event.role

    def on_WorkingGroupMemberLeft(self, event: WorkingGroupMemberLeft) -> None:
        self.members.pop(event.organisation_id, None)


def _referenced(aggregate: type[Record], conn: Connection, log: EventLog, entity_id: str, field_name: str) -> None:
    """A record named in a request body: unknown or archived is bad input, not a missing page."""
    found = aggregate.load(conn, log, entity_id)
    if not found.exists:
        raise InvalidInput.field(f"body.{field_name}", f"no {found.label} {entity_id}")
    if found.archived:
        raise InvalidInput.field(f"body.{field_name}", f"{found.label} {entity_id} is archived")


def _registered(public: type[P], entity_id: str, data: BaseModel, recorded: RecordedEvent) -> P:
    """The read model of a record its first event just created, as the projector wrote it (the
    validated fields and the event's stamps), without reading it back. Only for read models that
    are exactly the Create fields plus `Stamps` and defaults (`archived`)."""
    return public.model_construct(id=entity_id, **dict(data), version=recorded.version,
                                  created_at=recorded.recorded_at, updated_at=recorded.recorded_at)


def _public(value: Any) -> Any:
    assert value is not None, "the inline projection must hold what was just appended"
    return value


# --------------------------------------------------------------------------------------------
# Clusters


def register_cluster(conn: Connection, log: EventLog, data: ClusterCreate, metadata: Metadata, *,
                     cluster_id: str | None = None) -> ClusterPublic:
    cluster = Cluster.load(conn, log, cluster_id or new_id())
    cluster.save(conn, log, cluster.register(data), metadata)
    return _public(queries.get_cluster(conn, cluster.id))


def update_cluster(conn: Connection, log: EventLog, cluster_id: str, expected_version: int,
                   changes: ClusterUpdate, metadata: Metadata) -> ClusterPublic:
    cluster = Cluster.load(conn, log, cluster_id).found(expected_version)
    cluster.save(conn, log, cluster.update(changes), metadata)
    return _public(queries.get_cluster(conn, cluster_id))


def archive_cluster(conn: Connection, log: EventLog, cluster_id: str, expected_version: int,
                    metadata: Metadata, *, reason: str | None = None) -> ClusterPublic:
    cluster = Cluster.load(conn, log, cluster_id).found(expected_version)
    cluster.save(conn, log, cluster.archive(reason), metadata)
    return _public(queries.get_cluster(conn, cluster_id))


# --------------------------------------------------------------------------------------------
# Organisations and their contacts


def register_organisation(conn: Connection, log: EventLog, data: OrganisationCreate, metadata: Metadata, *,
                          organisation_id: str | None = None) -> OrganisationPublic:
    # A fresh id has no stream to load (and the append at version 0 would refuse one that existed).
    organisation = Organisation.load(conn, log, organisation_id) if organisation_id else Organisation(new_id())
    recorded = organisation.save(conn, log, organisation.register(data), metadata)
    return _registered(OrganisationPublic, organisation.id, data, recorded[-1])


def update_organisation(conn: Connection, log: EventLog, organisation_id: str, expected_version: int,
                        changes: OrganisationUpdate, metadata: Metadata) -> OrganisationPublic:
    organisation = Organisation.load(conn, log, organisation_id).found(expected_version)
    organisation.save(conn, log, organisation.update(changes), metadata)
    return _public(queries.get_organisation(conn, organisation_id))


def archive_organisation(conn: Connection, log: EventLog, organisation_id: str, expected_version: int,
                         metadata: Metadata, *, reason: str | None = None) -> OrganisationPublic:
    organisation = Organisation.load(conn, log, organisation_id).found(expected_version)
    organisation.save(conn, log, organisation.archive(reason), metadata)
    return _public(queries.get_organisation(conn, organisation_id))


def add_contact(conn: Connection, log: EventLog, organisation_id: str, data: ContactCreate, metadata: Metadata, *,
                contact_id: str | None = None) -> ContactPublic:
    Organisation.load(conn, log, organisation_id).found().live()
    contact = Contact.load(conn, log, contact_id or new_id())
    contact.save(conn, log, contact.add(organisation_id, data), metadata)
    return _public(queries.get_contact(conn, contact.id))


def update_contact(conn: Connection, log: EventLog, contact_id: str, expected_version: int,
                   changes: ContactUpdate, metadata: Metadata) -> ContactPublic:
    contact = Contact.load(conn, log, contact_id).found(expected_version)
    contact.save(conn, log, contact.update(changes), metadata)
    return _public(queries.get_contact(conn, contact_id))


def remove_contact(conn: Connection, log: EventLog, contact_id: str, expected_version: int,
                   metadata: Metadata) -> None:
    contact = Contact.load(conn, log, contact_id).found(expected_version)
    contact.save(conn, log, contact.remove(), metadata)


def record_consents(conn: Connection, log: EventLog, contact_id: str, consents: Consents,
                    metadata: Metadata) -> ContactPublic:
    contact = Contact.load(conn, log, contact_id).found()
    contact.save(conn, log, contact.record_consents(consents, at=utc_now_text()), metadata)
    return _public(queries.get_contact(conn, contact_id))


def erase_person(conn: Connection, log: EventLog, contact_id: str, metadata: Metadata) -> bool:
    """Delete the person's key and record it (PersonErased); False if they were erased already."""
    contact = Contact.load(conn, log, contact_id)
    events = contact.erase(at=utc_now_text())
    pii.erase(conn, contact_id)
    contact.save(conn, log, events, metadata)
    return bool(events)


# --------------------------------------------------------------------------------------------
# Memberships


def apply_membership(conn: Connection, log: EventLog, data: MembershipCreate, metadata: Metadata, *,
                     membership_id: str | None = None) -> MembershipPublic:
    _referenced(Organisation, conn, log, data.organisation_id, "organisation_id")
    _referenced(Cluster, conn, log, data.cluster_id, "cluster_id")
    membership = Membership.load(conn, log, membership_id or new_id())
    open_membership = queries.open_membership_id(conn, data.organisation_id, data.cluster_id)
    membership.save(conn, log, membership.apply(data, open_membership=open_membership, on=today()), metadata)
    return _public(queries.get_membership(conn, membership.id))


def activate_membership(conn: Connection, log: EventLog, membership_id: str, data: MembershipActivate,
                        metadata: Metadata, *, expected_version: int | None = None) -> MembershipPublic:
    membership = Membership.load(conn, log, membership_id).found(expected_version)
    membership.save(conn, log, membership.activate(data, on=today()), metadata)
    return _public(queries.get_membership(conn, membership_id))


def suspend_membership(conn: Connection, log: EventLog, membership_id: str, data: MembershipSuspend,
                       metadata: Metadata, *, expected_version: int | None = None) -> MembershipPublic:
    membership = Membership.load(conn, log, membership_id).found(expected_version)
    membership.save(conn, log, membership.suspend(data, on=today()), metadata)
    return _public(queries.get_membership(conn, membership_id))


def renew_membership(conn: Connection, log: EventLog, membership_id: str, data: MembershipRenew,
                     metadata: Metadata, *, expected_version: int | None = None) -> MembershipPublic:
    membership = Membership.load(conn, log, membership_id).found(expected_version)
    membership.save(conn, log, membership.renew(data), metadata)
    return _public(queries.get_membership(conn, membership_id))


def end_membership(conn: Connection, log: EventLog, membership_id: str, data: MembershipEnd,
                   metadata: Metadata, *, expected_version: int | None = None) -> MembershipPublic:
    membership = Membership.load(conn, log, membership_id).found(expected_version)
    membership.save(conn, log, membership.end(data, on=today()), metadata)
    return _public(queries.get_membership(conn, membership_id))


# --------------------------------------------------------------------------------------------
# Connections and working groups


def record_connection(conn: Connection, log: EventLog, data: ConnectionCreate, metadata: Metadata, *,
                      connection_id: str | None = None) -> ConnectionPublic:
    _referenced(Organisation, conn, log, data.source_id, "source_id")
    _referenced(Organisation, conn, log, data.target_id, "target_id")
    connection = OrganisationConnection.load(conn, log, connection_id or new_id())
    existing = queries.active_connection_id(conn, data.source_id, data.target_id, data.kind)
    connection.save(conn, log, connection.record(data, existing=existing), metadata)
    return _public(queries.get_connection(conn, connection.id))


def end_connection(conn: Connection, log: EventLog, connection_id: str, data: ConnectionEnd,
                   metadata: Metadata, *, expected_version: int | None = None) -> ConnectionPublic:
    connection = OrganisationConnection.load(conn, log, connection_id).found(expected_version)
    connection.save(conn, log, connection.end(data, on=today()), metadata)
    return _public(queries.get_connection(conn, connection_id))


def form_working_group(conn: Connection, log: EventLog, data: WorkingGroupCreate, metadata: Metadata, *,
                       working_group_id: str | None = None) -> WorkingGroupPublic:
    _referenced(Cluster, conn, log, data.cluster_id, "cluster_id")
    group = WorkingGroup.load(conn, log, working_group_id or new_id())
    same_name = queries.working_group_named(conn, data.cluster_id, name_key(data.name))
    group.save(conn, log, group.form(data, same_name=same_name), metadata)
    return _public(queries.get_working_group(conn, group.id))


def join_working_group(conn: Connection, log: EventLog, working_group_id: str, data: WorkingGroupJoin,
                       metadata: Metadata, *, expected_version: int | None = None) -> WorkingGroupPublic:
    group = WorkingGroup.load(conn, log, working_group_id).found(expected_version)
    _referenced(Organisation, conn, log, data.organisation_id, "organisation_id")
    group.save(conn, log, group.join(data), metadata)
    return _public(queries.get_working_group(conn, working_group_id))


def leave_working_group(conn: Connection, log: EventLog, working_group_id: str, organisation_id: str,
                        metadata: Metadata, *, expected_version: int | None = None) -> WorkingGroupPublic:
    group = WorkingGroup.load(conn, log, working_group_id).found(expected_version)
    group.save(conn, log, group.leave(organisation_id), metadata)
    return _public(queries.get_working_group(conn, working_group_id))
