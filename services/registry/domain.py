"""Registry command handlers: load the stream, decide, append. (Signatures first; bodies follow.)"""
from __future__ import annotations

from sqlalchemy import Connection

from services.registry.models import (
    ClusterCreate, ClusterPublic, ClusterUpdate, ConnectionCreate, ConnectionEnd, ConnectionPublic,
    ContactCreate, ContactPublic, ContactUpdate, MembershipActivate, MembershipCreate, MembershipEnd,
    MembershipPublic, MembershipRenew, MembershipSuspend, OrganisationCreate, OrganisationPublic,
    OrganisationUpdate, WorkingGroupCreate, WorkingGroupJoin, WorkingGroupPublic,
)
from shared.eventlog import EventLog, Metadata


def register_cluster(conn: Connection, log: EventLog, data: ClusterCreate, metadata: Metadata, *,
                     cluster_id: str | None = None) -> ClusterPublic:
    raise NotImplementedError


def update_cluster(conn: Connection, log: EventLog, cluster_id: str, expected_version: int,
                   changes: ClusterUpdate, metadata: Metadata) -> ClusterPublic:
    raise NotImplementedError


def archive_cluster(conn: Connection, log: EventLog, cluster_id: str, expected_version: int,
                    metadata: Metadata, *, reason: str | None = None) -> ClusterPublic:
    raise NotImplementedError


def register_organisation(conn: Connection, log: EventLog, data: OrganisationCreate, metadata: Metadata, *,
                          organisation_id: str | None = None) -> OrganisationPublic:
    raise NotImplementedError


def update_organisation(conn: Connection, log: EventLog, organisation_id: str, expected_version: int,
                        changes: OrganisationUpdate, metadata: Metadata) -> OrganisationPublic:
    raise NotImplementedError


def archive_organisation(conn: Connection, log: EventLog, organisation_id: str, expected_version: int,
                         metadata: Metadata, *, reason: str | None = None) -> OrganisationPublic:
    raise NotImplementedError


def add_contact(conn: Connection, log: EventLog, organisation_id: str, data: ContactCreate, metadata: Metadata, *,
                contact_id: str | None = None) -> ContactPublic:
    raise NotImplementedError


def update_contact(conn: Connection, log: EventLog, contact_id: str, expected_version: int,
                   changes: ContactUpdate, metadata: Metadata) -> ContactPublic:
    raise NotImplementedError


def remove_contact(conn: Connection, log: EventLog, contact_id: str, expected_version: int,
                   metadata: Metadata) -> None:
    raise NotImplementedError


def apply_membership(conn: Connection, log: EventLog, data: MembershipCreate, metadata: Metadata, *,
                     membership_id: str | None = None) -> MembershipPublic:
    raise NotImplementedError


def activate_membership(conn: Connection, log: EventLog, membership_id: str, data: MembershipActivate,
                        metadata: Metadata, *, expected_version: int | None = None) -> MembershipPublic:
    raise NotImplementedError


def suspend_membership(conn: Connection, log: EventLog, membership_id: str, data: MembershipSuspend,
                       metadata: Metadata, *, expected_version: int | None = None) -> MembershipPublic:
    raise NotImplementedError


def renew_membership(conn: Connection, log: EventLog, membership_id: str, data: MembershipRenew,
                     metadata: Metadata, *, expected_version: int | None = None) -> MembershipPublic:
    raise NotImplementedError


def end_membership(conn: Connection, log: EventLog, membership_id: str, data: MembershipEnd,
                   metadata: Metadata, *, expected_version: int | None = None) -> MembershipPublic:
    raise NotImplementedError


def record_connection(conn: Connection, log: EventLog, data: ConnectionCreate, metadata: Metadata, *,
                      connection_id: str | None = None) -> ConnectionPublic:
    raise NotImplementedError


def end_connection(conn: Connection, log: EventLog, connection_id: str, data: ConnectionEnd,
                   metadata: Metadata, *, expected_version: int | None = None) -> ConnectionPublic:
    raise NotImplementedError


def form_working_group(conn: Connection, log: EventLog, data: WorkingGroupCreate, metadata: Metadata, *,
                       working_group_id: str | None = None) -> WorkingGroupPublic:
    raise NotImplementedError


def join_working_group(conn: Connection, log: EventLog, working_group_id: str, data: WorkingGroupJoin,
                       metadata: Metadata, *, expected_version: int | None = None) -> WorkingGroupPublic:
    raise NotImplementedError


def leave_working_group(conn: Connection, log: EventLog, working_group_id: str, organisation_id: str,
                        metadata: Metadata, *, expected_version: int | None = None) -> WorkingGroupPublic:
    raise NotImplementedError
