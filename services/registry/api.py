"""The registry's HTTP API under /v1: parse, authorise, call the domain in one write transaction, render.

Reads come from the read models; writes return the new state with its stream version as the
ETag. Changes to a record (PATCH, archive, DELETE) need `If-Match`; state transitions
(activate, end, join…) check it when given. Each route's policy says which roles may call it;
`access.py` decides which records the caller may see or change, inside the same transaction.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Response
from sqlalchemy import ColumnElement, Connection

from services.registry import access, domain, queries
from services.registry.events import stream_id
from services.registry.models import (
    ArchiveRequest,
    ClusterCreate,
    ClusterPublic,
    ClusterUpdate,
    ConnectionCreate,
    ConnectionEnd,
    ConnectionPublic,
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
    Page,
    Stamps,
    WorkingGroupCreate,
    WorkingGroupJoin,
    WorkingGroupMemberPublic,
    WorkingGroupPublic,
)
from services.registry.vocabulary import (
    Competency,
    ConnectionKind,
    MembershipStatus,
    OrganisationKind,
    StakeholderRole,
    ValueChainStage,
)
from shared import pii
from shared.auth import CLUSTER_MANAGER, MEMBER, Anyone, Principal, allow
from shared.db import Database
from shared.errors import Forbidden, NotFound
from shared.eventlog import EventLog
from shared.http import Db, IfMatch, Log, OptionalIfMatch, RequestMetadata, etag, problems

T = TypeVar("T")
S = TypeVar("S", bound=Stamps)

router = APIRouter(prefix="/v1")

Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page")]
CountryFilter = Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2")]
RegionFilter = Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}[0-9A-Za-z]{0,3}$",
                                           description="NUTS code; includes the regions inside it")]
IdFilter = Annotated[str | None, Query(max_length=36)]
IncludeArchived = Annotated[bool, Query(description="Also list archived records")]

READ_ERRORS = problems(401, 403, 404)
WRITE_ERRORS = problems(401, 403, 404, 409, 412, 422, 428)

# Policies: who may call a route at all (platform admins always may).
Admin = Annotated[Principal, allow()]
Manager = Annotated[Principal, allow(CLUSTER_MANAGER)]
ManagerOrMember = Annotated[Principal, allow(CLUSTER_MANAGER, MEMBER)]


# Dependencies are `async def`: FastAPI would run a plain `def` in a worker thread, per request.


def _found(value: T | None, label: str, entity_id: str) -> T:
    if value is None:
        raise NotFound(f"{label} {entity_id} not found")
    return value


def _tagged(response: Response, resource: S) -> S:
    response.headers["ETag"] = etag(resource.version)
    return resource


def _created(response: Response, resource: S, path: str) -> S:
    response.headers["Location"] = f"/v1/{path}/{resource.id}"
    return _tagged(response, resource)


Checker = Callable[[Connection, Principal, str], access.Access | None]


async def _get(db: Database, getter: Callable[[Connection, str], T | None], label: str, entity_id: str,
               principal: Principal, checker: Checker) -> T:
    def read(conn: Connection) -> T | None:
        access.check(checker(conn, principal, entity_id), label, entity_id, to_change=False)
        return getter(conn, entity_id)

    return _found(await db.read(read), label, entity_id)


async def _history(db: Database, log: EventLog, kind: str, label: str, entity_id: str, principal: Principal,
                   checker: Checker) -> dict[str, Any]:
    """A record's events, for those who own it (seeing it is not enough: metadata names people)."""
    def read(conn: Connection) -> list[Any]:
        access.check(checker(conn, principal, entity_id), label, entity_id)
        # Sealed personal data opened, or "erased" (shared/pii.py).
        return pii.open_tree(conn, [event.public() for event in log.read_stream(conn, stream_id(kind, entity_id))])

    events = await db.read(read)
    _found(events or None, label, entity_id)
    return {"data": events}


def _checked(checker: Checker, principal: Principal, label: str, entity_id: str,
             command: Callable[[Connection], T]) -> Callable[[Connection], T]:
    """`command` after the caller is found to own the record, in the same transaction."""
    def run(conn: Connection) -> T:
        access.check(checker(conn, principal, entity_id), label, entity_id)
        return command(conn)
    return run


def _upper(value: str | None) -> str | None:
    return value.upper() if value else None


def organisation_scope(principal: Principal) -> tuple[frozenset[str], str | None, str | None]:
    """All that decides which organisations the caller may see (and may call the routes at all):
    the key of the conditions below, and of the read cache's responses (services/registry/app.py)."""
    return principal.roles, principal.cluster, principal.organisation


def _organisation_scope(principal: Principal) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """Which organisations, and which memberships to filter them by, the caller may see."""
    return _scope_conditions(*organisation_scope(principal))


@functools.lru_cache(maxsize=1024)
def _scope_conditions(roles: frozenset[str], cluster: str | None,
                      organisation: str | None) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    # Built once per scope (roles, cluster, organisation: all the conditions depend on): building
    # them and the statements around them costs more than running the statements on SQLite.
    scope = Principal("scope", roles, cluster, organisation)
    return access.organisation_visible(scope), access.membership_visible(scope)


# --------------------------------------------------------------------------------------------
# Clusters


@router.post("/clusters", status_code=201, responses=problems(409, 422), tags=["clusters"])
async def register_cluster(body: ClusterCreate, response: Response, db: Db, log: Log, _: Admin,
                           metadata: RequestMetadata) -> ClusterPublic:
    """Register a cluster (a tenant of clusterhub)."""
    cluster = await db.write(lambda conn: domain.register_cluster(conn, log, body, metadata))
    return _created(response, cluster, "clusters")


@router.get("/clusters", tags=["clusters"])
async def list_clusters(db: Db, _: Anyone, country: CountryFilter = None, include_archived: IncludeArchived = False,
                        cursor: Cursor = None, limit: Limit = 50) -> Page[ClusterPublic]:
    """List clusters by name."""
    return await db.read(lambda conn: queries.list_clusters(
        conn, country=_upper(country), include_archived=include_archived, cursor=cursor, limit=limit))


@router.get("/clusters/{cluster_id}", responses=READ_ERRORS, tags=["clusters"])
async def get_cluster(cluster_id: str, response: Response, db: Db, principal: Anyone) -> ClusterPublic:
    """One cluster; the ETag is its version."""
    return _tagged(response, await _get(db, queries.get_cluster, "cluster", cluster_id, principal, access.cluster))


@router.patch("/clusters/{cluster_id}", responses=WRITE_ERRORS, tags=["clusters"])
async def update_cluster(cluster_id: str, body: ClusterUpdate, principal: Manager, version: IfMatch, response: Response,
                         db: Db, log: Log, metadata: RequestMetadata) -> ClusterPublic:
    """Change the given fields (null clears an optional one)."""
    cluster = await db.write(_checked(access.cluster, principal, "cluster", cluster_id, lambda conn: (
        domain.update_cluster(conn, log, cluster_id, version, body, metadata))))
    return _tagged(response, cluster)


@router.post("/clusters/{cluster_id}/archive", responses=WRITE_ERRORS, tags=["clusters"])
async def archive_cluster(cluster_id: str, _: Admin, version: IfMatch, response: Response, db: Db, log: Log,
                          metadata: RequestMetadata, body: ArchiveRequest | None = None) -> ClusterPublic:
    """Archive a cluster: it stays readable and leaves the lists."""
    reason = body.reason if body else None
    cluster = await db.write(lambda conn: domain.archive_cluster(conn, log, cluster_id, version, metadata,
                                                                 reason=reason))
    return _tagged(response, cluster)


@router.get("/clusters/{cluster_id}/history", responses=READ_ERRORS, tags=["clusters"])
async def cluster_history(cluster_id: str, db: Db, log: Log, principal: Manager) -> dict[str, Any]:
    """The cluster's events, oldest first."""
    return await _history(db, log, "cluster", "cluster", cluster_id, principal, access.cluster)


# --------------------------------------------------------------------------------------------
# Organisations


@router.post("/organisations", status_code=201, responses=problems(409, 422), tags=["organisations"])
async def register_organisation(body: OrganisationCreate, response: Response, db: Db, log: Log, _: Manager,
                                metadata: RequestMetadata) -> OrganisationPublic:
    """Register an organisation."""
    organisation = await db.write(lambda conn: domain.register_organisation(conn, log, body, metadata))
    return _created(response, organisation, "organisations")


@router.get("/organisations", responses=problems(422), tags=["organisations"], response_model=Page[OrganisationPublic])
async def list_organisations(
    db: Db,
    principal: Anyone,
    kind: OrganisationKind | None = None,
    role: StakeholderRole | None = None,
    stage: ValueChainStage | None = None,
    competency: Competency | None = None,
    country: CountryFilter = None,
    region: RegionFilter = None,
    cluster: IdFilter = None,
    membership_status: MembershipStatus | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Words to find in names, description, "
                                                                "keywords; all must match")] = None,
    include_archived: IncludeArchived = False,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Response:
    """List organisations by name, or by relevance when searching with `q`. Filters combine with AND."""
    visible, membership_visible = _organisation_scope(principal)
    # The page's JSON comes from the rows (queries.JsonColumns), in the declared response model's shape.
    body = await db.read(lambda conn: queries.list_organisations_json(
        conn, kind=kind, role=role, stage=stage, competency=competency, country=_upper(country),
        region=_upper(region), cluster=cluster, membership_status=membership_status, q=q,
        include_archived=include_archived, cursor=cursor, limit=limit,
        visible=visible, membership_visible=membership_visible))
    return Response(body, media_type="application/json")


@router.get("/organisations/{organisation_id}", responses=READ_ERRORS, tags=["organisations"],
            response_model=OrganisationPublic)
async def get_organisation(organisation_id: str, db: Db, principal: Anyone) -> Response:
    """One organisation (archived ones too, for their owners); the ETag is its version."""
    visible, _ = _organisation_scope(principal)
    # The JSON comes from the row (queries.JsonColumns), in the declared response model's shape.
    body, version = _found(await db.read(lambda conn: queries.get_visible_organisation_json(
        conn, organisation_id, visible)), "organisation", organisation_id)
    return Response(body, media_type="application/json", headers={"ETag": etag(version)})


@router.patch("/organisations/{organisation_id}", responses=WRITE_ERRORS, tags=["organisations"])
async def update_organisation(organisation_id: str, body: OrganisationUpdate, principal: ManagerOrMember,
                              version: IfMatch, response: Response, db: Db, log: Log,
                              metadata: RequestMetadata) -> OrganisationPublic:
    """Change the given fields (null clears an optional one)."""
    organisation = await db.write(_checked(access.organisation, principal, "organisation", organisation_id,
                                           lambda conn: domain.update_organisation(conn, log, organisation_id,
                                                                                   version, body, metadata)))
    return _tagged(response, organisation)


@router.post("/organisations/{organisation_id}/archive", responses=WRITE_ERRORS, tags=["organisations"])
async def archive_organisation(organisation_id: str, principal: Manager, version: IfMatch, response: Response, db: Db,
                               log: Log, metadata: RequestMetadata,
                               body: ArchiveRequest | None = None) -> OrganisationPublic:
    """Archive an organisation: it stays readable and leaves the lists (no hard delete)."""
    reason = body.reason if body else None
    organisation = await db.write(_checked(access.organisation, principal, "organisation", organisation_id,
                                           lambda conn: domain.archive_organisation(conn, log, organisation_id,
                                                                                    version, metadata, reason=reason)))
    return _tagged(response, organisation)


@router.get("/organisations/{organisation_id}/history", responses=READ_ERRORS, tags=["organisations"])
async def organisation_history(organisation_id: str, db: Db, log: Log, principal: ManagerOrMember) -> dict[str, Any]:
    """The organisation's events, oldest first."""
    return await _history(db, log, "organisation", "organisation", organisation_id, principal, access.organisation)


# --------------------------------------------------------------------------------------------
# Contacts


@router.post("/organisations/{organisation_id}/contacts", status_code=201, responses=WRITE_ERRORS,
             tags=["contacts"])
async def add_contact(organisation_id: str, body: ContactCreate, response: Response, db: Db, log: Log,
                      principal: ManagerOrMember, metadata: RequestMetadata) -> ContactPublic:
    """Add a contact person to an organisation."""
    contact = await db.write(_checked(access.organisation, principal, "organisation", organisation_id,
                                      lambda conn: domain.add_contact(conn, log, organisation_id, body, metadata)))
    return _created(response, contact, "contacts")


@router.get("/organisations/{organisation_id}/contacts", responses=READ_ERRORS, tags=["contacts"])
async def list_contacts(organisation_id: str, db: Db, principal: ManagerOrMember, cursor: Cursor = None,
                        limit: Limit = 50) -> Page[ContactPublic]:
    """The organisation's contacts by name."""

    def read(conn: Connection) -> Page[ContactPublic]:
        access.check(access.organisation(conn, principal, organisation_id), "organisation", organisation_id)
        return queries.list_contacts(conn, organisation_id, cursor=cursor, limit=limit)

    return await db.read(read)


@router.get("/contacts/{contact_id}", responses=READ_ERRORS, tags=["contacts"])
async def get_contact(contact_id: str, response: Response, db: Db, principal: ManagerOrMember) -> ContactPublic:
    """One contact person."""
    return _tagged(response, await _get(db, queries.get_contact, "contact", contact_id, principal, access.contact))


@router.patch("/contacts/{contact_id}", responses=WRITE_ERRORS, tags=["contacts"])
async def update_contact(contact_id: str, body: ContactUpdate, principal: ManagerOrMember, version: IfMatch,
                         response: Response, db: Db, log: Log, metadata: RequestMetadata) -> ContactPublic:
    """Change the given fields of a contact."""
    contact = await db.write(_checked(access.contact, principal, "contact", contact_id, lambda conn: (
        domain.update_contact(conn, log, contact_id, version, body, metadata))))
    return _tagged(response, contact)


@router.delete("/contacts/{contact_id}", status_code=204, responses=WRITE_ERRORS, tags=["contacts"])
async def remove_contact(contact_id: str, principal: ManagerOrMember, version: IfMatch, db: Db, log: Log,
                         metadata: RequestMetadata) -> None:
    """Remove a contact from its organisation (the removal is recorded in the contact's history)."""
    await db.write(_checked(access.contact, principal, "contact", contact_id, lambda conn: domain.remove_contact(
        conn, log, contact_id, version, metadata)))


@router.get("/contacts/{contact_id}/history", responses=READ_ERRORS, tags=["contacts"])
async def contact_history(contact_id: str, db: Db, log: Log, principal: ManagerOrMember) -> dict[str, Any]:
    """The contact's events, oldest first."""
    return await _history(db, log, "person", "contact", contact_id, principal, access.contact)


# --------------------------------------------------------------------------------------------
# Memberships


@router.post("/memberships", status_code=201, responses=problems(409, 422), tags=["memberships"])
async def apply_membership(body: MembershipCreate, response: Response, db: Db, log: Log, principal: Manager,
                           metadata: RequestMetadata) -> MembershipPublic:
    """An organisation applies for membership of a cluster (recorded by that cluster's manager)."""
    access.managed_cluster(principal, body.cluster_id, "body.cluster_id")

    def run(conn: Connection) -> MembershipPublic:
        access.referenced_organisation(conn, principal, body.organisation_id, "organisation_id")
        return domain.apply_membership(conn, log, body, metadata)

    membership = await db.write(run)
    return _created(response, membership, "memberships")


@router.get("/memberships", tags=["memberships"])
async def list_memberships(db: Db, principal: ManagerOrMember, organisation_id: IdFilter = None,
                           cluster_id: IdFilter = None, status: MembershipStatus | None = None, cursor: Cursor = None,
                           limit: Limit = 50) -> Page[MembershipPublic]:
    """Memberships, oldest first: a cluster's for its managers, an organisation's for its members."""
    return await db.read(lambda conn: queries.list_memberships(
        conn, organisation_id=organisation_id, cluster_id=cluster_id, status=status, cursor=cursor, limit=limit,
        visible=access.membership_owned(principal)))


@router.get("/memberships/{membership_id}", responses=READ_ERRORS, tags=["memberships"])
async def get_membership(membership_id: str, response: Response, db: Db,
                         principal: ManagerOrMember) -> MembershipPublic:
    """One membership."""
    return _tagged(response, await _get(db, queries.get_membership, "membership", membership_id, principal,
                                        access.membership))


@router.post("/memberships/{membership_id}/activate", responses=WRITE_ERRORS, tags=["memberships"])
async def activate_membership(membership_id: str, response: Response, db: Db, log: Log, principal: Manager,
                              metadata: RequestMetadata, version: OptionalIfMatch,
                              body: MembershipActivate | None = None) -> MembershipPublic:
    """Accept an application, or lift a suspension."""
    data = body or MembershipActivate()
    membership = await db.write(_checked(access.membership, principal, "membership", membership_id, lambda conn:
                                         domain.activate_membership(conn, log, membership_id, data, metadata,
                                                                    expected_version=version)))
    return _tagged(response, membership)


@router.post("/memberships/{membership_id}/suspend", responses=WRITE_ERRORS, tags=["memberships"])
async def suspend_membership(membership_id: str, response: Response, db: Db, log: Log, principal: Manager,
                             metadata: RequestMetadata, version: OptionalIfMatch,
                             body: MembershipSuspend | None = None) -> MembershipPublic:
    """Suspend an active membership (e.g. fee unpaid)."""
    data = body or MembershipSuspend()
    membership = await db.write(_checked(access.membership, principal, "membership", membership_id, lambda conn:
                                         domain.suspend_membership(conn, log, membership_id, data, metadata,
                                                                   expected_version=version)))
    return _tagged(response, membership)


@router.post("/memberships/{membership_id}/renew", responses=WRITE_ERRORS, tags=["memberships"])
async def renew_membership(membership_id: str, response: Response, db: Db, log: Log, principal: Manager,
                           metadata: RequestMetadata, version: OptionalIfMatch,
                           body: MembershipRenew | None = None) -> MembershipPublic:
    """Extend the membership period (by a year unless told), optionally at a new fee."""
    data = body or MembershipRenew()
    membership = await db.write(_checked(access.membership, principal, "membership", membership_id, lambda conn:
                                         domain.renew_membership(conn, log, membership_id, data, metadata,
                                                                 expected_version=version)))
    return _tagged(response, membership)


@router.post("/memberships/{membership_id}/end", responses=WRITE_ERRORS, tags=["memberships"])
async def end_membership(membership_id: str, response: Response, db: Db, log: Log, principal: Manager,
                         metadata: RequestMetadata, version: OptionalIfMatch,
                         body: MembershipEnd | None = None) -> MembershipPublic:
    """End a membership (withdrawn application, resignation, exclusion)."""
    data = body or MembershipEnd()
    membership = await db.write(_checked(access.membership, principal, "membership", membership_id, lambda conn:
                                         domain.end_membership(conn, log, membership_id, data, metadata,
                                                               expected_version=version)))
    return _tagged(response, membership)


@router.get("/memberships/{membership_id}/history", responses=READ_ERRORS, tags=["memberships"])
async def membership_history(membership_id: str, db: Db, log: Log, principal: ManagerOrMember) -> dict[str, Any]:
    """The membership's events, oldest first."""
    return await _history(db, log, "membership", "membership", membership_id, principal, access.membership)


# --------------------------------------------------------------------------------------------
# Connections


@router.post("/connections", status_code=201, responses=problems(409, 422), tags=["connections"])
async def record_connection(body: ConnectionCreate, response: Response, db: Db, log: Log, principal: ManagerOrMember,
                            metadata: RequestMetadata) -> ConnectionPublic:
    """Record that one organisation is partner, supplier or spin-off of another, or in a project with it
    (one end must be the caller's)."""

    def run(conn: Connection) -> ConnectionPublic:
        access.referenced_organisation(conn, principal, body.source_id, "source_id")
        access.referenced_organisation(conn, principal, body.target_id, "target_id")
        ends = (access.organisation(conn, principal, body.source_id), access.organisation(conn, principal,
                                                                                          body.target_id))
        if not any(end and end.owned for end in ends):
            raise Forbidden("neither organisation is yours (another cluster's or organisation's)")
        return domain.record_connection(conn, log, body, metadata)

    connection = await db.write(run)
    return _created(response, connection, "connections")


@router.get("/connections", tags=["connections"])
async def list_connections(db: Db, principal: ManagerOrMember, organisation_id: IdFilter = None,
                           kind: ConnectionKind | None = None,
                           include_ended: bool = False, cursor: Cursor = None,
                           limit: Limit = 50) -> Page[ConnectionPublic]:
    """Connections, oldest first; `organisation_id` matches either end."""
    return await db.read(lambda conn: queries.list_connections(
        conn, organisation_id=organisation_id, kind=kind, include_ended=include_ended, cursor=cursor, limit=limit,
        visible=access.connection_owned(principal)))


@router.get("/connections/{connection_id}", responses=READ_ERRORS, tags=["connections"])
async def get_connection(connection_id: str, response: Response, db: Db,
                         principal: ManagerOrMember) -> ConnectionPublic:
    """One connection."""
    return _tagged(response, await _get(db, queries.get_connection, "connection", connection_id, principal,
                                        access.connection))


@router.post("/connections/{connection_id}/end", responses=WRITE_ERRORS, tags=["connections"])
async def end_connection(connection_id: str, response: Response, db: Db, log: Log, principal: ManagerOrMember,
                         metadata: RequestMetadata, version: OptionalIfMatch,
                         body: ConnectionEnd | None = None) -> ConnectionPublic:
    """End a connection; it stays listed with `include_ended=true`."""
    data = body or ConnectionEnd()
    connection = await db.write(_checked(access.connection, principal, "connection", connection_id, lambda conn:
                                         domain.end_connection(conn, log, connection_id, data, metadata,
                                                               expected_version=version)))
    return _tagged(response, connection)


@router.get("/connections/{connection_id}/history", responses=READ_ERRORS, tags=["connections"])
async def connection_history(connection_id: str, db: Db, log: Log, principal: ManagerOrMember) -> dict[str, Any]:
    """The connection's events, oldest first."""
    return await _history(db, log, "connection", "connection", connection_id, principal, access.connection)


# --------------------------------------------------------------------------------------------
# Working groups


@router.post("/working-groups", status_code=201, responses=problems(409, 422), tags=["working groups"])
async def form_working_group(body: WorkingGroupCreate, response: Response, db: Db, log: Log, principal: Manager,
                             metadata: RequestMetadata) -> WorkingGroupPublic:
    """Form a thematic working group in a cluster."""
    access.managed_cluster(principal, body.cluster_id, "body.cluster_id")
    group = await db.write(lambda conn: domain.form_working_group(conn, log, body, metadata))
    return _created(response, group, "working-groups")


@router.get("/working-groups", tags=["working groups"])
async def list_working_groups(db: Db, principal: ManagerOrMember, cluster_id: IdFilter = None,
                              organisation_id: IdFilter = None,
                              cursor: Cursor = None, limit: Limit = 50) -> Page[WorkingGroupPublic]:
    """Working groups by name; `organisation_id` lists the groups it belongs to."""
    return await db.read(lambda conn: queries.list_working_groups(
        conn, cluster_id=cluster_id, organisation_id=organisation_id, cursor=cursor, limit=limit,
        visible=access.working_group_visible(principal)))


@router.get("/working-groups/{working_group_id}", responses=READ_ERRORS, tags=["working groups"])
async def get_working_group(working_group_id: str, response: Response, db: Db,
                            principal: ManagerOrMember) -> WorkingGroupPublic:
    """One working group."""
    return _tagged(response, await _get(db, queries.get_working_group, "working group", working_group_id, principal,
                                        access.working_group))


@router.get("/working-groups/{working_group_id}/members", responses=READ_ERRORS, tags=["working groups"])
async def list_working_group_members(working_group_id: str, db: Db, principal: ManagerOrMember, cursor: Cursor = None,
                                     limit: Limit = 50) -> Page[WorkingGroupMemberPublic]:
    """The group's member organisations."""

    def read(conn: Connection) -> Page[WorkingGroupMemberPublic]:
        access.check(access.working_group(conn, principal, working_group_id), "working group", working_group_id,
                     to_change=False)
        return queries.list_working_group_members(conn, working_group_id, cursor=cursor, limit=limit)

    return await db.read(read)


@router.post("/working-groups/{working_group_id}/members", responses=WRITE_ERRORS, tags=["working groups"])
async def join_working_group(working_group_id: str, body: WorkingGroupJoin, response: Response, db: Db, log: Log,
                             principal: ManagerOrMember, metadata: RequestMetadata,
                             version: OptionalIfMatch) -> WorkingGroupPublic:
    """An organisation joins the group (its cluster's managers add theirs; a member adds their own)."""

    def run(conn: Connection) -> WorkingGroupPublic:
        _in_working_group(conn, principal, working_group_id, body.organisation_id)
        access.referenced_organisation(conn, principal, body.organisation_id, "organisation_id", owned=True)
        return domain.join_working_group(conn, log, working_group_id, body, metadata, expected_version=version)

    group = await db.write(run)
    return _tagged(response, group)


@router.delete("/working-groups/{working_group_id}/members/{organisation_id}", responses=WRITE_ERRORS,
               tags=["working groups"])
async def leave_working_group(working_group_id: str, organisation_id: str, response: Response, db: Db, log: Log,
                              principal: ManagerOrMember, metadata: RequestMetadata,
                              version: OptionalIfMatch) -> WorkingGroupPublic:
    """An organisation leaves the group."""

    def run(conn: Connection) -> WorkingGroupPublic:
        _in_working_group(conn, principal, working_group_id, organisation_id)
        return domain.leave_working_group(conn, log, working_group_id, organisation_id, metadata,
                                          expected_version=version)

    group = await db.write(run)
    return _tagged(response, group)


@router.get("/working-groups/{working_group_id}/history", responses=READ_ERRORS, tags=["working groups"])
async def working_group_history(working_group_id: str, db: Db, log: Log, principal: Manager) -> dict[str, Any]:
    """The working group's events, oldest first."""
    return await _history(db, log, "working-group", "working group", working_group_id, principal,
                          access.working_group)


def _in_working_group(conn: Connection, principal: Principal, working_group_id: str, organisation_id: str) -> None:
    """The group's cluster managers change its membership; a member only for their own organisation."""
    found = access.working_group(conn, principal, working_group_id)
    access.check(found, "working group", working_group_id, to_change=False)
    if not (found and found.owned) and not principal.represents(organisation_id):
        raise Forbidden(f"you may add or remove only your own organisation, not {organisation_id}")
