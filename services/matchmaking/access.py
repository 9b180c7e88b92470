"""Who sees and changes what in matchmaking: the tenant rules, as SQL conditions and checks.

An opportunity belongs to the cluster it is posted in (`cluster_id`, its reviewers) and to the
organisation posting it; an expression of interest also to the organisation that expressed it.

Cooperation plans are confidential until published. Anyone (without credentials too) sees the
published opportunities marked `public`; a member also those published for their own cluster's
members (`cluster_members`, `partner_clusters`), and all of their own organisation's. A cluster
manager sees and reviews everything posted in their cluster. The funding-call catalogue is public.

What a caller may not see answers 404, as if it did not exist; what they see but may not change
answers 403.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, Connection, and_, false, not_, or_, true

from services.matchmaking import queries
from services.matchmaking.models import InterestPublic, OpportunityPublic
from services.matchmaking.projections import opportunities
from shared.auth import Principal
from shared.errors import Forbidden, NotFound

o = opportunities.c
MEMBERS_VISIBILITY = ("cluster_members", "partner_clusters")


def opportunity_visible(principal: Principal, on: date) -> ColumnElement[bool]:
    if principal.is_admin:
        return true()
    published = and_(o.status == "published", not_(and_(o.expires_on.is_not(None), o.expires_on < on)))
    seen = [and_(published, o.visibility == "public")]
    if principal.managed_cluster:
        seen.append(o.cluster_id == principal.managed_cluster)
    if principal.member_cluster:
        seen.append(and_(published, o.cluster_id == principal.member_cluster))
    if principal.member_organisation:
        seen.append(o.organisation_id == principal.member_organisation)
    return or_(*seen) if seen else false()


def _owns(principal: Principal, found: OpportunityPublic) -> bool:
    return principal.manages(found.cluster_id) or principal.represents(found.organisation_id)


def _sees(principal: Principal, found: OpportunityPublic) -> bool:
    if _owns(principal, found):
        return True
    if found.status != "published":
        return False
    return found.visibility == "public" or (found.cluster_id is not None
                                            and principal.member_cluster == found.cluster_id)


def opportunity(conn: Connection, principal: Principal, opportunity_id: str, *, on: date, change: bool = False,
                review: bool = False) -> OpportunityPublic:
    """404 unless the caller sees it; `change`: 403 unless it is theirs (owner or its cluster's manager);
    `review`: 403 unless they manage its cluster."""
    found = queries.get_opportunity(conn, opportunity_id, on=on)
    if found is None or not _sees(principal, found):
        raise NotFound(f"opportunity {opportunity_id} not found")
    if review and not principal.manages(found.cluster_id):
        raise Forbidden("only the managers of the cluster it is posted in review an opportunity")
    if change and not _owns(principal, found):
        raise Forbidden("this opportunity is not yours (another organisation's or cluster's)")
    return found


def posting_cluster(principal: Principal, cluster_id: str | None, field: str) -> str | None:
    """The cluster an opportunity is posted in: the caller's own (by default), never another's."""
    if principal.is_admin:
        return cluster_id
    own = principal.managed_cluster or principal.member_cluster
    if cluster_id is not None and cluster_id != own:
        raise Forbidden(f"{field}: post in your own cluster {own}, not {cluster_id}")
    return own


def interest(conn: Connection, principal: Principal, interest_id: str, *, on: date,
             decide: bool = False) -> InterestPublic:
    """404 unless the caller is on one side (or manages the opportunity's cluster); `decide`: 403 unless
    they own the opportunity."""
    found = queries.get_interest(conn, interest_id)
    target = queries.get_opportunity(conn, found.opportunity_id, on=on) if found else None
    owner = target is not None and _owns(principal, target)
    if found is None or not (owner or principal.represents(found.organisation_id)):
        raise NotFound(f"expression of interest {interest_id} not found")
    if decide and not owner:
        raise Forbidden("only the opportunity's owner accepts or declines an expression of interest")
    return found
