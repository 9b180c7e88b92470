"""The events service's HTTP API under /v1/events: parse, authorise, call the domain in one write
transaction, render.

Reads come from the read models; writes return the new state with its stream version as the
ETag. Changes to a record (PATCH an event, archive it, PUT a profile) need `If-Match`; state
transitions (publish, cancel, accept, move…) check it when given. Calls to the registry and
the scheduler's search happen outside any transaction; the registry is asked with the caller's
own token, so it answers only what the caller may see. Each route's policy says which roles may
call it; `access.py` decides which events, registrations and meetings are the caller's.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Connection

from services.events import access, agenda, domain, queries, scheduling, statistics
from services.events.events import stream_id
from services.events.models import (
    AcceptRequest,
    AgendaUnlock,
    ArchiveRequest,
    AvailabilityUpdate,
    B2BSessionCreate,
    B2BSessionPublic,
    BoothUpdate,
    CancelRequest,
    DeclineRequest,
    EventCreate,
    EventKind,
    EventPublic,
    EventStatus,
    EventUpdate,
    MeetingCancel,
    MeetingMove,
    MeetingPublic,
    MeetingRequestCreate,
    OutcomeCreate,
    Page,
    ParticipantCard,
    ParticipantPublic,
    ProfileUpdate,
    RegistrationCreate,
    ScheduleResult,
    ScheduleRun,
)
from services.events.registry_client import RegistryClient
from shared import pii
from shared.auth import CLUSTER_MANAGER, MEMBER, Anyone, Principal, allow
from shared.db import Database
from shared.errors import Forbidden, NotFound
from shared.eventlog import EventLog
from shared.http import Db, IfMatch, Log, OptionalIfMatch, RequestMetadata, etag, problems

T = TypeVar("T")

router = APIRouter(prefix="/v1/events")

Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page")]
Id = Annotated[str | None, Query(max_length=36)]

READ_ERRORS = problems(401, 403, 404)
WRITE_ERRORS = problems(401, 403, 404, 409, 412, 422, 428)
REGISTRY_ERRORS = problems(401, 403, 404, 409, 412, 422, 503)

# Policies: who may call a route at all (platform admins always may); organisers are the managers
# of an event's organiser clusters, checked per event.
Manager = Annotated[Principal, allow(CLUSTER_MANAGER)]
ManagerOrMember = Annotated[Principal, allow(CLUSTER_MANAGER, MEMBER)]


# Dependencies are `async def`: FastAPI would run a plain `def` in a worker thread, per request.


async def _registry(request: Request) -> RegistryClient:
    return request.app.state.registry


Registry = Annotated[RegistryClient, Depends(_registry)]


def _found(value: T | None, label: str, entity_id: str) -> T:
    if value is None:
        raise NotFound(f"{label} {entity_id} not found")
    return value


def _tagged(response: Response, resource: T) -> T:
    response.headers["ETag"] = etag(resource.version)  # type: ignore[attr-defined]
    return resource


def _json(resource: MeetingPublic, status_code: int = 200, **headers: str) -> Response:
    """The resource as JSON, with its version as the ETag: serialised once (returned as a model, it
    would be validated again against the route's response model first)."""
    return Response(resource.model_dump_json(), status_code, {**headers, "ETag": etag(resource.version)},
                    media_type="application/json")


# Each write checks the caller's rights, runs the command, then reads the resource back, all in the
# same transaction. Organisers are the only ones who change events as such.


def _event(event_id: str, principal: Principal,
           command: Callable[[Connection], Any]) -> Callable[[Connection], EventPublic]:
    def run(conn: Connection) -> EventPublic:
        access.event(conn, principal, event_id, organiser=True)
        command(conn)
        return _found(queries.get_event(conn, event_id), "event", event_id)
    return run


def _participant(event_id: str, participant_id: str, principal: Principal, command: Callable[[Connection], Any], *,
                 organiser: bool = False) -> Callable[[Connection], ParticipantPublic]:
    def run(conn: Connection) -> ParticipantPublic:
        access.participant(conn, principal, event_id, participant_id, organiser=organiser)
        command(conn)
        return _found(queries.get_participant(conn, event_id, participant_id), "participant", participant_id)
    return run


def _meeting(event_id: str, meeting_id: str, check: Callable[[Connection], Any],
             command: Callable[[Connection], Any]) -> Callable[[Connection], MeetingPublic]:
    def run(conn: Connection) -> MeetingPublic:
        check(conn)
        command(conn)
        return _found(queries.get_meeting(conn, event_id, meeting_id), "meeting", meeting_id)
    return run


async def _history(db: Database, log: EventLog, kind: str, label: str, entity_id: str,
                   check: Callable[[Connection], Any]) -> dict[str, Any]:
    def read(conn: Connection) -> list[Any]:
        check(conn)
        # Sealed personal data opened, or "erased" (shared/pii.py).
        return pii.open_tree(conn, [event.public() for event in log.read_stream(conn, stream_id(kind, entity_id))])

    events = await db.read(read)
    _found(events or None, label, entity_id)
    return {"data": events}


def _organises_all(principal: Principal, cluster_ids: list[str]) -> None:
    """A manager creates (or re-assigns) events only with their own cluster among the organisers."""
    if not principal.is_admin and principal.managed_cluster not in cluster_ids:
        raise Forbidden(f"body.organiser_cluster_ids: your cluster {principal.managed_cluster} must be an organiser")


# --------------------------------------------------------------------------------------------
# Events


@router.post("", status_code=201, responses=problems(409, 422, 503), tags=["events"])
async def schedule_event(body: EventCreate, response: Response, db: Db, log: Log, registry: Registry,
                         principal: Manager, metadata: RequestMetadata) -> EventPublic:
    """Create an event (a draft) organised by one cluster, or jointly by several."""
    _organises_all(principal, body.organiser_cluster_ids)
    await registry.check_clusters(body.organiser_cluster_ids, token=principal.token)

    def run(conn: Connection) -> EventPublic:
        event_id = domain.schedule_event(conn, log, body, metadata)
        return _found(queries.get_event(conn, event_id), "event", event_id)

    event = await db.write(run)
    response.headers["Location"] = f"/v1/events/{event.id}"
    return _tagged(response, event)


@router.get("", responses=problems(422), tags=["events"])
async def list_events(db: Db, principal: Anyone, status: EventStatus | None = None, kind: EventKind | None = None,
                      cluster_id: Annotated[str | None, Query(pattern=r"^[0-9a-f-]{36}$",
                                                              description="Organised by this cluster")] = None,
                      cursor: Cursor = None, limit: Limit = 50) -> Page[EventPublic]:
    """Events by start time (archived ones only when asked for by status), as far as the caller may see them."""
    return await db.read(lambda conn: queries.list_events(conn, status=status, kind=kind, cluster_id=cluster_id,
                                                          cursor=cursor, limit=limit,
                                                          visible=access.event_visible(principal)))


@router.get("/{event_id}", responses=READ_ERRORS, tags=["events"])
async def get_event(event_id: str, response: Response, db: Db, principal: Anyone) -> EventPublic:
    """One event; the ETag is its version."""

    def read(conn: Connection) -> EventPublic | None:
        access.event(conn, principal, event_id)
        return queries.get_event(conn, event_id)

    return _tagged(response, _found(await db.read(read), "event", event_id))


@router.patch("/{event_id}", responses=problems(404, 409, 412, 422, 428, 503), tags=["events"])
async def update_event(event_id: str, body: EventUpdate, principal: Manager, version: IfMatch, response: Response,
                       db: Db, log: Log, registry: Registry, metadata: RequestMetadata) -> EventPublic:
    """Change the given fields (null clears an optional one); a larger capacity seats the waitlist."""
    await db.read(lambda conn: access.event(conn, principal, event_id, organiser=True))
    if body.organiser_cluster_ids:
        _organises_all(principal, body.organiser_cluster_ids)
        await registry.check_clusters(body.organiser_cluster_ids, token=principal.token)
    event = await db.write(_event(event_id, principal, lambda conn: domain.update_event(
        conn, log, event_id, version, body, metadata)))
    return _tagged(response, event)


def _transition(action: str, summary: str) -> None:
    async def transition(event_id: str, response: Response, db: Db, log: Log, principal: Manager,
                         metadata: RequestMetadata, version: OptionalIfMatch) -> EventPublic:
        event = await db.write(_event(event_id, principal, lambda conn: domain.change_event_status(
            conn, log, event_id, action, metadata, expected_version=version)))
        return _tagged(response, event)

    transition.__doc__ = summary
    router.add_api_route(f"/{{event_id}}/{action}", transition, methods=["POST"], responses=WRITE_ERRORS,
                         tags=["events"], name=action.replace("-", "_"), response_model=EventPublic)


_transition("publish", "Publish a draft: it is listed and takes registrations.")
_transition("close-registration", "Stop taking registrations.")
_transition("held", "Mark the event as held (it took place).")


@router.post("/{event_id}/archive", responses=WRITE_ERRORS, tags=["events"])
async def archive_event(event_id: str, principal: Manager, version: IfMatch, response: Response, db: Db, log: Log,
                        metadata: RequestMetadata, body: ArchiveRequest | None = None) -> EventPublic:
    """Archive an event: it stays readable, leaves the lists and takes no more changes."""
    reason = body.reason if body else None
    event = await db.write(_event(event_id, principal, lambda conn: domain.change_event_status(
        conn, log, event_id, "archive", metadata, expected_version=version, reason=reason)))
    return _tagged(response, event)


@router.get("/{event_id}/history", responses=READ_ERRORS, tags=["events"])
async def event_history(event_id: str, db: Db, log: Log, principal: Manager) -> dict[str, Any]:
    """The event's own events (details, lifecycle, sessions, scheduler runs, agenda), oldest first."""
    return await _history(db, log, "event", "event", event_id,
                          lambda conn: access.event(conn, principal, event_id, organiser=True))


# --------------------------------------------------------------------------------------------
# B2B sessions


@router.post("/{event_id}/b2b-sessions", status_code=201, responses=WRITE_ERRORS, tags=["b2b sessions"])
async def add_b2b_session(event_id: str, body: B2BSessionCreate, db: Db, log: Log, principal: Manager,
                          metadata: RequestMetadata) -> B2BSessionPublic:
    """Add a block of meeting slots (ids `S<n>-1`, `S<n>-2`…) with tables per slot."""

    def run(conn: Connection) -> B2BSessionPublic:
        access.event(conn, principal, event_id, organiser=True)
        session_id = domain.add_b2b_session(conn, log, event_id, body, metadata)
        return next(s for s in queries.list_b2b_sessions(conn, event_id) if s.id == session_id)

    return await db.write(run)


@router.get("/{event_id}/b2b-sessions", responses=READ_ERRORS, tags=["b2b sessions"])
async def list_b2b_sessions(event_id: str, db: Db, principal: Anyone) -> list[B2BSessionPublic]:
    """The event's B2B sessions with their slots, in time order."""

    def read(conn: Connection) -> list[B2BSessionPublic]:
        access.event(conn, principal, event_id)
        return queries.list_b2b_sessions(conn, event_id)

    return await db.read(read)


@router.delete("/{event_id}/b2b-sessions/{session_id}", status_code=204, responses=WRITE_ERRORS,
               tags=["b2b sessions"])
async def remove_b2b_session(event_id: str, session_id: str, db: Db, log: Log, principal: Manager,
                             metadata: RequestMetadata) -> None:
    """Remove a B2B session that has no scheduled meetings."""

    def run(conn: Connection) -> None:
        access.event(conn, principal, event_id, organiser=True)
        domain.remove_b2b_session(conn, log, event_id, session_id, metadata)

    await db.write(run)


# --------------------------------------------------------------------------------------------
# Registrations and participants


@router.post("/{event_id}/registrations", status_code=201, responses=REGISTRY_ERRORS, tags=["registrations"])
async def register(event_id: str, body: RegistrationCreate, response: Response, db: Db, log: Log,
                   registry: Registry, principal: ManagerOrMember, metadata: RequestMetadata) -> ParticipantPublic:
    """Register a contact on behalf of their organisation (checked with the registry); when the event
    is full the registration joins the waitlist (`status: waitlisted`). Members register their own
    organisation; organisers anyone."""

    def read(conn: Connection) -> tuple[bool, list[str]]:
        found = access.event(conn, principal, event_id)
        if not found.organiser:
            access.attendee(principal, found)
            if not principal.represents(body.organisation_id):
                raise Forbidden("body.organisation_id: members register their own organisation")
        return domain.registration_rules(conn, event_id)

    rules = await db.read(read)
    members_only, organisers = rules
    registrant = await registry.check_registrant(body.organisation_id, body.contact_id,
                                                 member_of=organisers if members_only else None,
                                                 token=principal.token)

    def run(conn: Connection) -> ParticipantPublic:
        participant_id = domain.register(conn, log, event_id, registrant, metadata, b2b=body.b2b, checked_for=rules)
        return _found(queries.get_participant(conn, event_id, participant_id), "participant", participant_id)

    participant = await db.write(run)
    response.headers["Location"] = f"/v1/events/{event_id}/participants/{participant.id}"
    return _tagged(response, participant)


@router.get("/{event_id}/registrations", responses=READ_ERRORS, tags=["registrations"])
async def list_registrations(event_id: str, db: Db, principal: Manager,
                             status: Literal["registered", "waitlisted", "cancelled"] | None = None,
                             cursor: Cursor = None, limit: Limit = 50) -> Page[ParticipantPublic]:
    """Registrations in the order they came, which is the waitlist's order too (organiser view)."""

    def read(conn: Connection) -> Page[ParticipantPublic]:
        access.event(conn, principal, event_id, organiser=True)
        return queries.list_registrations(conn, event_id, status=status, cursor=cursor, limit=limit)

    return await db.read(read)


@router.post("/{event_id}/registrations/{participant_id}/cancel", responses=WRITE_ERRORS, tags=["registrations"])
async def cancel_registration(event_id: str, participant_id: str, response: Response, db: Db, log: Log,
                              principal: ManagerOrMember, metadata: RequestMetadata, version: OptionalIfMatch,
                              body: CancelRequest | None = None) -> ParticipantPublic:
    """Cancel a registration: its meetings are cancelled and a freed seat goes to the waitlist."""
    reason = body.reason if body else None

    def cancel(conn: Connection) -> None:
        domain.cancel_registration(conn, log, event_id, participant_id, reason, metadata, expected_version=version)

    participant = await db.write(_participant(event_id, participant_id, principal, cancel))
    return _tagged(response, participant)


@router.get("/{event_id}/participants", responses=READ_ERRORS, tags=["participants"])
async def browse_participants(event_id: str, db: Db, principal: ManagerOrMember,
                              q: Annotated[str | None, Query(max_length=200, description="Words to find")] = None,
                              keyword: Annotated[str | None, Query(max_length=60)] = None,
                              cursor: Cursor = None, limit: Limit = 50) -> Page[ParticipantCard]:
    """B2B participants and their profiles, to choose whom to meet."""

    def read(conn: Connection) -> Page[ParticipantCard]:
        access.attendee(principal, access.event(conn, principal, event_id))
        return queries.list_cards(conn, event_id, q=q, keyword=keyword, cursor=cursor, limit=limit)

    return await db.read(read)


@router.get("/{event_id}/participants/{participant_id}", responses=READ_ERRORS, tags=["participants"])
async def get_participant(event_id: str, participant_id: str, response: Response, db: Db,
                          principal: ManagerOrMember) -> ParticipantPublic:
    """One registration with its B2B profile; the ETag is its version."""

    def read(conn: Connection) -> ParticipantPublic | None:
        access.participant(conn, principal, event_id, participant_id)
        return queries.get_participant(conn, event_id, participant_id)

    participant = await db.read(read)
    return _tagged(response, _found(participant, "participant", participant_id))


@router.get("/{event_id}/participants/{participant_id}/history", responses=READ_ERRORS, tags=["participants"])
async def participant_history(event_id: str, participant_id: str, db: Db, log: Log,
                              principal: ManagerOrMember) -> dict[str, Any]:
    """The registration's events, oldest first."""
    return await _history(db, log, "participant", "participant", participant_id,
                          lambda conn: access.participant(conn, principal, event_id, participant_id))


def _attendance(action: str, summary: str) -> None:
    async def attendance(event_id: str, participant_id: str, response: Response, db: Db, log: Log,
                         principal: Manager, metadata: RequestMetadata, version: OptionalIfMatch) -> ParticipantPublic:
        participant = await db.write(_participant(event_id, participant_id, principal, lambda conn:
                                                  domain.record_attendance(conn, log, event_id, participant_id,
                                                                           action, metadata, expected_version=version),
                                                  organiser=True))
        return _tagged(response, participant)

    attendance.__doc__ = summary
    router.add_api_route(f"/{{event_id}}/participants/{{participant_id}}/{action}", attendance, methods=["POST"],
                         responses=WRITE_ERRORS, tags=["participants"], name=action.replace("-", "_"),
                         response_model=ParticipantPublic)


_attendance("check-in", "Check a participant in at the event.")
_attendance("no-show", "Record that a registered participant did not come.")


@router.put("/{event_id}/participants/{participant_id}/profile", responses=WRITE_ERRORS, tags=["participants"])
async def update_profile(event_id: str, participant_id: str, body: ProfileUpdate, principal: ManagerOrMember,
                         version: IfMatch, response: Response, db: Db, log: Log,
                         metadata: RequestMetadata) -> ParticipantPublic:
    """Replace the B2B profile: what the participant offers, seeks, and keywords."""
    participant = await db.write(_participant(event_id, participant_id, principal, lambda conn: domain.update_profile(
        conn, log, event_id, participant_id, version, body, metadata)))
    return _tagged(response, participant)


@router.put("/{event_id}/participants/{participant_id}/availability", responses=WRITE_ERRORS,
            tags=["participants"])
async def update_availability(event_id: str, participant_id: str, body: AvailabilityUpdate, response: Response,
                              db: Db, log: Log, principal: ManagerOrMember, metadata: RequestMetadata,
                              version: OptionalIfMatch) -> ParticipantPublic:
    """Replace the list of slots in which the participant cannot meet."""
    participant = await db.write(_participant(event_id, participant_id, principal, lambda conn: (
        domain.update_availability(conn, log, event_id, participant_id, body, metadata, expected_version=version))))
    return _tagged(response, participant)


@router.put("/{event_id}/participants/{participant_id}/booth", responses=WRITE_ERRORS, tags=["participants"])
async def assign_booth(event_id: str, participant_id: str, body: BoothUpdate, response: Response, db: Db,
                       log: Log, principal: Manager, metadata: RequestMetadata,
                       version: OptionalIfMatch) -> ParticipantPublic:
    """Give an exhibitor a fixed booth: their meetings take place there, not at a table."""
    participant = await db.write(_participant(event_id, participant_id, principal, lambda conn: domain.assign_booth(
        conn, log, event_id, participant_id, body.booth, metadata, expected_version=version), organiser=True))
    return _tagged(response, participant)


AgendaFormat = Annotated[Literal["json", "ics", "html"], Query(description="json, ics (iCalendar) or html")]


async def _agenda(db: Database, principal: Principal, event_id: str, participant_id: str, fmt: str) -> Any:
    def read(conn: Connection) -> agenda.Agenda:
        access.participant(conn, principal, event_id, participant_id)
        return agenda.load_agenda(conn, event_id, participant_id)

    found = await db.read(read)
    if fmt == "ics":
        return Response(agenda.to_ics(found), media_type="text/calendar; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="agenda-{participant_id}.ics"'})
    if fmt == "html":
        return Response(agenda.to_html(found), media_type="text/html; charset=utf-8")
    return found


_AGENDA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/calendar": {}, "text/html": {}}}, **READ_ERRORS}


@router.get("/{event_id}/participants/{participant_id}/agenda", responses=_AGENDA_RESPONSES,
            response_model=agenda.Agenda, tags=["agenda"])
async def get_agenda(event_id: str, participant_id: str, db: Db, principal: ManagerOrMember,
                     format: AgendaFormat = "json") -> Any:
    """The participant's scheduled meetings (preliminary until the final agenda is published)."""
    return await _agenda(db, principal, event_id, participant_id, format)


@router.get("/{event_id}/participants/{participant_id}/agenda.ics", responses=_AGENDA_RESPONSES, tags=["agenda"])
async def get_agenda_ics(event_id: str, participant_id: str, db: Db, principal: ManagerOrMember) -> Response:
    """The agenda as iCalendar: one event per meeting, at its table or booth."""
    return await _agenda(db, principal, event_id, participant_id, "ics")


@router.get("/{event_id}/participants/{participant_id}/agenda.html", responses=_AGENDA_RESPONSES, tags=["agenda"])
async def get_agenda_html(event_id: str, participant_id: str, db: Db, principal: ManagerOrMember) -> Response:
    """The agenda as a printable page."""
    return await _agenda(db, principal, event_id, participant_id, "html")


@router.post("/{event_id}/agenda/publish", responses=WRITE_ERRORS, tags=["agenda"])
async def publish_agenda(event_id: str, response: Response, db: Db, log: Log, principal: Manager,
                         metadata: RequestMetadata) -> EventPublic:
    """Publish the final agenda: the schedule is frozen until it is unlocked."""
    return _tagged(response, await db.write(_event(event_id, principal, lambda conn: domain.publish_agenda(
        conn, log, event_id, metadata))))


@router.post("/{event_id}/agenda/unlock", responses=WRITE_ERRORS, tags=["agenda"])
async def unlock_agenda(event_id: str, response: Response, db: Db, log: Log, principal: Manager,
                        metadata: RequestMetadata, body: AgendaUnlock | None = None) -> EventPublic:
    """Unfreeze the schedule after publication, to change it (then publish again)."""
    reason = body.reason if body else None
    return _tagged(response, await db.write(_event(event_id, principal, lambda conn: domain.unlock_agenda(
        conn, log, event_id, reason, metadata))))


# --------------------------------------------------------------------------------------------
# Meetings


@router.post("/{event_id}/meeting-requests", status_code=201, responses=WRITE_ERRORS, tags=["meetings"],
             response_model=MeetingPublic)
async def request_meeting(event_id: str, body: MeetingRequestCreate, db: Db, log: Log,
                          principal: ManagerOrMember, metadata: RequestMetadata) -> Response:
    """Ask another participant for a meeting (opt-out events accept it at once)."""

    def run(conn: Connection) -> MeetingPublic:
        # The event row is locked first and the access check reads it there: one read, not two.
        event = domain.lock_event(conn, event_id)
        access.own_participant(conn, principal, event_id, body.requester_id, "body.requester_id",
                               event_row=event.row)
        meeting_id = domain.request_meeting(conn, log, event, body, metadata)
        return _found(queries.get_meeting(conn, event_id, meeting_id), "meeting", meeting_id)

    meeting = await db.write(run)
    return _json(meeting, 201, Location=f"/v1/events/{event_id}/meetings/{meeting.id}")


@router.post("/{event_id}/meeting-requests/{meeting_id}/accept", responses=WRITE_ERRORS, tags=["meetings"])
async def accept_meeting(event_id: str, meeting_id: str, response: Response, db: Db, log: Log,
                         principal: ManagerOrMember, metadata: RequestMetadata, version: OptionalIfMatch,
                         body: AcceptRequest | None = None) -> MeetingPublic:
    """The receiver accepts; self-scheduling takes the picked slot or the first common free one."""
    data = body or AcceptRequest()
    meeting = await db.write(_meeting(event_id, meeting_id, lambda conn: access.meeting(
        conn, principal, event_id, meeting_id, receiver=True), lambda conn: domain.accept_meeting(
        conn, log, event_id, meeting_id, data, metadata, expected_version=version)))
    return _tagged(response, meeting)


@router.post("/{event_id}/meeting-requests/{meeting_id}/decline", responses=WRITE_ERRORS, tags=["meetings"])
async def decline_meeting(event_id: str, meeting_id: str, response: Response, db: Db, log: Log,
                          principal: ManagerOrMember, metadata: RequestMetadata, version: OptionalIfMatch,
                          body: DeclineRequest | None = None) -> MeetingPublic:
    """The receiver declines."""
    reason = body.reason if body else None
    meeting = await db.write(_meeting(event_id, meeting_id, lambda conn: access.meeting(
        conn, principal, event_id, meeting_id, receiver=True), lambda conn: domain.decline_meeting(
        conn, log, event_id, meeting_id, reason, metadata, expected_version=version)))
    return _tagged(response, meeting)


@router.get("/{event_id}/meetings", responses=READ_ERRORS, tags=["meetings"])
async def list_meetings(event_id: str, db: Db, principal: ManagerOrMember, participant_id: Id = None,
                        status: Literal["requested", "accepted", "declined", "cancelled"] | None = None,
                        cursor: Cursor = None, limit: Limit = 50) -> Page[MeetingPublic]:
    """Meeting requests and meetings, oldest first; `participant_id` matches either side. Organisers see
    all of them, members their organisation's."""

    def read(conn: Connection) -> Page[MeetingPublic]:
        found = access.event(conn, principal, event_id)
        access.attendee(principal, found)
        visible = None if found.organiser else access.meeting_visible(principal)
        return queries.list_meetings(conn, event_id, participant_id=participant_id, status=status, cursor=cursor,
                                     limit=limit, visible=visible)

    return await db.read(read)


@router.get("/{event_id}/meetings/{meeting_id}", responses=READ_ERRORS, tags=["meetings"])
async def get_meeting(event_id: str, meeting_id: str, response: Response, db: Db,
                      principal: ManagerOrMember) -> MeetingPublic:
    """One meeting with its place and outcomes; the ETag is its version."""

    def read(conn: Connection) -> MeetingPublic | None:
        access.meeting(conn, principal, event_id, meeting_id)
        return queries.get_meeting(conn, event_id, meeting_id)

    meeting = await db.read(read)
    return _tagged(response, _found(meeting, "meeting", meeting_id))


@router.get("/{event_id}/meetings/{meeting_id}/history", responses=READ_ERRORS, tags=["meetings"])
async def meeting_history(event_id: str, meeting_id: str, db: Db, log: Log,
                          principal: ManagerOrMember) -> dict[str, Any]:
    """The meeting's events, oldest first."""
    return await _history(db, log, "meeting", "meeting", meeting_id,
                          lambda conn: access.meeting(conn, principal, event_id, meeting_id))


@router.post("/{event_id}/meetings/{meeting_id}/cancel", responses=WRITE_ERRORS, tags=["meetings"])
async def cancel_meeting(event_id: str, meeting_id: str, response: Response, db: Db, log: Log,
                         principal: ManagerOrMember, metadata: RequestMetadata, version: OptionalIfMatch,
                         body: MeetingCancel | None = None) -> MeetingPublic:
    """Withdraw a request or cancel a meeting (`by` a participant; without it, the organiser)."""
    data = body or MeetingCancel()

    def check(conn: Connection) -> None:
        access.meeting(conn, principal, event_id, meeting_id)
        access.own_participant(conn, principal, event_id, data.by, "body.by")

    meeting = await db.write(_meeting(event_id, meeting_id, check, lambda conn: domain.cancel_meeting(
        conn, log, event_id, meeting_id, data, metadata, expected_version=version)))
    return _tagged(response, meeting)


@router.post("/{event_id}/meetings/{meeting_id}/move", responses=WRITE_ERRORS, tags=["meetings"])
async def move_meeting(event_id: str, meeting_id: str, body: MeetingMove, response: Response, db: Db, log: Log,
                       principal: Manager, metadata: RequestMetadata, version: OptionalIfMatch) -> MeetingPublic:
    """Place an accepted meeting by hand: checked that nobody is double-booked or unavailable and
    the table is free."""
    meeting = await db.write(_meeting(event_id, meeting_id, lambda conn: access.meeting(
        conn, principal, event_id, meeting_id, organiser=True), lambda conn: domain.move_meeting(
        conn, log, event_id, meeting_id, body, metadata, expected_version=version)))
    return _tagged(response, meeting)


def _locking(action: str, locked: bool, summary: str) -> None:
    async def locking(event_id: str, meeting_id: str, response: Response, db: Db, log: Log, principal: Manager,
                      metadata: RequestMetadata, version: OptionalIfMatch) -> MeetingPublic:
        meeting = await db.write(_meeting(event_id, meeting_id, lambda conn: access.meeting(
            conn, principal, event_id, meeting_id, organiser=True), lambda conn: domain.lock_meeting(
            conn, log, event_id, meeting_id, locked, metadata, expected_version=version)))
        return _tagged(response, meeting)

    locking.__doc__ = summary
    router.add_api_route(f"/{{event_id}}/meetings/{{meeting_id}}/{action}", locking, methods=["POST"],
                         responses=WRITE_ERRORS, tags=["meetings"], name=f"{action}_meeting",
                         response_model=MeetingPublic)


_locking("lock", True, "Keep a scheduled meeting where it is when the scheduler runs again.")
_locking("unlock", False, "Let the scheduler move the meeting again.")


@router.post("/{event_id}/meetings/{meeting_id}/outcome", responses=WRITE_ERRORS, tags=["meetings"])
async def record_outcome(event_id: str, meeting_id: str, body: OutcomeCreate, response: Response, db: Db,
                         log: Log, principal: ManagerOrMember, metadata: RequestMetadata) -> MeetingPublic:
    """Either side reports how the meeting went (held, no-show, follow-up planned, partnership agreed)."""

    def check(conn: Connection) -> None:
        access.meeting(conn, principal, event_id, meeting_id)
        access.own_participant(conn, principal, event_id, body.participant_id, "body.participant_id")

    meeting = await db.write(_meeting(event_id, meeting_id, check, lambda conn: domain.record_outcome(
        conn, log, event_id, meeting_id, body, metadata)))
    return _tagged(response, meeting)


# --------------------------------------------------------------------------------------------
# Scheduling and statistics


@router.post("/{event_id}/schedule", responses=problems(404, 409, 422), tags=["scheduling"])
async def run_scheduler(request: Request, event_id: str, db: Db, log: Log, principal: Manager,
                        metadata: RequestMetadata, body: ScheduleRun | None = None) -> ScheduleResult:
    """Run the auto-scheduler over the accepted meetings, around the locked ones (organiser mode)."""
    run = body or ScheduleRun()

    def read(conn: Connection) -> Any:
        access.event(conn, principal, event_id, organiser=True)
        return scheduling.take_snapshot(conn, event_id)

    snapshot = await db.read(read)
    proposal = await anyio.to_thread.run_sync(
        lambda: scheduling.propose(snapshot, run.time_limit, seed=run.seed),
        limiter=request.app.state.scheduler_limiter)
    return await db.write(lambda conn: scheduling.apply(conn, log, event_id, proposal, run.time_limit, metadata))


@router.get("/{event_id}/schedule", responses=READ_ERRORS, tags=["scheduling"])
async def last_schedule(event_id: str, db: Db, principal: Manager) -> dict[str, Any]:
    """The last scheduler run's summary (null before the first run)."""

    def read(conn: Connection) -> EventPublic | None:
        access.event(conn, principal, event_id, organiser=True)
        return queries.get_event(conn, event_id)

    event = _found(await db.read(read), "event", event_id)
    return {"last_run": event.last_schedule}


@router.get("/{event_id}/statistics", responses={200: {"content": {"text/csv": {}}}, **problems(404, 422)},
            tags=["statistics"],
            response_model=statistics.Statistics)
async def get_statistics(event_id: str, db: Db, principal: Manager,
                         format: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json") -> Any:
    """Registrations, requests, accepted, scheduled and held meetings, follow-ups."""

    def read(conn: Connection) -> statistics.Statistics:
        access.event(conn, principal, event_id, organiser=True)
        return statistics.compute(conn, event_id)

    figures = await db.read(read)
    if format == "csv":
        return Response(statistics.to_csv(figures), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="statistics-{event_id}.csv"'})
    return figures
