"""The index feeder: the recommender's in-memory index, fed from the shared log by a catch-up
subscription ("matchmaking.index"), never by reading other services' tables.

What it reads, and what becomes of it:
- registry.OrganisationRegistered / Updated / Archived: the organisations (archived ones leave).
- registry.MembershipApplied / Activated / Suspended / Ended: which clusters an organisation is an
  active member of (the "same cluster" signal).
- registry.ConnectionRecorded / Ended: ties (a `co_project` connection counts as a joint project).
- matchmaking.InterestAccepted: an accepted expression of interest ties its two organisations.
- events.ParticipantRegistered / Waitlisted, MeetingRequested, MeetingOutcomeRecorded: a B2B
  meeting whose outcome is a planned follow-up or an agreed partnership ties the organisations.

The checkpoint lives in memory with the index, on purpose: an index held in memory is empty
after a restart, so it must replay the log from position 0 whatever a stored checkpoint said,
and a stored one would only be wrong. Replaying from 0 on start is therefore the rebuild, and
`rebuild()` does the same while running. Handling is idempotent (ties remember what created
them), so a batch that fails half-way and is handled again changes nothing twice.

Thread safety: the subscription handles batches on a worker thread while queries run on
others; one lock covers the index and the side tables below (a query costs milliseconds).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import structlog
from sqlalchemy import Connection

# Decoding other services' events needs their event classes loaded: they are the contract.
import services.events.events  # noqa: F401
import services.matchmaking.events  # noqa: F401
import services.registry.events  # noqa: F401
from services.matchmaking.recommender import Organisation, OrganisationIndex, Recommender, TieKind
from shared.auth import Principal
from shared.db import Database
from shared.eventlog import EventLog, RecordedEvent
from shared.subscriptions import CatchUpSubscription

log = structlog.get_logger()

SUBSCRIPTION = "matchmaking.index"
FOLLOW_UP_OUTCOMES = frozenset({"follow_up_planned", "partnership_agreed"})
EVENT_TYPES = (
    "registry.OrganisationRegistered", "registry.OrganisationUpdated", "registry.OrganisationArchived",
    "registry.MembershipApplied", "registry.MembershipActivated", "registry.MembershipSuspended",
    "registry.MembershipEnded",
    "registry.ConnectionRecorded", "registry.ConnectionEnded",
    "matchmaking.InterestAccepted",
    "events.ParticipantRegistered", "events.ParticipantWaitlisted", "events.MeetingRequested",
    "events.MeetingOutcomeRecorded",
)


@dataclass
class InMemorySubscription(CatchUpSubscription):
    """A catch-up subscription whose checkpoint is a field: it follows the log in read transactions
    (nothing it does is written to the store, and polling must not take SQLite's write lock)."""

    position: int = 0

    def _stored_checkpoint(self, conn: Connection) -> int | None:
        return self.position

    def _save_checkpoint(self, conn: Connection, stored: int | None, position: int) -> None:
        self.position = position

    def catch_up(self) -> int:
        total = 0
        while True:
            with self.db.reading() as conn:
                handled = self.process_batch(conn)
            total += handled
            if handled == 0:
                return total


@dataclass(frozen=True)
class Profile:
    """What the API shows of an organisation beside the index's `Organisation`."""

    id: str
    name: str
    kind: str | None
    country: str | None
    company_size: str | None


class IndexFeed:
    def __init__(self, db: Database, *, batch_size: int = 500) -> None:
        self.lock = threading.RLock()
        self.subscription = InMemorySubscription(SUBSCRIPTION, db, EventLog(db.dialect), self._handle,
                                                 event_types=EVENT_TYPES, batch_size=batch_size)
        self._reset()

    def _reset(self) -> None:
        self.index = OrganisationIndex()
        self.recommender = Recommender(self.index)
        self._fields: dict[str, dict[str, Any]] = {}  # organisation id -> registry fields (JSON values)
        self._archived: set[str] = set()
        # Live organisations that are no cluster's active member: their profiles are not public
        # (the registry's rule), so only platform admins and the organisation itself may see them ranked.
        self._private: set[str] = set()
        self._clusters: dict[str, set[str]] = {}  # organisation id -> clusters it is an active member of
        self._memberships: dict[str, tuple[str, str]] = {}  # membership id -> (organisation, cluster)
        self._connections: dict[str, tuple[str, str, TieKind]] = {}
        self._participants: dict[str, str] = {}  # participant id -> organisation id
        self._meetings: dict[str, tuple[str, str]] = {}  # meeting id -> (requester, receiver) participant ids
        self._tie_sources: dict[tuple[str, str, TieKind], set[str]] = {}
        self.subscription.position = 0

    # -- following the log --------------------------------------------------------------------

    @property
    def position(self) -> int:
        return self.subscription.position

    def catch_up(self) -> int:
        """Handle everything in the log after the checkpoint; returns how many events were handled."""
        with self.lock:
            return self.subscription.catch_up()

    def rebuild(self) -> int:
        """Forget everything and replay the log from position 0 (what a restart does)."""
        with self.lock:
            self._reset()
            return self.subscription.catch_up()

    async def follow(self, poll_interval: float) -> None:
        """Catch up every `poll_interval` seconds until cancelled; a failure is logged and retried."""
        while True:
            try:
                handled = await anyio.to_thread.run_sync(self.catch_up)
            except Exception:
                log.exception("matchmaking.index.catch_up_failed", position=self.position)
                await anyio.sleep(max(1.0, poll_interval))
                continue
            if handled:
                log.debug("matchmaking.index.caught_up", handled=handled, position=self.position)
            await anyio.sleep(poll_interval)

    def _handle(self, conn: Connection, recorded: RecordedEvent) -> None:
        getattr(self, f"on_{recorded.event_type.partition('.')[2]}")(recorded.event)

    # -- organisations ---------------------------------------------------------------------------

    def _index(self, organisation_id: str) -> None:
        if organisation_id in self._archived or organisation_id not in self._fields:
            return
        fields = self._fields[organisation_id]
        self.index.upsert(Organisation(
            id=organisation_id,
            name=" ".join(filter(None, [fields["legal_name"], fields.get("short_name")])),
            kind=fields["kind"],
            roles=frozenset(fields.get("roles") or ()),
            stages=frozenset(fields.get("stages") or ()),
            competencies=frozenset(fields.get("competencies") or ()),
            keywords=tuple(fields.get("keywords") or ()),
            country=fields["country"],
            region=fields.get("nuts_region"),
            description=fields.get("description") or "",
            cluster_ids=frozenset(self._clusters.get(organisation_id, ())),
        ))
        (self._private.discard if self._clusters.get(organisation_id) else self._private.add)(organisation_id)

    def on_OrganisationRegistered(self, event: Any) -> None:
        self._fields[event.organisation_id] = event.model_dump(mode="json", exclude={"organisation_id"})
        self._index(event.organisation_id)

    def on_OrganisationUpdated(self, event: Any) -> None:
        if event.organisation_id in self._fields:
            self._fields[event.organisation_id].update(event.changes)
            self._index(event.organisation_id)

    def on_OrganisationArchived(self, event: Any) -> None:
        self._archived.add(event.organisation_id)
        self._private.discard(event.organisation_id)
        self.index.remove(event.organisation_id)

    def on_MembershipApplied(self, event: Any) -> None:
        self._memberships[event.membership_id] = (event.organisation_id, event.cluster_id)

    def _membership(self, membership_id: str, active: bool) -> None:
        found = self._memberships.get(membership_id)
        if found is None:
            return
        organisation_id, cluster_id = found
        clusters = self._clusters.setdefault(organisation_id, set())
        if (cluster_id in clusters) != active:
            (clusters.add if active else clusters.discard)(cluster_id)
            self._index(organisation_id)

    def on_MembershipActivated(self, event: Any) -> None:
        self._membership(event.membership_id, True)

    def on_MembershipSuspended(self, event: Any) -> None:
        self._membership(event.membership_id, False)

    def on_MembershipEnded(self, event: Any) -> None:
        self._membership(event.membership_id, False)

    # -- ties ------------------------------------------------------------------------------------

    def _tie(self, a: str, b: str, kind: TieKind, source: str) -> None:
        # Ties to organisations the index does not hold (archived, or unknown) would bring them
        # back as bare rows: leave them out.
        if a == b or a not in self.index or b not in self.index:
            return
        sources = self._tie_sources.setdefault((min(a, b), max(a, b), kind), set())
        if source not in sources:
            sources.add(source)
            self.index.add_tie(a, b, kind)

    def _untie(self, a: str, b: str, kind: TieKind, source: str) -> None:
        sources = self._tie_sources.get((min(a, b), max(a, b), kind), set())
        if source not in sources:
            return
        sources.discard(source)
        if sources:
            self.index.add_tie(a, b, kind, -1.0)
        else:
            self.index.remove_tie(a, b, kind)

    def on_ConnectionRecorded(self, event: Any) -> None:
        kind = TieKind.co_project if event.kind == "co_project" else TieKind.connection
        self._connections[event.connection_id] = (event.source_id, event.target_id, kind)
        self._tie(event.source_id, event.target_id, kind, event.connection_id)

    def on_ConnectionEnded(self, event: Any) -> None:
        found = self._connections.get(event.connection_id)
        if found is not None:
            self._untie(*found, event.connection_id)

    def on_InterestAccepted(self, event: Any) -> None:
        self._tie(event.owner_organisation_id, event.organisation_id, TieKind.accepted_interest, event.interest_id)

    def on_ParticipantRegistered(self, event: Any) -> None:
        self._participants[event.participant_id] = event.organisation_id

    on_ParticipantWaitlisted = on_ParticipantRegistered

    def on_MeetingRequested(self, event: Any) -> None:
        self._meetings[event.meeting_id] = (event.requester_id, event.receiver_id)

    def on_MeetingOutcomeRecorded(self, event: Any) -> None:
        meeting = self._meetings.get(event.meeting_id)
        if event.outcome not in FOLLOW_UP_OUTCOMES or meeting is None:
            return
        a, b = (self._participants.get(p) for p in meeting)
        if a and b:
            # Both sides may report the outcome: the meeting is the source, so it counts once.
            self._tie(a, b, TieKind.b2b_follow_up, f"meeting-{event.meeting_id}")

    # -- what queries read (callers hold the lock) -----------------------------------------------

    def profile(self, organisation_id: str) -> Profile | None:
        """A live organisation (registered, not archived), as the API names it."""
        fields = self._fields.get(organisation_id)
        if fields is None or organisation_id in self._archived:
            return None
        return Profile(organisation_id, fields.get("short_name") or fields["legal_name"], fields["kind"],
                       fields["country"], fields.get("company_size"))

    def hidden_from(self, principal: Principal) -> frozenset[str]:
        """Organisations `principal` may not see: the private ones, but for admins and their own."""
        if principal.is_admin:
            return frozenset()
        return frozenset(self._private - {principal.member_organisation})

    def organisation(self, organisation_id: str) -> Organisation | None:
        return self.index.organisation(organisation_id)

    def ties_of(self, organisation_id: str) -> dict[str, set[TieKind]]:
        """Organisation id -> the kinds of tie with it (for tests and explanations)."""
        found: dict[str, set[TieKind]] = {}
        for (a, b, kind), sources in self._tie_sources.items():
            if sources and organisation_id in (a, b):
                found.setdefault(b if a == organisation_id else a, set()).add(kind)
        return found
