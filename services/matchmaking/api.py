"""The matchmaking HTTP API under /v1: parse, authorise, call the domain in one write transaction (or
the index on a worker thread), render.

Writes return the new state with its stream version as the ETag. Changes to a record (PATCH)
need `If-Match`; state transitions (submit, publish, accept…) check it when given. Each route's
policy says which roles may call it; `access.py` decides which opportunities and expressions of
interest are the caller's. The reviewer of an opportunity is the authenticated cluster manager.
"""
from __future__ import annotations

from datetime import date
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import Connection

from services.matchmaking import access, domain, partners, queries
from services.matchmaking.events import stream_id
from services.matchmaking.events_client import EventsClient
from services.matchmaking.feed import IndexFeed
from services.matchmaking.models import (
    CallCreate,
    CallId,
    CallPublic,
    CallUpdate,
    CloseRequest,
    ConsortiumProposal,
    DeclineRequest,
    InterestCreate,
    InterestPublic,
    InterestStatus,
    MeetingSuggestions,
    OpportunityCreate,
    OpportunityKind,
    OpportunityPublic,
    OpportunityStatus,
    OpportunityUpdate,
    Page,
    ProposalCreate,
    Programme,
    Recommendations,
    RejectRequest,
    RenewRequest,
)
from shared.auth import CLUSTER_MANAGER, MEMBER, Anyone, Principal, allow

from shared.errors import Forbidden, InvalidInput, NotFound

from shared.http import Db, IfMatch, Log, OptionalIfMatch, RequestMetadata, etag, problems

T = TypeVar("T")

router = APIRouter(prefix="/v1")

Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page")]
IdFilter = Annotated[str | None, Query(max_length=36)]
# Ids that go into the events service's URLs: plain tokens only.
RemoteId = Annotated[str, Path(pattern=r"^[A-Za-z0-9\-]{1,36}$")]

READ_ERRORS = problems(401, 403, 404)
WRITE_ERRORS = problems(401, 403, 404, 409, 412, 422, 428)

# Policies: who may call a route at all (platform admins always may).
Admin = Annotated[Principal, allow()]
Manager = Annotated[Principal, allow(CLUSTER_MANAGER)]
Member = Annotated[Principal, allow(MEMBER)]
ManagerOrMember = Annotated[Principal, allow(CLUSTER_MANAGER, MEMBER)]


# Dependencies are `async def`: FastAPI would run a plain `def` in a worker thread, per request.


async def _feed(request: Request) -> IndexFeed:
    return request.app.state.feed


async def _events(request: Request) -> EventsClient:
    return request.app.state.events


async def _today(request: Request) -> date:
    """Today, from the app's clock (tests set `app.state.clock` to travel in time)."""
    return request.app.state.clock()


async def _limiter(request: Request) -> anyio.CapacityLimiter:
    return request.app.state.cpu_limiter


Feed = Annotated[IndexFeed, Depends(_feed)]
Events = Annotated[EventsClient, Depends(_events)]
Today = Annotated[date, Depends(_today)]
Limiter = Annotated[anyio.CapacityLimiter, Depends(_limiter)]


def _found(value: T | None, label: str, entity_id: str) -> T:
    if value is None:
        raise NotFound(f"{label} {entity_id} not found")
    return value


def _tagged(response: Response, resource: T) -> T:
    response.headers["ETag"] = etag(resource.version)  # type: ignore[attr-defined]
    return resource


def _checked(check: Any, command: Any) -> Any:
    """`command` after `check` (the caller's rights), in the same transaction."""
    def run(conn: Connection) -> Any:
        check(conn)
        return command(conn)
    return run


# --------------------------------------------------------------------------------------------
# Opportunities


@router.post("/opportunities", status_code=201, responses=problems(409, 422), tags=["opportunities"])
async def draft_opportunity(body: OpportunityCreate, response: Response, db: Db, log: Log, today: Today,
                            principal: ManagerOrMember, metadata: RequestMetadata) -> OpportunityPublic:
    """Draft a cooperation opportunity (in the caller's cluster unless an admin says otherwise); `duplicate_of`
    flags open ones of the organisation that read alike. Members post for their own organisation."""
    if not principal.is_admin and principal.managed_cluster is None and not principal.represents(
            body.organisation_id):
        raise Forbidden("body.organisation_id: members post for their own organisation")
    cluster_id = access.posting_cluster(principal, body.cluster_id, "body.cluster_id")
    if cluster_id != body.cluster_id:
        body = body.model_copy(update={"cluster_id": cluster_id})
    opportunity = await db.write(lambda conn: domain.draft_opportunity(conn, log, body, metadata, on=today))
    response.headers["Location"] = f"/v1/opportunities/{opportunity.id}"
    return _tagged(response, opportunity)


@router.get("/opportunities", responses=problems(422), tags=["opportunities"])
async def list_opportunities(db: Db, today: Today, principal: Anyone, status: OpportunityStatus | None = None,
                             kind: OpportunityKind | None = None, organisation_id: IdFilter = None,
                             call_id: CallId | None = None, cursor: Cursor = None,
                             limit: Limit = 50) -> Page[OpportunityPublic]:
    """Opportunities the caller may see, oldest first; past their last open day they read as expired."""
    return await db.read(lambda conn: queries.list_opportunities(
        conn, on=today, status=status, kind=kind, organisation_id=organisation_id, call_id=call_id, cursor=cursor,
        limit=limit, visible=access.opportunity_visible(principal, today)))


@router.get("/opportunities/{opportunity_id}", responses=READ_ERRORS, tags=["opportunities"])
async def get_opportunity(opportunity_id: str, response: Response, db: Db, today: Today,
                          principal: Anyone) -> OpportunityPublic:
    """One opportunity; the ETag is its version."""
    found = await db.read(lambda conn: access.opportunity(conn, principal, opportunity_id, on=today))
    return _tagged(response, found)


@router.patch("/opportunities/{opportunity_id}", responses=WRITE_ERRORS, tags=["opportunities"])
async def update_opportunity(opportunity_id: str, body: OpportunityUpdate, principal: ManagerOrMember, version: IfMatch,
                             response: Response, db: Db, log: Log, today: Today,
                             metadata: RequestMetadata) -> OpportunityPublic:
    """Change a draft's fields (null clears an optional one)."""
    own_cluster = principal.managed_cluster or principal.member_cluster
    if "cluster_id" in body.model_fields_set and not principal.is_admin and body.cluster_id != own_cluster:
        raise Forbidden(f"body.cluster_id: post in your own cluster {own_cluster}, not {body.cluster_id}")
    opportunity = await db.write(_checked(
        lambda conn: access.opportunity(conn, principal, opportunity_id, on=today, change=True),
        lambda conn: domain.update_opportunity(conn, log, opportunity_id, version, body, metadata, on=today)))
    return _tagged(response, opportunity)


@router.post("/opportunities/{opportunity_id}/submit", responses=WRITE_ERRORS, tags=["opportunities"])
async def submit_opportunity(opportunity_id: str, response: Response, db: Db, log: Log, today: Today,
                             principal: ManagerOrMember, metadata: RequestMetadata,
                             version: OptionalIfMatch) -> OpportunityPublic:
    """Submit a draft for review by a cluster manager."""
    return _tagged(response, await db.write(_checked(
        lambda conn: access.opportunity(conn, principal, opportunity_id, on=today, change=True),
        lambda conn: domain.submit_opportunity(conn, log, opportunity_id, metadata, on=today,
                                               expected_version=version))))


@router.post("/opportunities/{opportunity_id}/publish", responses=WRITE_ERRORS, tags=["opportunities"])
async def publish_opportunity(opportunity_id: str, response: Response, db: Db, log: Log, today: Today,
                              principal: Manager, metadata: RequestMetadata,
                              version: OptionalIfMatch) -> OpportunityPublic:
    """Publish a submitted opportunity (the caller, a manager of its cluster, is the reviewer); it is open
    through its deadline, 12 months at most."""
    return _tagged(response, await db.write(_checked(
        lambda conn: access.opportunity(conn, principal, opportunity_id, on=today, review=True),
        lambda conn: domain.publish_opportunity(conn, log, opportunity_id, metadata, on=today,
                                                expected_version=version))))


@router.post("/opportunities/{opportunity_id}/reject", responses=WRITE_ERRORS, tags=["opportunities"])
async def reject_opportunity(opportunity_id: str, body: RejectRequest, response: Response, db: Db, log: Log,
                             today: Today, principal: Manager, metadata: RequestMetadata,
                             version: OptionalIfMatch) -> OpportunityPublic:
    """Send a submitted opportunity back to draft, saying why (the caller is the reviewer)."""
    return _tagged(response, await db.write(_checked(
        lambda conn: access.opportunity(conn, principal, opportunity_id, on=today, review=True),
        lambda conn: domain.reject_opportunity(conn, log, opportunity_id, body.reason, metadata, on=today,
                                               expected_version=version))))


@router.post("/opportunities/{opportunity_id}/renew", responses=WRITE_ERRORS, tags=["opportunities"])
async def renew_opportunity(opportunity_id: str, response: Response, db: Db, log: Log, today: Today,
                            principal: ManagerOrMember, metadata: RequestMetadata, version: OptionalIfMatch,
                            body: RenewRequest | None = None) -> OpportunityPublic:
    """Renew a published or expired opportunity: open again through the new deadline, 12 months at most."""
    return _tagged(response, await db.write(_checked(
        lambda conn: access.opportunity(conn, principal, opportunity_id, on=today, change=True),
        lambda conn: domain.renew_opportunity(conn, log, opportunity_id, body or RenewRequest(), metadata, on=today,
                                              expected_version=version))))


@router.post("/opportunities/{opportunity_id}/close", responses=WRITE_ERRORS, tags=["opportunities"])
async def close_opportunity(opportunity_id: str, response: Response, db: Db, log: Log, today: Today,
                            principal: ManagerOrMember, metadata: RequestMetadata, version: OptionalIfMatch,
                            body: CloseRequest | None = None) -> OpportunityPublic:
    """Close an opportunity for good."""
    reason = body.reason if body else None
    return _tagged(response, await db.write(_checked(
        lambda conn: access.opportunity(conn, principal, opportunity_id, on=today, change=True),
        lambda conn: domain.close_opportunity(conn, log, opportunity_id, reason, metadata, on=today,
                                              expected_version=version))))


@router.get("/opportunities/{opportunity_id}/history", responses=READ_ERRORS, tags=["opportunities"])
async def opportunity_history(opportunity_id: str, db: Db, log: Log, today: Today,
                              principal: ManagerOrMember) -> dict[str, Any]:
    """The opportunity's events, oldest first (for its owner and its cluster's managers)."""

    def read(conn: Connection) -> list[Any]:
        access.opportunity(conn, principal, opportunity_id, on=today, change=True)
        return log.read_stream(conn, stream_id("opportunity", opportunity_id))

    events = await db.read(read)
    return {"data": [event.public() for event in events]}


# --------------------------------------------------------------------------------------------
# Expressions of interest


@router.post("/opportunities/{opportunity_id}/interests", status_code=201, responses=WRITE_ERRORS,
             tags=["interests"])
async def express_interest(opportunity_id: str, body: InterestCreate, response: Response, db: Db, log: Log,
                           today: Today, principal: Member, metadata: RequestMetadata) -> InterestPublic:
    """Express interest in a published opportunity: a message and what the organisation brings (a member,
    for their own organisation)."""
    if not principal.is_admin and not principal.represents(body.organisation_id):
        raise Forbidden("body.organisation_id: members express interest for their own organisation")
    interest = await db.write(_checked(
        lambda conn: access.opportunity(conn, principal, opportunity_id, on=today),
        lambda conn: domain.express_interest(conn, log, opportunity_id, body, metadata, on=today)))
    response.headers["Location"] = f"/v1/interests/{interest.id}"
    return _tagged(response, interest)


@router.get("/opportunities/{opportunity_id}/interests", responses=READ_ERRORS, tags=["interests"])
async def list_interests(opportunity_id: str, db: Db, today: Today, principal: ManagerOrMember,
                         status: InterestStatus | None = None, cursor: Cursor = None,
                         limit: Limit = 50) -> Page[InterestPublic]:
    """The expressions of interest an opportunity received, oldest first (for its owner and its cluster's
    managers)."""

    def read(conn: Connection) -> Page[InterestPublic]:
        access.opportunity(conn, principal, opportunity_id, on=today, change=True)
        return queries.list_interests(conn, opportunity_id, status=status, cursor=cursor, limit=limit)

    return await db.read(read)


@router.get("/interests/{interest_id}", responses=READ_ERRORS, tags=["interests"])
async def get_interest(interest_id: str, response: Response, db: Db, today: Today,
                       principal: ManagerOrMember) -> InterestPublic:
    """One expression of interest, for either side; `contacts` once accepted."""
    found = await db.read(lambda conn: access.interest(conn, principal, interest_id, on=today))
    return _tagged(response, found)


@router.post("/interests/{interest_id}/accept", responses=WRITE_ERRORS, tags=["interests"])
async def accept_interest(interest_id: str, response: Response, db: Db, log: Log, today: Today,
                          principal: ManagerOrMember, metadata: RequestMetadata,
                          version: OptionalIfMatch) -> InterestPublic:
    """The owner accepts: the answer carries both sides' organisation and contact."""
    interest = await db.write(_checked(
        lambda conn: access.interest(conn, principal, interest_id, on=today, decide=True),
        lambda conn: domain.accept_interest(conn, log, interest_id, metadata, expected_version=version)))
    return _tagged(response, interest)


@router.post("/interests/{interest_id}/decline", responses=WRITE_ERRORS, tags=["interests"])
async def decline_interest(interest_id: str, response: Response, db: Db, log: Log, today: Today,
                           principal: ManagerOrMember, metadata: RequestMetadata, version: OptionalIfMatch,
                           body: DeclineRequest | None = None) -> InterestPublic:
    """The owner declines; no contact is exchanged."""
    reason = body.reason if body else None
    interest = await db.write(_checked(
        lambda conn: access.interest(conn, principal, interest_id, on=today, decide=True),
        lambda conn: domain.decline_interest(conn, log, interest_id, reason, metadata, expected_version=version)))
    return _tagged(response, interest)


# --------------------------------------------------------------------------------------------
# Funding calls


@router.post("/calls", status_code=201, responses=problems(409, 422), tags=["calls"])
async def register_call(body: CallCreate, response: Response, db: Db, log: Log, _: Admin,
                        metadata: RequestMetadata) -> CallPublic:
    """Add a funding call to the catalogue, under its programme's call id."""
    call = await db.write(lambda conn: domain.register_call(conn, log, body, metadata))
    response.headers["Location"] = f"/v1/calls/{call.id}"
    return _tagged(response, call)


@router.get("/calls", responses=problems(422), tags=["calls"])
async def list_calls(db: Db, _: Anyone, programme: Programme | None = None,
                     open_on: Annotated[date | None, Query(description="Only calls open on this day")] = None,
                     cursor: Cursor = None, limit: Limit = 50) -> Page[CallPublic]:
    """Funding calls by deadline."""
    return await db.read(lambda conn: queries.list_calls(conn, programme=programme, open_on=open_on, cursor=cursor,
                                                         limit=limit))


@router.get("/calls/{call_id}", responses=READ_ERRORS, tags=["calls"])
async def get_call(call_id: str, response: Response, db: Db, _: Anyone) -> CallPublic:
    """One funding call; the ETag is its version."""
    return _tagged(response, _found(await db.read(lambda conn: queries.get_call(conn, call_id)), "funding call",
                                    call_id))


@router.patch("/calls/{call_id}", responses=WRITE_ERRORS, tags=["calls"])
async def update_call(call_id: str, body: CallUpdate, _: Admin, version: IfMatch, response: Response, db: Db, log: Log,
                      metadata: RequestMetadata) -> CallPublic:
    """Change the given fields of a call (null clears an optional one)."""
    return _tagged(response, await db.write(lambda conn: domain.update_call(conn, log, call_id, version, body,
                                                                            metadata)))


# --------------------------------------------------------------------------------------------
# Recommendations and consortia


@router.get("/recommendations/partners", responses=problems(404, 422), tags=["recommendations"])
async def recommend_partners(
    db: Db, feed: Feed, today: Today, limiter: Limiter, principal: ManagerOrMember,
    opportunity: Annotated[str | None, Query(max_length=36, description="Partners for this opportunity")] = None,
    organisation: Annotated[str | None, Query(max_length=36, description="Partners for this organisation")] = None,
    call: Annotated[CallId | None, Query(description="Partners for this funding call")] = None,
    text: Annotated[str | None, Query(max_length=2000, description="Free text (alone, or added to the above)")] = None,
    lead: Annotated[str | None, Query(max_length=36, description="The lead organisation")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Recommendations:
    """Ranked organisations with a score and the reasons behind it, for an opportunity, an organisation,
    a funding call or free text (one of the first three at most, text may go with any)."""
    subjects = [name for name, value in (("opportunity", opportunity), ("organisation", organisation),
                                         ("call", call)) if value is not None]
    if len(subjects) > 1:
        raise InvalidInput.field(f"query.{subjects[1]}", f"give one of opportunity, organisation, call "
                                                         f"(not {' and '.join(subjects)})")
    if not subjects and not (text and text.strip()):
        raise InvalidInput.field("query.text", "give an opportunity, an organisation, a call or some text")
    if organisation is not None and lead is not None and lead != organisation:
        raise InvalidInput.field("query.lead", "the organisation is the lead: leave lead out")
    lead_parameter = "organisation" if organisation is not None else "lead"
    call_kinds: list[str] = []
    if opportunity is not None:
        found = await db.read(lambda conn: access.opportunity(conn, principal, opportunity, on=today))
        query = partners.opportunity_query(found, lead_id=lead, text=text, limit=limit)
    elif call is not None:
        found_call = _found(await db.read(lambda conn: queries.get_call(conn, call)), "funding call", call)
        query = partners.call_query(found_call, lead_id=lead, text=text, limit=limit)
        call_kinds = found_call.required_kinds
    else:
        query = partners.Query(text=text or "", lead_id=organisation or lead, limit=limit)
    found_partners = await anyio.to_thread.run_sync(
        lambda: partners.recommend(feed, query, principal, lead_parameter=lead_parameter, call_kinds=call_kinds),
        limiter=limiter)
    return Recommendations(lead_organisation_id=query.lead_id, data=found_partners)


@router.post("/consortia/proposals", responses=problems(404, 422), tags=["recommendations"])
async def propose_consortium(body: ProposalCreate, db: Db, feed: Feed, limiter: Limiter,
                             principal: ManagerOrMember) -> ConsortiumProposal:
    """Propose a consortium for a call around a lead: which rule each member meets, and what is missing."""
    found = await db.read(lambda conn: queries.get_call(conn, body.call_id))
    if found is None:
        raise InvalidInput.field("body.call_id", f"no funding call {body.call_id} in the catalogue")
    return await anyio.to_thread.run_sync(lambda: partners.propose_consortium(
        feed, found, principal, lead_id=body.lead_organisation_id, size=body.size, text=body.text,
        partner_ids=body.partner_ids, exclude_ids=body.exclude_ids), limiter=limiter)


@router.get("/events/{event_id}/participants/{participant_id}/meeting-suggestions",
            responses=problems(404, 422, 503), tags=["recommendations"])
async def suggest_meetings(event_id: RemoteId, participant_id: RemoteId, feed: Feed, events: Events,
                           limiter: Limiter, principal: ManagerOrMember,
                           limit: Annotated[int, Query(ge=1, le=100)] = 10) -> MeetingSuggestions:
    """Whom this B2B participant should send meeting requests to, among the event's participants
    (read from the events service with the caller's token: a participant the caller may not see there
    is not found here either)."""
    token = principal.token
    me = await events.participant(event_id, participant_id, token=token)
    cards = await events.participants(event_id, token=token)
    busy_with = await events.meeting_partners(event_id, participant_id, token=token)
    found = await anyio.to_thread.run_sync(
        lambda: partners.suggest_meetings(feed, me, cards, busy_with=busy_with, limit=limit), limiter=limiter)
    return MeetingSuggestions(event_id=event_id, participant_id=participant_id, data=found)


@router.get("/index", tags=["recommendations"])
async def index_status(feed: Feed, _: Admin) -> dict[str, int]:
    """How far the recommender's index has read the log, and how many organisations it holds."""
    # Two numbers read without the lock: a catch-up in progress must not block the event loop.
    return {"position": feed.position, "organisations": len(feed.index)}
