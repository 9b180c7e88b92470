"""Matchmaking aggregates (they own the rules) and command handlers (load, decide, append).

Opportunities follow the EEN partnering database: draft -> submitted -> published (a cluster
manager reviews; a rejection sends it back to draft) -> expired at its deadline or 12 months after
publication -> renewed (published again) or closed; closing is possible from any state.

Time. Every handler takes `on`, today's date, from the caller (the API's clock, which tests
replace). An opportunity past its last open day is expired whether or not the event saying so is
in the log yet: reads show it expired at once (see `queries.effective`), `expire_due` is the
sweep that records the `OpportunityExpired` events, and a command on such an opportunity
records its expiry first, so the stream never skips the step.

Organisations, contacts and clusters named in a request are checked against the registry's
streams in the shared log, in the same transaction: the log is the contract between services,
the registry's tables are not.
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from difflib import SequenceMatcher
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection

from services.matchmaking import queries
from services.matchmaking.events import (
    STREAM_TYPES,
    DuplicateFlagged,
    FundingCallRegistered,
    FundingCallUpdated,
    InterestAccepted,
    InterestDeclined,
    InterestExpressed,
    OpportunityClosed,
    OpportunityDrafted,
    OpportunityExpired,
    OpportunityPublished,
    OpportunityRejected,
    OpportunityRenewed,
    OpportunitySubmitted,
    OpportunityUpdated,
)
from services.matchmaking.models import (
    CallCreate,
    CallPublic,
    CallUpdate,
    InterestCreate,
    InterestPublic,
    OpportunityCreate,
    OpportunityKind,
    OpportunityPublic,
    OpportunityUpdate,
    RenewRequest,
)
from shared import aggregates
from shared.errors import Conflict, InvalidInput
from shared.eventlog import DomainEvent, EventLog, Metadata
from shared.text import words

DUPLICATE_THRESHOLD = 0.75
OPEN_STATUSES = ("draft", "submitted", "published")


def new_id() -> str:
    return str(uuid.uuid4())


def invalid_input(exc: ValidationError, prefix: str = "body") -> InvalidInput:
    errors = [{"field": ".".join([prefix, *map(str, e["loc"])]), "message": e["msg"]} for e in exc.errors()]
    return InvalidInput("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors)


def add_year(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def last_open_day(start: date, deadline: date | None) -> date:
    """An opportunity is open through its deadline, and never more than 12 months from `start`."""
    cap = add_year(start)
    return min(deadline, cap) if deadline else cap


# --------------------------------------------------------------------------------------------
# Aggregates


@dataclass
class Aggregate(aggregates.Aggregate):
    stream_types: ClassVar[Mapping[str, str]] = STREAM_TYPES


def merged(schema: type[BaseModel], fields: dict[str, Any], changes: BaseModel) -> dict[str, Any]:
    """The fields `changes` sets to new values; the merged record is re-validated as a whole."""
    sent = changes.model_dump(mode="json", include=changes.model_fields_set)
    try:
        record = schema.model_validate({**fields, **sent}).model_dump(mode="json")
    except ValidationError as exc:
        raise invalid_input(exc) from None
    return {name: record[name] for name in sent if record[name] != fields.get(name)}


@dataclass
class Opportunity(Aggregate):
    kind, label = "opportunity", "opportunity"
    fields: dict[str, Any] = field(default_factory=dict)  # as OpportunityCreate dumps them (JSON)
    status: str = ""
    expires_on: date | None = None
    flagged: set[str] = field(default_factory=set)

    @property
    def organisation_id(self) -> str:
        return self.fields["organisation_id"]

    @property
    def deadline(self) -> date | None:
        value = self.fields.get("deadline")
        return date.fromisoformat(value) if value else None

    def due(self, on: date) -> bool:
        """Published, but past its last open day: expired, recorded or not."""
        return self.status == "published" and self.expires_on is not None and self.expires_on < on

    def _expect(self, action: str, *allowed: str) -> None:
        if self.status not in allowed:
            raise Conflict(f"cannot {action} an opportunity that is {self.status}", current_status=self.status)

    def _flags(self, duplicates: list[tuple[str, float]]) -> list[DomainEvent]:
        return [DuplicateFlagged(opportunity_id=self.id, duplicate_of=other, similarity=round(similarity, 3))
                for other, similarity in duplicates if other not in self.flagged]

    def draft(self, data: OpportunityCreate, *, duplicates: list[tuple[str, float]]) -> list[DomainEvent]:
        self.new()
        return [OpportunityDrafted(opportunity_id=self.id, **data.model_dump(mode="json")), *self._flags(duplicates)]

    def update(self, changes: dict[str, Any], *, duplicates: list[tuple[str, float]]) -> list[DomainEvent]:
        self._expect("change", "draft")
        return [OpportunityUpdated(opportunity_id=self.id, changes=changes), *self._flags(duplicates)] if changes else []

    def submit(self, *, on: date, duplicates: list[tuple[str, float]]) -> list[DomainEvent]:
        self._expect("submit", "draft")
        if self.deadline is not None and self.deadline < on:
            raise Conflict(f"its deadline {self.deadline} has passed: set a new one first",
                           deadline=str(self.deadline))
        return [OpportunitySubmitted(opportunity_id=self.id), *self._flags(duplicates)]

    def reject(self, reviewer: str, reason: str) -> list[DomainEvent]:
        self._expect("reject", "submitted")
        return [OpportunityRejected(opportunity_id=self.id, reviewer=reviewer, reason=reason)]

    def publish(self, reviewer: str, *, on: date) -> list[DomainEvent]:
        self._expect("publish", "submitted")
        if self.deadline is not None and self.deadline < on:
            raise Conflict(f"its deadline {self.deadline} has passed: reject it, so that the owner sets a new one",
                           deadline=str(self.deadline))
        return [OpportunityPublished(opportunity_id=self.id, reviewer=reviewer, on=on,
                                     expires_on=last_open_day(on, self.deadline))]

    def expiry(self, on: date) -> list[DomainEvent]:
        """The expiry event, if the opportunity is past its last open day and not yet recorded so."""
        if not self.due(on):
            return []
        assert self.expires_on is not None
        reason = "deadline" if self.deadline is not None and self.deadline <= self.expires_on else "twelve_months"
        event = OpportunityExpired(opportunity_id=self.id, on=self.expires_on + timedelta(days=1), reason=reason)
        self.on_OpportunityExpired(event)
        return [event]

    def renew(self, data: RenewRequest, *, on: date) -> list[DomainEvent]:
        self._expect("renew", "published", "expired")
        deadline = data.deadline
        if deadline is not None and deadline < on:
            raise InvalidInput.field("body.deadline", "must not be in the past")
        return [OpportunityRenewed(opportunity_id=self.id, on=on, deadline=deadline,
                                   expires_on=last_open_day(on, deadline))]

    def close(self, reason: str | None, *, on: date) -> list[DomainEvent]:
        self._expect("close", *OPEN_STATUSES, "expired")
        return [OpportunityClosed(opportunity_id=self.id, on=on, reason=reason)]

    def on_OpportunityDrafted(self, event: OpportunityDrafted) -> None:
        self.fields = event.model_dump(mode="json", exclude={"opportunity_id"})
        self.status = "draft"

    def on_OpportunityUpdated(self, event: OpportunityUpdated) -> None:
        self.fields.update(event.changes)

    def on_DuplicateFlagged(self, event: DuplicateFlagged) -> None:
        self.flagged.add(event.duplicate_of)

    def on_OpportunitySubmitted(self, _: OpportunitySubmitted) -> None:
        self.status = "submitted"

    def on_OpportunityRejected(self, _: OpportunityRejected) -> None:
        self.status = "draft"

    def on_OpportunityPublished(self, event: OpportunityPublished) -> None:
        self.status, self.expires_on = "published", event.expires_on

    def on_OpportunityExpired(self, _: OpportunityExpired) -> None:
        self.status = "expired"

    def on_OpportunityRenewed(self, event: OpportunityRenewed) -> None:
        self.status, self.expires_on = "published", event.expires_on
        self.fields["deadline"] = event.deadline.isoformat() if event.deadline else None

    def on_OpportunityClosed(self, _: OpportunityClosed) -> None:
        self.status = "closed"


@dataclass
class Interest(Aggregate):
    kind, label = "interest", "expression of interest"
    status: str = ""
    opportunity_id: str = ""
    organisation_id: str = ""
    contact_id: str = ""

    def express(self, opportunity: Opportunity, data: InterestCreate, *, on: date,
                already: str | None) -> list[DomainEvent]:
        self.new()
        if opportunity.status != "published" or opportunity.due(on):
            status = "expired" if opportunity.due(on) else opportunity.status
            raise Conflict(f"opportunity {opportunity.id} is {status}: only published opportunities take interest",
                           current_status=status)
        if data.organisation_id == opportunity.organisation_id:
            raise InvalidInput.field("body.organisation_id", "an organisation cannot answer its own opportunity")
        if already:
            raise Conflict("this organisation has already expressed interest in the opportunity", interest_id=already)
        return [InterestExpressed(interest_id=self.id, opportunity_id=opportunity.id,
                                  **data.model_dump(mode="json"))]

    def _expect_pending(self, action: str) -> None:
        if self.status != "pending":
            raise Conflict(f"cannot {action} an expression of interest that is {self.status}",
                           current_status=self.status)

    def accept(self, opportunity: Opportunity) -> list[DomainEvent]:
        self._expect_pending("accept")
        return [InterestAccepted(interest_id=self.id, opportunity_id=self.opportunity_id,
                                 owner_organisation_id=opportunity.organisation_id,
                                 owner_contact_id=opportunity.fields["contact_id"],
                                 organisation_id=self.organisation_id, contact_id=self.contact_id)]

    def decline(self, reason: str | None) -> list[DomainEvent]:
        self._expect_pending("decline")
        return [InterestDeclined(interest_id=self.id, opportunity_id=self.opportunity_id, reason=reason)]

    def on_InterestExpressed(self, event: InterestExpressed) -> None:
        self.status, self.opportunity_id = "pending", event.opportunity_id
        self.organisation_id, self.contact_id = event.organisation_id, event.contact_id

    def on_InterestAccepted(self, _: InterestAccepted) -> None:
        self.status = "accepted"

    def on_InterestDeclined(self, _: InterestDeclined) -> None:
        self.status = "declined"


@dataclass
class FundingCall(Aggregate):
    kind, label = "call", "funding call"
    fields: dict[str, Any] = field(default_factory=dict)

    def register(self, data: CallCreate) -> list[DomainEvent]:
        self.new()
        check_call(data.model_dump(mode="json"))
        return [FundingCallRegistered(**data.model_dump(mode="json"))]

    def update(self, changes: CallUpdate) -> list[DomainEvent]:
        diff = merged(CallCreate, {"call_id": self.id, **self.fields}, changes)
        check_call({**self.fields, **diff})
        return [FundingCallUpdated(call_id=self.id, changes=diff)] if diff else []

    def on_FundingCallRegistered(self, event: FundingCallRegistered) -> None:
        self.fields = event.model_dump(mode="json", exclude={"call_id"})

    def on_FundingCallUpdated(self, event: FundingCallUpdated) -> None:
        self.fields.update(event.changes)


def check_call(fields: dict[str, Any]) -> None:
    """The rules between a call's fields, on the whole record (JSON values)."""
    if fields.get("opens_on") and fields["opens_on"] > fields["deadline"]:
        raise InvalidInput.field("body.opens_on", "must not be after the deadline")
    if fields["min_countries"] > fields["min_partners"]:
        raise InvalidInput.field("body.min_countries", "cannot exceed min_partners (each partner has one country)")
    if fields["eligible_countries"] and fields["min_countries"] > len(fields["eligible_countries"]):
        raise InvalidInput.field("body.min_countries", "more than the eligible countries")


# --------------------------------------------------------------------------------------------
# What requests name: registry records (through the log) and funding calls


def _stream_types(conn: Connection, log: EventLog, stream: str) -> list[tuple[str, dict[str, Any]]]:
    return [(recorded.event_type, recorded.data) for recorded in log.read_stream(conn, stream)]


def check_organisation(conn: Connection, log: EventLog, organisation_id: str, field_name: str) -> None:
    events = _stream_types(conn, log, f"organisation-{organisation_id}")
    if not events:
        raise InvalidInput.field(field_name, f"no organisation {organisation_id}")
    if any(event_type == "registry.OrganisationArchived" for event_type, _ in events):
        raise InvalidInput.field(field_name, f"organisation {organisation_id} is archived")


def check_contact(conn: Connection, log: EventLog, contact_id: str, organisation_id: str, field_name: str) -> None:
    events = _stream_types(conn, log, f"person-{contact_id}")
    added = events[0][1] if events and events[0][0] == "registry.ContactAdded" else None
    removed = any(event_type == "registry.ContactRemoved" for event_type, _ in events)
    if added is None or removed or added.get("organisation_id") != organisation_id:
        raise InvalidInput.field(field_name, f"no contact {contact_id} at organisation {organisation_id}")


def check_cluster(conn: Connection, log: EventLog, cluster_id: str, field_name: str) -> None:
    events = _stream_types(conn, log, f"cluster-{cluster_id}")
    if not events or any(event_type == "registry.ClusterArchived" for event_type, _ in events):
        raise InvalidInput.field(field_name, f"no cluster {cluster_id}")


def _check_opportunity(conn: Connection, log: EventLog, fields: dict[str, Any], *, on: date,
                       changed: set[str] | None = None) -> None:
    """The rules on the whole record; references are checked when new (`changed`: all when None)."""
    def new(name: str) -> bool:
        return fields.get(name) is not None and (changed is None or name in changed)

    if fields["kind"] == OpportunityKind.rd_partner_search and not fields.get("call_id"):
        raise InvalidInput.field("body.call_id", "an R&D partner search names its funding call")
    if new("deadline") and date.fromisoformat(fields["deadline"]) < on:
        raise InvalidInput.field("body.deadline", "must not be in the past")
    if new("call_id") and not FundingCall.load(conn, log, fields["call_id"]).exists:
        raise InvalidInput.field("body.call_id", f"no funding call {fields['call_id']} in the catalogue")
    if changed is None:
        check_organisation(conn, log, fields["organisation_id"], "body.organisation_id")
    if new("contact_id"):
        check_contact(conn, log, fields["contact_id"], fields["organisation_id"], "body.contact_id")
    if new("cluster_id"):
        check_cluster(conn, log, fields["cluster_id"], "body.cluster_id")


def _normalised(text: str) -> str:
    return " ".join(words(text))


def similarity(a: dict[str, Any], b: dict[str, Any]) -> float:
    """How alike two opportunities read: the closer of their titles (as spelled, accents and case
    folded) and the overlap of the content words of title and summary (Jaccard)."""
    title = SequenceMatcher(None, _normalised(a["title"]), _normalised(b["title"])).ratio()
    content_a = {w for w in words(f"{a['title']} {a['summary']}") if len(w) > 2}
    content_b = {w for w in words(f"{b['title']} {b['summary']}") if len(w) > 2}
    overlap = len(content_a & content_b) / len(content_a | content_b) if content_a | content_b else 0.0
    return max(title, overlap)


def _duplicates(conn: Connection, opportunity_id: str, fields: dict[str, Any], on: date) -> list[tuple[str, float]]:
    """Open opportunities of the same organisation and kind that read like this one."""
    found = []
    for other in queries.open_opportunities_of(conn, fields["organisation_id"], fields["kind"], on=on):
        if other["id"] != opportunity_id:
            score = similarity(fields, other)
            if score >= DUPLICATE_THRESHOLD:
                found.append((other["id"], score))
    return found


# --------------------------------------------------------------------------------------------
# Opportunities


def _opportunity(conn: Connection, opportunity_id: str, on: date) -> OpportunityPublic:
    found = queries.get_opportunity(conn, opportunity_id, on=on)
    assert found is not None, "the inline projection must hold what was just appended"
    return found


def draft_opportunity(conn: Connection, log: EventLog, data: OpportunityCreate, metadata: Metadata, *,
                      on: date, opportunity_id: str | None = None) -> OpportunityPublic:
    fields = data.model_dump(mode="json")
    _check_opportunity(conn, log, fields, on=on)
    opportunity = Opportunity.load(conn, log, opportunity_id or new_id())
    duplicates = _duplicates(conn, opportunity.id, fields, on)
    opportunity.save(conn, log, opportunity.draft(data, duplicates=duplicates), metadata)
    return _opportunity(conn, opportunity.id, on)


def update_opportunity(conn: Connection, log: EventLog, opportunity_id: str, expected_version: int,
                       changes: OpportunityUpdate, metadata: Metadata, *, on: date) -> OpportunityPublic:
    opportunity = Opportunity.load(conn, log, opportunity_id).found(expected_version)
    diff = merged(OpportunityCreate, opportunity.fields, changes)
    fields = {**opportunity.fields, **diff}
    _check_opportunity(conn, log, fields, on=on, changed=set(diff))
    duplicates = _duplicates(conn, opportunity_id, fields, on) if {"title", "summary", "kind"} & diff.keys() else []
    opportunity.save(conn, log, opportunity.update(diff, duplicates=duplicates), metadata)
    return _opportunity(conn, opportunity_id, on)


def submit_opportunity(conn: Connection, log: EventLog, opportunity_id: str, metadata: Metadata, *, on: date,
                       expected_version: int | None = None) -> OpportunityPublic:
    opportunity = Opportunity.load(conn, log, opportunity_id).found(expected_version)
    duplicates = _duplicates(conn, opportunity_id, opportunity.fields, on)
    opportunity.save(conn, log, opportunity.submit(on=on, duplicates=duplicates), metadata)
    return _opportunity(conn, opportunity_id, on)


def _reviewer(metadata: Metadata) -> str:
    # The reviewing cluster manager is the authenticated caller (the route's policy asks for one).
    if not metadata.actor or metadata.actor == "anonymous":
        raise InvalidInput.field("header.authorization", "the reviewing cluster manager must be authenticated")
    return metadata.actor


def publish_opportunity(conn: Connection, log: EventLog, opportunity_id: str, metadata: Metadata, *, on: date,
                        expected_version: int | None = None) -> OpportunityPublic:
    reviewer = _reviewer(metadata)
    opportunity = Opportunity.load(conn, log, opportunity_id).found(expected_version)
    opportunity.save(conn, log, opportunity.publish(reviewer, on=on), metadata)
    return _opportunity(conn, opportunity_id, on)


def reject_opportunity(conn: Connection, log: EventLog, opportunity_id: str, reason: str, metadata: Metadata, *,
                       on: date, expected_version: int | None = None) -> OpportunityPublic:
    reviewer = _reviewer(metadata)
    opportunity = Opportunity.load(conn, log, opportunity_id).found(expected_version)
    opportunity.save(conn, log, opportunity.reject(reviewer, reason), metadata)
    return _opportunity(conn, opportunity_id, on)


def renew_opportunity(conn: Connection, log: EventLog, opportunity_id: str, data: RenewRequest, metadata: Metadata,
                      *, on: date, expected_version: int | None = None) -> OpportunityPublic:
    opportunity = Opportunity.load(conn, log, opportunity_id).found(expected_version)
    expired = opportunity.expiry(on)
    opportunity.save(conn, log, [*expired, *opportunity.renew(data, on=on)], metadata)
    return _opportunity(conn, opportunity_id, on)


def close_opportunity(conn: Connection, log: EventLog, opportunity_id: str, reason: str | None, metadata: Metadata,
                      *, on: date, expected_version: int | None = None) -> OpportunityPublic:
    opportunity = Opportunity.load(conn, log, opportunity_id).found(expected_version)
    expired = opportunity.expiry(on)
    opportunity.save(conn, log, [*expired, *opportunity.close(reason, on=on)], metadata)
    return _opportunity(conn, opportunity_id, on)


def expire_due(conn: Connection, log: EventLog, metadata: Metadata, *, on: date) -> list[str]:
    """The sweep: record `OpportunityExpired` for every published opportunity past its last open day."""
    expired = []
    for opportunity_id in queries.due_opportunity_ids(conn, on=on):
        opportunity = Opportunity.load(conn, log, opportunity_id)
        events = opportunity.expiry(on)
        opportunity.save(conn, log, events, metadata)
        if events:
            expired.append(opportunity_id)
    return expired


# --------------------------------------------------------------------------------------------
# Expressions of interest


def _interest(conn: Connection, interest_id: str) -> InterestPublic:
    found = queries.get_interest(conn, interest_id)
    assert found is not None, "the inline projection must hold what was just appended"
    return found


def express_interest(conn: Connection, log: EventLog, opportunity_id: str, data: InterestCreate, metadata: Metadata,
                     *, on: date, interest_id: str | None = None) -> InterestPublic:
    opportunity = Opportunity.load(conn, log, opportunity_id).found()
    check_organisation(conn, log, data.organisation_id, "body.organisation_id")
    check_contact(conn, log, data.contact_id, data.organisation_id, "body.contact_id")
    interest = Interest.load(conn, log, interest_id or new_id())
    already = queries.open_interest_of(conn, opportunity_id, data.organisation_id)
    interest.save(conn, log, interest.express(opportunity, data, on=on, already=already), metadata)
    return _interest(conn, interest.id)


def accept_interest(conn: Connection, log: EventLog, interest_id: str, metadata: Metadata, *,
                    expected_version: int | None = None) -> InterestPublic:
    interest = Interest.load(conn, log, interest_id).found(expected_version)
    opportunity = Opportunity.load(conn, log, interest.opportunity_id)
    interest.save(conn, log, interest.accept(opportunity), metadata)
    return _interest(conn, interest_id)


def decline_interest(conn: Connection, log: EventLog, interest_id: str, reason: str | None, metadata: Metadata, *,
                     expected_version: int | None = None) -> InterestPublic:
    interest = Interest.load(conn, log, interest_id).found(expected_version)
    interest.save(conn, log, interest.decline(reason), metadata)
    return _interest(conn, interest_id)


# --------------------------------------------------------------------------------------------
# Funding calls


def _call(conn: Connection, call_id: str) -> CallPublic:
    found = queries.get_call(conn, call_id)
    assert found is not None, "the inline projection must hold what was just appended"
    return found


def register_call(conn: Connection, log: EventLog, data: CallCreate, metadata: Metadata) -> CallPublic:
    call = FundingCall.load(conn, log, data.call_id)
    call.save(conn, log, call.register(data), metadata)
    return _call(conn, call.id)


def update_call(conn: Connection, log: EventLog, call_id: str, expected_version: int, changes: CallUpdate,
                metadata: Metadata) -> CallPublic:
    call = FundingCall.load(conn, log, call_id).found(expected_version)
    call.save(conn, log, call.update(changes), metadata)
    return _call(conn, call_id)
