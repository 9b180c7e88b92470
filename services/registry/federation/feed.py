"""The partner feed: what each partner cluster may read, as CloudEvents, in log order.

How. A catch-up consumer of the shared log (`FeedBuilder`, checkpointed in
`subscription_checkpoints`) reads every relevant event in position order and, for each partner
an agreement in force shares it with at that point of the log, writes feed items: a sanitised
public projection of the event, the organisation or the opportunity, rendered once as a
structured CloudEvent and kept byte for byte (what the feed serves is what webhooks sign). It
keeps the little it must know (agreements, event, profile, membership and opportunity states as
of the position it has reached) in its own tables, so an item reflects the agreements in force
at its position and never a later amendment.

Why a consumer and not an inline projector: joint events are appended by the events service and
opportunities by matchmaking, in their own processes; the registry's inline projectors never see
those appends, while every process sees the log.

Items. Keyed by (partner, log position, index within that position): one log event may yield
several items (an agreement that starts sharing profiles yields one per member). The cursor is
the key of the last item returned, so a partner resumes exactly after it; items are committed
together with the builder's checkpoint, in position order, so nothing is skipped or repeated
however many unshared events lie in between. The CloudEvent `id` is `{position}-{index}`, unique
within this instance's `source`; the `sequence` extension attribute gives the same order as
comparable text (webhook deliveries may arrive out of order).

What never crosses: contacts and persons (names, e-mails, phones), organisations that are not an
active member of the owner cluster (or are archived), memberships and fees, opportunities with
visibility `cluster_members` or not published, participants and meetings, session speakers,
online meeting links, VAT numbers. Data is built from an allow-list of fields, never by removing
known private ones.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import orjson
import structlog
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import Connection, and_, delete, insert, or_, select, update

import services.events.events  # noqa: F401 - registers the event types this consumer decodes
import services.matchmaking.events  # noqa: F401
import services.registry.federation.events  # noqa: F401
from services.registry.federation.tables import (
    builder_agreements,
    builder_events,
    builder_memberships,
    builder_opportunities,
    builder_organisations,
    deliveries,
    feed_items,
    webhooks,
)
from shared.auth import PARTNER_CLUSTER, Principal, allow
from shared.db import Database
from shared.errors import InvalidInput
from shared.eventlog import EventLog, RecordedEvent
from shared.http import Db, problems
from shared.pagination import decode_cursor, encode_cursor
from shared.projections import insert_rows
from shared.subscriptions import CatchUpSubscription

log = structlog.get_logger()

SUBSCRIPTION = "federation.feed"
TYPE_PREFIX = "eu.clusterhub."
LISTED = ("published", "registration_closed", "held")
SHAREABLE_VISIBILITY = ("partner_clusters", "public")
_JSON = JSONFormat()

# Allow-lists: only these fields ever leave the instance.
EVENT_FIELDS = ("event_id", "title", "kind", "description", "venue", "time_zone", "starts_at", "ends_at", "capacity",
                "registration_opens_at", "registration_closes_at", "organiser_cluster_ids", "members_only")
SESSION_FIELDS = ("id", "title", "starts_at", "ends_at", "room")
PROFILE_FIELDS = ("organisation_id", "legal_name", "short_name", "kind", "company_size", "roles", "stages",
                  "competencies", "keywords", "country", "nuts_region", "website", "description", "pic", "ror")
OPPORTUNITY_FIELDS = ("opportunity_id", "kind", "title", "summary", "description", "keywords", "competencies",
                      "stages", "partner_kinds", "target_countries", "target_regions", "call_id", "deadline",
                      "cluster_id")


def sequence(position: int, index: int) -> str:
    """The CloudEvents `sequence` extension: the feed's order, comparable as text. Webhook deliveries
    may arrive out of order (retries, concurrent sends); a receiver keeps the newest per subject."""
    return f"{position:020d}.{index:06d}"


def _pick(values: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {name: values[name] for name in names if name in values}


def event_snapshot(values: dict[str, Any]) -> dict[str, Any]:
    snapshot = _pick(values, EVENT_FIELDS)
    if "sessions" in values:
        snapshot["sessions"] = [_pick(s, SESSION_FIELDS) for s in values["sessions"] or []]
    if "b2b" in values:
        snapshot["b2b_meetings"] = values["b2b"] is not None
    return snapshot


@dataclass
class _Item:
    partner: str
    owner: str
    type: str
    subject: str
    data: dict[str, Any]


@dataclass
class _Emitted:
    items: list[_Item] = field(default_factory=list)

    def add(self, partners: Iterable[tuple[str, str]], kind: str, subject: str, data: dict[str, Any]) -> None:
        for partner, owner in partners:
            # One item per partner, kind and subject, however many agreements share it.
            if not any(i.partner == partner and i.type == kind and i.subject == subject for i in self.items):
                self.items.append(_Item(partner, owner, kind, subject, {**data, "shared_by": owner}))


# --------------------------------------------------------------------------------------------
# The builder


class FeedBuilder:
    """The feed's consumer: `handle(conn, recorded)` for a CatchUpSubscription."""

    def __init__(self, source: str) -> None:
        self.source = source

    @property
    def event_types(self) -> list[str]:
        return [name.removeprefix("on_").replace("__", ".") for name in dir(self) if name.startswith("on_")]

    def handle(self, conn: Connection, recorded: RecordedEvent) -> None:
        method: Callable[..., None] | None = getattr(self, "on_" + recorded.event_type.replace(".", "__"), None)
        if method is None:
            return
        emitted = _Emitted()
        method(conn, recorded.event, emitted)
        if emitted.items:
            self._write(conn, recorded, emitted.items)

    def _write(self, conn: Connection, recorded: RecordedEvent, items: list[_Item]) -> None:
        time = datetime.fromisoformat(recorded.recorded_at.replace("Z", "+00:00"))
        counters: dict[str, int] = {}
        rows = []
        for item in items:
            index = counters[item.partner] = counters.get(item.partner, -1) + 1
            event = CloudEvent({"id": f"{recorded.position}-{index}", "source": self.source,
                                "type": TYPE_PREFIX + item.type, "time": time, "subject": item.subject,
                                "datacontenttype": "application/json",
                                "sequence": sequence(recorded.position, index)}, item.data)
            rows.append({"partner_cluster_id": item.partner, "position": recorded.position, "item_index": index,
                         "owner_cluster_id": item.owner, "type": TYPE_PREFIX + item.type,
                         "subject": item.subject, "body": _JSON.write(event).decode()})
        conn.execute(insert(feed_items), rows)
        self._queue_deliveries(conn, recorded, rows)

    def _queue_deliveries(self, conn: Connection, recorded: RecordedEvent, rows: list[dict[str, Any]]) -> None:
        """A delivery per item and active webhook of its partner, in the item's transaction."""
        partners = {row["partner_cluster_id"] for row in rows}
        hooks = conn.execute(select(webhooks.c.id, webhooks.c.partner_cluster_id).where(
            webhooks.c.partner_cluster_id.in_(partners), webhooks.c.active.is_(True))).all()
        queued = [{"id": str(uuid.uuid4()), "webhook_id": hook.id, "partner_cluster_id": row["partner_cluster_id"],
                   "owner_cluster_id": row["owner_cluster_id"], "item_position": row["position"],
                   "item_index": row["item_index"], "cloud_event_id": f"{row['position']}-{row['item_index']}",
                   "cloud_event_type": row["type"], "status": "pending", "attempts": 0,
                   "next_attempt_at": recorded.recorded_at, "created_at": recorded.recorded_at}
                  for row in rows for hook in hooks if hook.partner_cluster_id == row["partner_cluster_id"]]
        if queued:
            conn.execute(insert(deliveries), queued)

    # -- who is shared what ------------------------------------------------------------------

    @staticmethod
    def _agreements(conn: Connection, owners: Iterable[str]) -> list[Any]:
        a = builder_agreements.c
        return conn.execute(select(builder_agreements).where(a.owner_cluster_id.in_(list(owners)),
                                                             a.in_force.is_(True))).all()

    def _event_partners(self, conn: Connection, event_id: str, organisers: list[str]) -> list[tuple[str, str]]:
        return [(a.partner_cluster_id, a.owner_cluster_id) for a in self._agreements(conn, organisers)
                if event_id in a.event_ids]

    def _profile_partners(self, conn: Connection, organisation_id: str) -> list[tuple[str, str]]:
        """Partners of the clusters the organisation is an active member of (when not archived)."""
        org = conn.execute(select(builder_organisations).where(
            builder_organisations.c.organisation_id == organisation_id)).first()
        if org is None or org.archived:
            return []
        m = builder_memberships.c
        clusters = conn.execute(select(m.cluster_id).where(m.organisation_id == organisation_id,
                                                           m.status == "active")).scalars().all()
        return [(a.partner_cluster_id, a.owner_cluster_id) for a in self._agreements(conn, set(clusters))
                if a.public_profiles]

    def _opportunity_partners(self, conn: Connection, row: Any) -> list[tuple[str, str]]:
        if row is None or row.status != "published" or row.visibility not in SHAREABLE_VISIBILITY or not row.cluster_id:
            return []
        return [(a.partner_cluster_id, a.owner_cluster_id) for a in self._agreements(conn, [row.cluster_id])
                if a.shareable_opportunities]

    # -- agreements --------------------------------------------------------------------------

    def on_federation__SharingAgreementConcluded(self, conn: Connection, e: Any, out: _Emitted) -> None:
        conn.execute(insert(builder_agreements).values(
            id=e.agreement_id, owner_cluster_id=e.owner_cluster_id, partner_cluster_id=e.partner_cluster_id,
            event_ids=list(e.event_ids), public_profiles=e.public_profiles,
            shareable_opportunities=e.shareable_opportunities, in_force=True))
        before = {"event_ids": [], "public_profiles": False, "shareable_opportunities": False}
        self._terms_changed(conn, e.agreement_id, "federation.AgreementConcluded", before, out)

    def on_federation__SharingAgreementAmended(self, conn: Connection, e: Any, out: _Emitted) -> None:
        row = conn.execute(select(builder_agreements).where(builder_agreements.c.id == e.agreement_id)).first()
        if row is None:
            return
        before = {"event_ids": list(row.event_ids), "public_profiles": row.public_profiles,
                  "shareable_opportunities": row.shareable_opportunities}
        conn.execute(update(builder_agreements).where(builder_agreements.c.id == e.agreement_id).values(
            event_ids=list(e.event_ids), public_profiles=e.public_profiles,
            shareable_opportunities=e.shareable_opportunities))
        self._terms_changed(conn, e.agreement_id, "federation.AgreementAmended", before, out)

    def on_federation__SharingAgreementEnded(self, conn: Connection, e: Any, out: _Emitted) -> None:
        row = conn.execute(select(builder_agreements).where(builder_agreements.c.id == e.agreement_id)).first()
        if row is None:
            return
        conn.execute(update(builder_agreements).where(builder_agreements.c.id == e.agreement_id)
                     .values(in_force=False))
        # The partner drops everything this agreement shared; no withdrawal per item is sent.
        out.add([(row.partner_cluster_id, row.owner_cluster_id)], "federation.AgreementEnded",
                f"agreements/{row.id}", {"agreement_id": row.id, "owner_cluster_id": row.owner_cluster_id})

    def _terms_changed(self, conn: Connection, agreement_id: str, kind: str, before: dict[str, Any],
                       out: _Emitted) -> None:
        """The agreement item, then what the new terms start (or stop) sharing, as of this position."""
        a = conn.execute(select(builder_agreements).where(builder_agreements.c.id == agreement_id)).one()
        party = [(a.partner_cluster_id, a.owner_cluster_id)]
        out.add(party, kind, f"agreements/{a.id}", {
            "agreement_id": a.id, "owner_cluster_id": a.owner_cluster_id, "event_ids": list(a.event_ids),
            "public_profiles": a.public_profiles, "shareable_opportunities": a.shareable_opportunities})
        added, removed = set(a.event_ids) - set(before["event_ids"]), set(before["event_ids"]) - set(a.event_ids)
        if added or removed:
            e = builder_events.c
            for row in conn.execute(select(builder_events).where(e.event_id.in_(added | removed), e.status.in_(LISTED))
                                    .order_by(e.event_id)):
                if a.owner_cluster_id not in row.organiser_cluster_ids:
                    continue
                if row.event_id in added:
                    out.add(party, "events.EventShared", f"events/{row.event_id}", self._event_data(row))
                else:
                    out.add(party, "events.EventWithdrawn", f"events/{row.event_id}", {"event_id": row.event_id})
        if a.public_profiles != before["public_profiles"]:
            o, m = builder_organisations.c, builder_memberships.c
            members = conn.execute(select(builder_organisations).where(o.archived.is_(False), o.organisation_id.in_(
                select(m.organisation_id).where(m.cluster_id == a.owner_cluster_id, m.status == "active")))
                .order_by(o.organisation_id)).all()
            for org in members:
                if a.public_profiles:
                    out.add(party, "registry.OrganisationProfileShared", f"organisations/{org.organisation_id}",
                            org.profile)
                else:
                    out.add(party, "registry.OrganisationProfileWithdrawn", f"organisations/{org.organisation_id}",
                            {"organisation_id": org.organisation_id})
        if a.shareable_opportunities != before["shareable_opportunities"]:
            p = builder_opportunities.c
            for row in conn.execute(select(builder_opportunities).where(
                    p.cluster_id == a.owner_cluster_id, p.status == "published",
                    p.visibility.in_(SHAREABLE_VISIBILITY)).order_by(p.opportunity_id)):
                if a.shareable_opportunities:
                    out.add(party, "matchmaking.OpportunityShared", f"opportunities/{row.opportunity_id}",
                            row.snapshot)
                else:
                    out.add(party, "matchmaking.OpportunityWithdrawn", f"opportunities/{row.opportunity_id}",
                            {"opportunity_id": row.opportunity_id})

    # -- events (the events service) ---------------------------------------------------------

    @staticmethod
    def _event_data(row: Any) -> dict[str, Any]:
        return {**row.snapshot, "status": row.status}

    def _event(self, conn: Connection, event_id: str) -> Any:
        return conn.execute(select(builder_events).where(builder_events.c.event_id == event_id)).first()

    def on_events__EventScheduled(self, conn: Connection, e: Any, out: _Emitted) -> None:
        values = e.model_dump(mode="json")
        conn.execute(insert(builder_events).values(event_id=e.event_id, organiser_cluster_ids=e.organiser_cluster_ids,
                                                   status="draft", snapshot=event_snapshot(values)))

    def on_events__EventUpdated(self, conn: Connection, e: Any, out: _Emitted) -> None:
        row = self._event(conn, e.event_id)
        if row is None:
            return
        changes = event_snapshot(e.changes)
        if not changes:
            return
        snapshot = {**row.snapshot, **changes}
        organisers = e.changes.get("organiser_cluster_ids") or row.organiser_cluster_ids
        conn.execute(update(builder_events).where(builder_events.c.event_id == e.event_id)
                     .values(snapshot=snapshot, organiser_cluster_ids=organisers))
        if row.status in LISTED:
            row = self._event(conn, e.event_id)
            out.add(self._event_partners(conn, e.event_id, organisers), "events.EventUpdated",
                    f"events/{e.event_id}", self._event_data(row))

    def _status(self, conn: Connection, event_id: str, status: str, kind: str, out: _Emitted) -> None:
        row = self._event(conn, event_id)
        if row is None:
            return
        conn.execute(update(builder_events).where(builder_events.c.event_id == event_id).values(status=status))
        if kind == "events.EventWithdrawn" and row.status not in LISTED:
            return
        partners = self._event_partners(conn, event_id, row.organiser_cluster_ids)
        data = {"event_id": event_id} if kind == "events.EventWithdrawn" else self._event_data(self._event(conn, event_id))
        out.add(partners, kind, f"events/{event_id}", data)

    def on_events__EventPublished(self, conn: Connection, e: Any, out: _Emitted) -> None:
        self._status(conn, e.event_id, "published", "events.EventShared", out)

    def on_events__RegistrationClosed(self, conn: Connection, e: Any, out: _Emitted) -> None:
        self._status(conn, e.event_id, "registration_closed", "events.EventUpdated", out)

    def on_events__EventHeld(self, conn: Connection, e: Any, out: _Emitted) -> None:
        self._status(conn, e.event_id, "held", "events.EventUpdated", out)

    def on_events__EventArchived(self, conn: Connection, e: Any, out: _Emitted) -> None:
        self._status(conn, e.event_id, "archived", "events.EventWithdrawn", out)

    # -- organisation profiles (the registry) ------------------------------------------------

    def on_registry__OrganisationRegistered(self, conn: Connection, e: Any, out: _Emitted) -> None:
        # On the driver: the builder follows every registration, and a statement built per event cost more than the insert.
        insert_rows(conn, builder_organisations, [{"organisation_id": e.organisation_id, "archived": False,
                                                   "profile": _pick(e.model_dump(mode="json"), PROFILE_FIELDS)}])

    def on_registry__OrganisationUpdated(self, conn: Connection, e: Any, out: _Emitted) -> None:
        o = builder_organisations.c
        row = conn.execute(select(builder_organisations).where(o.organisation_id == e.organisation_id)).first()
        changes = _pick(e.changes, PROFILE_FIELDS)
        if row is None or not changes:
            return
        profile = {**row.profile, **changes}
        conn.execute(update(builder_organisations).where(o.organisation_id == e.organisation_id).values(profile=profile))
        out.add(self._profile_partners(conn, e.organisation_id), "registry.OrganisationProfileUpdated",
                f"organisations/{e.organisation_id}", profile)

    def on_registry__OrganisationArchived(self, conn: Connection, e: Any, out: _Emitted) -> None:
        partners = self._profile_partners(conn, e.organisation_id)
        conn.execute(update(builder_organisations).where(builder_organisations.c.organisation_id == e.organisation_id)
                     .values(archived=True))
        out.add(partners, "registry.OrganisationProfileWithdrawn", f"organisations/{e.organisation_id}",
                {"organisation_id": e.organisation_id})

    def on_registry__MembershipApplied(self, conn: Connection, e: Any, out: _Emitted) -> None:
        conn.execute(insert(builder_memberships).values(membership_id=e.membership_id, organisation_id=e.organisation_id,
                                                        cluster_id=e.cluster_id, status="applied"))

    def _membership(self, conn: Connection, membership_id: str, status: str, out: _Emitted) -> None:
        m = builder_memberships.c
        row = conn.execute(select(builder_memberships).where(m.membership_id == membership_id)).first()
        if row is None:
            return
        before = set(self._profile_partners(conn, row.organisation_id))
        conn.execute(update(builder_memberships).where(m.membership_id == membership_id).values(status=status))
        after = set(self._profile_partners(conn, row.organisation_id))
        subject = f"organisations/{row.organisation_id}"
        if after - before:
            profile = conn.execute(select(builder_organisations.c.profile).where(
                builder_organisations.c.organisation_id == row.organisation_id)).scalar_one()
            out.add(sorted(after - before), "registry.OrganisationProfileShared", subject, profile)
        if before - after:
            out.add(sorted(before - after), "registry.OrganisationProfileWithdrawn", subject,
                    {"organisation_id": row.organisation_id})

    def on_registry__MembershipActivated(self, conn: Connection, e: Any, out: _Emitted) -> None:
        self._membership(conn, e.membership_id, "active", out)

    def on_registry__MembershipSuspended(self, conn: Connection, e: Any, out: _Emitted) -> None:
        self._membership(conn, e.membership_id, "suspended", out)

    def on_registry__MembershipEnded(self, conn: Connection, e: Any, out: _Emitted) -> None:
        self._membership(conn, e.membership_id, "ended", out)

    # -- cooperation opportunities (matchmaking) ---------------------------------------------

    def _opportunity(self, conn: Connection, opportunity_id: str) -> Any:
        p = builder_opportunities.c
        return conn.execute(select(builder_opportunities).where(p.opportunity_id == opportunity_id)).first()

    def _opportunity_changed(self, conn: Connection, opportunity_id: str, values: dict[str, Any], out: _Emitted,
                             kind: str = "matchmaking.OpportunityUpdated") -> None:
        row = self._opportunity(conn, opportunity_id)
        if row is None:
            return
        before = set(self._opportunity_partners(conn, row))
        conn.execute(update(builder_opportunities).where(builder_opportunities.c.opportunity_id == opportunity_id)
                     .values(values))
        row = self._opportunity(conn, opportunity_id)
        after = set(self._opportunity_partners(conn, row))
        subject = f"opportunities/{opportunity_id}"
        if after - before:
            out.add(sorted(after - before), "matchmaking.OpportunityShared", subject, row.snapshot)
        if kind and after & before and "snapshot" in values:
            out.add(sorted(after & before), kind, subject, row.snapshot)
        if before - after:
            out.add(sorted(before - after), "matchmaking.OpportunityWithdrawn", subject,
                    {"opportunity_id": opportunity_id})

    def on_matchmaking__OpportunityDrafted(self, conn: Connection, e: Any, out: _Emitted) -> None:
        conn.execute(insert(builder_opportunities).values(
            opportunity_id=e.opportunity_id, cluster_id=e.cluster_id, status="draft", visibility=e.visibility,
            snapshot=_pick(e.model_dump(mode="json"), OPPORTUNITY_FIELDS)))

    def on_matchmaking__OpportunityUpdated(self, conn: Connection, e: Any, out: _Emitted) -> None:
        row = self._opportunity(conn, e.opportunity_id)
        if row is None:
            return
        values: dict[str, Any] = {}
        changes = _pick(e.changes, OPPORTUNITY_FIELDS)
        if changes:
            values["snapshot"] = {**row.snapshot, **changes}
        if e.changes.get("visibility"):
            values["visibility"] = e.changes["visibility"]
        if "cluster_id" in e.changes:
            values["cluster_id"] = e.changes["cluster_id"]
        if values:
            self._opportunity_changed(conn, e.opportunity_id, values, out)

    def on_matchmaking__OpportunityPublished(self, conn: Connection, e: Any, out: _Emitted) -> None:
        self._opportunity_changed(conn, e.opportunity_id, {"status": "published"}, out)

    def on_matchmaking__OpportunityRenewed(self, conn: Connection, e: Any, out: _Emitted) -> None:
        self._opportunity_changed(conn, e.opportunity_id, {"status": "published"}, out)

    def on_matchmaking__OpportunityExpired(self, conn: Connection, e: Any, out: _Emitted) -> None:
        self._opportunity_changed(conn, e.opportunity_id, {"status": "expired"}, out)

    def on_matchmaking__OpportunityClosed(self, conn: Connection, e: Any, out: _Emitted) -> None:
        self._opportunity_changed(conn, e.opportunity_id, {"status": "closed"}, out)

    def on_matchmaking__OpportunitySubmitted(self, conn: Connection, e: Any, out: _Emitted) -> None:
        self._opportunity_changed(conn, e.opportunity_id, {"status": "submitted"}, out)

    def on_matchmaking__OpportunityRejected(self, conn: Connection, e: Any, out: _Emitted) -> None:
        self._opportunity_changed(conn, e.opportunity_id, {"status": "draft"}, out)


def subscription(db: Database, source: str, *, batch_size: int = 500) -> CatchUpSubscription:
    builder = FeedBuilder(source)
    return CatchUpSubscription(SUBSCRIPTION, db, EventLog(db.dialect), builder.handle,
                               event_types=builder.event_types, batch_size=batch_size)


def reset(conn: Connection) -> None:
    """Forget the feed (tests, and a rebuild by an operator: items come back with the same ids)."""
    for table in (feed_items, builder_opportunities, builder_memberships, builder_organisations, builder_events,
                  builder_agreements):
        conn.execute(delete(table))


# --------------------------------------------------------------------------------------------
# GET /v1/feed

router = APIRouter(tags=["federation"])
Partner = Annotated[Principal, allow(PARTNER_CLUSTER)]
MAX_LIMIT = 500


class FeedPage(BaseModel):
    """Structured CloudEvents 1.0, oldest first; pass `next_cursor` back as `after`."""

    data: list[dict[str, Any]]
    next_cursor: str | None


def read_feed(conn: Connection, partner: str, after: str | None, limit: int) -> FeedPage:
    f = feed_items.c
    query = select(f.position, f.item_index, f.body).where(f.partner_cluster_id == partner)
    if after:
        position, index = decode_cursor(after, (int, int))
        query = query.where(or_(f.position > position, and_(f.position == position, f.item_index > index)))
    rows = conn.execute(query.order_by(f.position, f.item_index).limit(limit)).all()
    cursor = encode_cursor([rows[-1].position, rows[-1].item_index]) if rows else after
    return FeedPage(data=[orjson.loads(row.body) for row in rows], next_cursor=cursor)


@router.get("/v1/feed", responses=problems(401, 403, 422))
async def feed(db: Db, principal: Partner,
               after: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the last page")] = None,
               limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
               partner_cluster_id: Annotated[str | None, Query(pattern=r"^[0-9A-Za-z-]{1,64}$",
                                                                description="Platform admins: whose feed")] = None,
               ) -> FeedPage:
    """What is shared with the calling partner cluster, resumable from `after`."""
    partner = principal.cluster if PARTNER_CLUSTER in principal.roles else partner_cluster_id
    if partner is None:
        raise InvalidInput.field("query.partner_cluster_id", "platform admins name the partner cluster")
    return await db.read(lambda conn: read_feed(conn, partner, after, limit))


