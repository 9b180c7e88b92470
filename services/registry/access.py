"""Who sees and changes what in the registry: the tenant rules, as SQL conditions and checks.

Every record belongs to one or more clusters (its tenants):
- a cluster to itself;
- an organisation to each cluster it has a membership with (whatever its status), and to the
  cluster whose manager registered it (the tenant of its first event), so that it is theirs
  between being registered and applying for membership;
- a contact person to their organisation's clusters; a membership to its cluster; a working
  group to its cluster; a connection to the clusters of both its ends.

Public (anyone, without credentials too): clusters, and the profiles of organisations that are
an active member of some cluster and not archived. Contacts, memberships, connections, working
groups and histories never are.

A member (one organisation) owns their organisation, its contacts, memberships and connections,
and sees their cluster's working groups. A cluster manager owns all their cluster's records. A
platform admin owns everything. What a caller may neither own nor see answers 404, as if it did
not exist; what they may see but not change answers 403.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Table, and_, exists, false, literal, or_, select, true
from sqlalchemy.sql.elements import ColumnClause

from services.registry.projections import clusters, connections, contacts, memberships, organisations, working_groups
from shared.auth import Principal
from shared.errors import Forbidden, InvalidInput, NotFound
from shared.tables import events

o, m = organisations.c, memberships.c


@dataclass(frozen=True)
class Access:
    visible: bool
    owned: bool


# --------------------------------------------------------------------------------------------
# Conditions (SQL), for lists and single records alike


def organisation_owned(principal: Principal, organisation_id: ColumnElement | ColumnClause = o.id,
                       ) -> ColumnElement[bool]:
    if principal.is_admin:
        return true()
    owners: list[ColumnElement[bool]] = []
    cluster = principal.managed_cluster
    if cluster:
        e = events.c
        owners += [exists().where(m.organisation_id == organisation_id, m.cluster_id == cluster),
                   # The stream's first event names the tenant it was registered for.
                   exists().where(e.stream_id == literal("organisation-") + organisation_id, e.version == 1,
                                  e.tenant == cluster)]
    if principal.member_organisation:
        owners.append(organisation_id == principal.member_organisation)
    return or_(*owners) if owners else false()


def organisation_public() -> ColumnElement[bool]:
    return and_(o.archived.is_(False), exists().where(m.organisation_id == o.id, m.status == "active"))


def organisation_visible(principal: Principal) -> ColumnElement[bool]:
    return true() if principal.is_admin else or_(organisation_public(), organisation_owned(principal))


def membership_owned(principal: Principal) -> ColumnElement[bool]:
    if principal.is_admin:
        return true()
    owners = []
    if principal.managed_cluster:
        owners.append(m.cluster_id == principal.managed_cluster)
    if principal.member_organisation:
        owners.append(m.organisation_id == principal.member_organisation)
    return or_(*owners) if owners else false()


def membership_visible(principal: Principal) -> ColumnElement[bool]:
    """Memberships a caller may filter organisations by: their own, and every active one (public)."""
    return or_(m.status == "active", membership_owned(principal))


def connection_owned(principal: Principal) -> ColumnElement[bool]:
    c = connections.c
    return or_(organisation_owned(principal, c.source_id), organisation_owned(principal, c.target_id))


def working_group_visible(principal: Principal) -> ColumnElement[bool]:
    if principal.is_admin:
        return true()
    clusters_seen = {cluster for cluster in (principal.managed_cluster, principal.member_cluster) if cluster}
    return working_groups.c.cluster_id.in_(clusters_seen) if clusters_seen else false()


# --------------------------------------------------------------------------------------------
# One record


def _access(conn: Connection, table: Table, entity_id: str, visible: ColumnElement[bool],
            owned: ColumnElement[bool]) -> Access | None:
    row = conn.execute(select(visible.label("visible"), owned.label("owned")).select_from(table)
                       .where(table.c.id == entity_id)).first()
    return Access(bool(row.visible) or bool(row.owned), bool(row.owned)) if row else None


def check(found: Access | None, label: str, entity_id: str, *, to_change: bool = True) -> None:
    """404 unless the caller may see the record; 403 when they see it but may not change it."""
    if found is None or not found.visible:
        raise NotFound(f"{label} {entity_id} not found")
    if to_change and not found.owned:
        raise Forbidden(f"this {label} is not yours (another cluster's or organisation's)")


def cluster(conn: Connection, principal: Principal, cluster_id: str) -> Access | None:
    owned = true() if principal.manages(cluster_id) else false()
    return _access(conn, clusters, cluster_id, true(), owned)


def organisation(conn: Connection, principal: Principal, organisation_id: str) -> Access | None:
    return _access(conn, organisations, organisation_id, organisation_visible(principal),
                   organisation_owned(principal))


def contact(conn: Connection, principal: Principal, contact_id: str) -> Access | None:
    owned = organisation_owned(principal, contacts.c.organisation_id)
    return _access(conn, contacts, contact_id, owned, owned)


def membership(conn: Connection, principal: Principal, membership_id: str) -> Access | None:
    owned = membership_owned(principal)
    return _access(conn, memberships, membership_id, owned, owned)


def connection(conn: Connection, principal: Principal, connection_id: str) -> Access | None:
    owned = connection_owned(principal)
    return _access(conn, connections, connection_id, owned, owned)


def working_group(conn: Connection, principal: Principal, working_group_id: str) -> Access | None:
    owned: ColumnElement[bool] = false()
    if principal.is_admin:
        owned = true()
    elif principal.managed_cluster:
        owned = working_groups.c.cluster_id == principal.managed_cluster
    return _access(conn, working_groups, working_group_id, working_group_visible(principal), owned)


def referenced_organisation(conn: Connection, principal: Principal, organisation_id: str, field: str, *,
                            owned: bool = False) -> None:
    """An organisation named in a request body: one the caller cannot see reads as unknown (422, as
    the domain says of a missing one); `owned` also requires it to be theirs (403)."""
    found = organisation(conn, principal, organisation_id)
    if found is None or not found.visible:
        raise InvalidInput.field(f"body.{field}", f"no organisation {organisation_id}")
    if owned and not found.owned:
        raise Forbidden(f"organisation {organisation_id} is not yours (another cluster's or organisation's)")


def managed_cluster(principal: Principal, cluster_id: str | None, field: str) -> None:
    """403 unless the caller manages `cluster_id` (the cluster a new record is put in)."""
    if not principal.manages(cluster_id):
        raise Forbidden(f"{field}: you manage cluster {principal.managed_cluster}, not {cluster_id}")
