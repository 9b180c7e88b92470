"""The authorisation matrix: every route of every service × every role, asserting the exact status.

The world's records belong to the cluster BioWin and to IBA, one of its members. The roles, in
the order of each row's expected statuses:

    anonymous      no credentials
    admin          platform admin
    manager        BioWin's cluster manager (own tenant)
    manager_other  Medicen's cluster manager (another tenant)
    member         IBA's representative, in BioWin (own organisation)
    member_other   Guerbet's representative, in Medicen (another organisation)
    partner        Medicen's system, a partner cluster

A route without a row, or without a policy, fails the suite. Requests expected to succeed act on
fresh records made for them (so that rows never depend on each other's order); refused ones aim
at the shared records, which they must leave unchanged. 401 comes without credentials, 403 for a
role or tenant that may see but not do, 404 where even the record's existence must not leak.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import anyio.to_thread
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from services.events.app import create_app as create_events_app
from services.events.settings import EventsSettings
from services.matchmaking.app import create_app as create_matchmaking_app
from services.matchmaking.settings import MatchmakingSettings
from services.registry.app import create_app as create_registry_app
from services.registry.settings import RegistrySettings
from shared.api_keys import issue_api_key
from shared.eventlog import Metadata
from tests.conftest import Store, auth_headers

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROLES = ("anonymous", "admin", "manager", "manager_other", "member", "member_other", "partner")
SERVICES = ("registry", "events", "matchmaking")
TODAY = date(2026, 1, 12)  # matchmaking's clock: opportunity deadlines below are after it
# Probes and Prometheus' scrape answer everyone and carry no policy (keep /metrics on an internal
# network); everything else declares one.
NO_POLICY = {"/healthz", "/readyz", "/metrics"}
Ids = dict[str, str]


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------------------------
# The world


@dataclass
class World:
    apps: dict[str, FastAPI]
    http: dict[str, httpx.AsyncClient]
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    ids: Ids = field(default_factory=dict)

    async def call(self, service: str, method: str, path: str, *, role: str = "admin", **kwargs: Any) -> Any:
        response = await self.http[service].request(method, path, headers=self.tokens[role], **kwargs)
        assert response.status_code in (200, 201, 204), (method, path, response.text)
        return response.json() if response.content and "json" in response.headers["content-type"] else None

    async def post(self, service: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        return await self.call(service, "POST", path, json=body, **kwargs)

    async def etag(self, service: str, path: str) -> str:
        response = await self.http[service].get(path, headers=self.tokens["admin"])
        assert response.status_code == 200, response.text
        return response.headers["ETag"]

    # -- registry

    async def cluster(self) -> str:
        name = unique("Cluster")
        return (await self.post("registry", "/v1/clusters", {
            "name": name, "acronym": name[-10:], "country": "BE", "legal_form": "non_profit_association"}))["id"]

    async def organisation(self, *, country: str = "BE", member_of: str | None = None, active: bool = True,
                           role: str = "admin") -> str:
        org = await self.post("registry", "/v1/organisations", {
            "legal_name": unique("Organisation"), "kind": "company", "country": country}, role=role)
        if member_of:
            await self.membership(org["id"], member_of, active=active)
        return org["id"]

    async def membership(self, organisation_id: str, cluster_id: str, *, active: bool) -> str:
        membership = await self.post("registry", "/v1/memberships", {
            "organisation_id": organisation_id, "cluster_id": cluster_id, "fee_category": "sme",
            "yearly_fee": "500"})
        if active:
            await self.post("registry", f"/v1/memberships/{membership['id']}/activate", {})
        return membership["id"]

    async def contact(self, organisation_id: str) -> str:
        return (await self.post("registry", f"/v1/organisations/{organisation_id}/contacts",
                                {"name": unique("Person")}))["id"]

    async def working_group(self, *members: str) -> str:
        group = await self.post("registry", "/v1/working-groups", {"cluster_id": self.ids["biowin"],
                                                                   "name": unique("Group")})
        for organisation_id in members:
            await self.post("registry", f"/v1/working-groups/{group['id']}/members",
                            {"organisation_id": organisation_id})
        return group["id"]

    # -- events

    async def event(self, *, status: str = "published", session: bool = True, mode: str = "self") -> str:
        event = await self.post("events", "/v1/events", {
            "title": unique("Brokerage"), "kind": "brokerage", "organiser_cluster_ids": [self.ids["biowin"]],
            "time_zone": "Europe/Brussels", "starts_at": "2027-03-10T08:00:00+01:00",
            "ends_at": "2027-03-10T18:00:00+01:00", "b2b": {"scheduling_mode": mode}})
        path = f"/v1/events/{event['id']}"
        if session:
            await self.post("events", f"{path}/b2b-sessions", {"starts_at": "2027-03-10T09:00:00Z",
                                                              "slot_minutes": 20, "slot_count": 8, "tables": 50})
        if status != "draft":
            await self.post("events", f"{path}/publish")
        return event["id"]

    async def participant(self, organisation: str = "iba", event: str = "event") -> str:
        contact = await self.contact(self.ids[organisation])
        return (await self.post("events", f"/v1/events/{self.ids[event]}/registrations", {
            "organisation_id": self.ids[organisation], "contact_id": contact}))["id"]

    async def meeting(self, *, accepted: bool) -> Ids:
        requester, receiver = await self.participant("iba"), await self.participant("uliege")
        path = f"/v1/events/{self.ids['event']}"
        meeting = await self.post("events", f"{path}/meeting-requests", {"requester_id": requester,
                                                                          "receiver_id": receiver})
        if accepted:
            await self.post("events", f"{path}/meeting-requests/{meeting['id']}/accept")
        return {"meeting": meeting["id"], "side": requester}

    # -- matchmaking

    async def opportunity(self, *, status: str = "published", organisation: str = "iba",
                          contact: str = "anne") -> str:
        opportunity = await self.post("matchmaking", "/v1/opportunities", {
            "organisation_id": self.ids[organisation], "contact_id": self.ids[contact],
            "cluster_id": self.ids["biowin"], "kind": "technology_offer", "title": unique("Cyclotron offer"),
            "summary": "A compact cyclotron for hospital PET tracers.", "keywords": ["cyclotron"],
            "deadline": "2026-06-30", "visibility": "public"})
        path = f"/v1/opportunities/{opportunity['id']}"
        if status in ("submitted", "published"):
            await self.post("matchmaking", f"{path}/submit")
        if status == "published":
            await self.post("matchmaking", f"{path}/publish")
        return opportunity["id"]

    async def interest(self, opportunity_id: str) -> str:
        return (await self.post("matchmaking", f"/v1/opportunities/{opportunity_id}/interests", {
            "organisation_id": self.ids["uliege"], "contact_id": self.ids["bruno"],
            "message": "Our cyclotron centre would like to test it."}))["id"]


async def seed(world: World, store: Store) -> None:
    ids = world.ids
    world.tokens = {"anonymous": {}, "admin": auth_headers("platform_admin")}
    ids["biowin"], ids["medicen"] = await world.cluster(), await world.cluster()
    world.tokens |= {
        "manager": auth_headers("cluster_manager", cluster=ids["biowin"], subject="manager@biowin.test"),
        "manager_other": auth_headers("cluster_manager", cluster=ids["medicen"], subject="manager@medicen.test"),
        "partner": auth_headers("partner_cluster", cluster=ids["medicen"], subject="medicen-system"),
    }
    ids["iba"] = await world.organisation(member_of=ids["biowin"])
    ids["uliege"] = await world.organisation(member_of=ids["biowin"])
    ids["guerbet"] = await world.organisation(country="FR", member_of=ids["medicen"])
    ids["prospect"] = await world.organisation(member_of=ids["biowin"], active=False)  # applied: not public
    world.tokens["member"] = auth_headers("member", cluster=ids["biowin"], organisation=ids["iba"],
                                          subject="anne@iba.test")
    world.tokens["member_other"] = auth_headers("member", cluster=ids["medicen"], organisation=ids["guerbet"],
                                                subject="claire@guerbet.test")
    ids["anne"], ids["bruno"] = await world.contact(ids["iba"]), await world.contact(ids["uliege"])
    memberships = await world.call("registry", "GET", "/v1/memberships", params={"organisation_id": ids["iba"]})
    ids["iba_membership"] = memberships["data"][0]["id"]
    ids["connection"] = (await world.post("registry", "/v1/connections", {
        "source_id": ids["iba"], "target_id": ids["uliege"], "kind": "partner_of"}))["id"]
    ids["group"] = await world.working_group(ids["uliege"])

    ids["event"] = await world.event()
    ids["draft_event"] = await world.event(status="draft", session=False)
    sessions = await world.call("events", "GET", f"/v1/events/{ids['event']}/b2b-sessions")
    ids["session"] = sessions[0]["id"]
    path = f"/v1/events/{ids['event']}"
    ids["p_iba"] = (await world.post("events", f"{path}/registrations", {
        "organisation_id": ids["iba"], "contact_id": ids["anne"]}))["id"]
    ids["p_ul"] = (await world.post("events", f"{path}/registrations", {
        "organisation_id": ids["uliege"], "contact_id": ids["bruno"]}))["id"]
    ids["meeting"] = (await world.post("events", f"{path}/meeting-requests", {
        "requester_id": ids["p_iba"], "receiver_id": ids["p_ul"]}))["id"]

    ids["call"] = (await world.post("matchmaking", "/v1/calls", {
        "call_id": f"HORIZON-HLTH-{uuid.uuid4().hex[:8]}", "programme": "horizon_europe",
        "title": "Imaging biomarkers for dementia", "deadline": "2026-09-15"}))["id"]
    ids["offer"] = await world.opportunity()
    ids["draft_offer"] = await world.opportunity(status="draft")
    ids["interest"] = await world.interest(ids["offer"])
    await anyio.to_thread.run_sync(world.apps["matchmaking"].state.feed.catch_up)

    registry = world.apps["registry"]
    with store.db.writing() as conn:
        key = issue_api_key(conn, registry.state.log, subject="matrix-client", roles=["partner_cluster"],
                            cluster=ids["medicen"], metadata=Metadata(actor="test"))
    ids["client_id"], ids["client_secret"] = key.id, key.key
    # What refused requests name where a fresh record stands in for the allowed ones.
    ids.update(cluster=ids["biowin"], org=ids["prospect"], archived=ids["iba"], organisation=ids["iba"], contact=ids["anne"],
               membership=ids["iba_membership"], target=ids["uliege"], side=ids["p_iba"])
    await _seed_federation(world, store)  # federation's records (defined with its rows below)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(module_store: Store) -> AsyncIterator[World]:
    """The three services in process over one store, calling each other through ASGI transports."""
    unlimited = {"rate_limit_per_minute": 0}
    registry = create_registry_app(RegistrySettings(**unlimited), db=module_store.db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=registry), base_url="http://registry") as to_reg:
        events = create_events_app(EventsSettings(registry_backoff=0.01, **unlimited), db=module_store.db,
                                   registry=to_reg)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=events), base_url="http://events") as to_ev:
            matchmaking = create_matchmaking_app(MatchmakingSettings(events_backoff=0.01, **unlimited),
                                                 db=module_store.db, events=to_ev)
            matchmaking.state.clock = lambda: TODAY
            apps = {"registry": registry, "events": events, "matchmaking": matchmaking}
            clients = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
                       for name, app in apps.items()}
            try:
                made = World(apps, clients)
                await seed(made, module_store)
                yield made
            finally:
                for client in clients.values():
                    await client.aclose()


# --------------------------------------------------------------------------------------------
# The table

Fresh = Callable[[World, str], Awaitable[Ids]]


@dataclass(frozen=True)
class Row:
    service: str
    method: str
    route: str  # the route's path template, as the app declares it
    expect: tuple[int, ...]  # one status per role, in ROLES order
    path: str | None = None  # the request's path, formatted with the world's ids (default: route)
    body: Any = None  # JSON (strings formatted with the ids), or a function of the ids
    params: dict[str, str] | None = None
    fresh: Fresh | None = None  # new ids for a request expected to succeed
    etag: str | bool = False  # send If-Match with the current ETag of this path (True: of `path`)
    form: dict[str, str] | None = None
    csv: Callable[[], str] | None = None
    name: str = ""

    @property
    def id(self) -> str:
        return f"{self.service} {self.method} {self.route}{' ' + self.name if self.name else ''}"


def row(service: str, method: str, route: str, expect: str, **kwargs: Any) -> Row:
    statuses = tuple(int(code) for code in expect.split())
    assert len(statuses) == len(ROLES), route
    return Row(service, method, route, statuses, **kwargs)


EVERYONE = "200 200 200 200 200 200 200"


def fresh(maker: Callable[[World], Awaitable[Any]], key: str) -> Fresh:
    async def make(world: World, role: str) -> Ids:
        made = await maker(world)
        return made if isinstance(made, dict) else {key: made}
    return make


async def _membership(world: World, *, active: bool) -> str:
    return await world.membership(await world.organisation(), world.ids["biowin"], active=active)


async def _connection(world: World) -> str:
    target = await world.organisation()
    return (await world.post("registry", "/v1/connections", {
        "source_id": world.ids["iba"], "target_id": target, "kind": "partner_of"}))["id"]


async def _group_with(world: World, role: str) -> Ids:
    organisation = world.ids["iba" if role == "member" else "uliege"]
    return {"group": await world.working_group(organisation), "organisation": organisation}


async def _group_without(world: World, role: str) -> Ids:
    return {"group": await world.working_group(), "organisation": world.ids["iba" if role == "member" else "uliege"]}


async def _agenda_published(world: World) -> str:
    event = await world.event()
    await world.post("events", f"/v1/events/{event}/agenda/publish")
    return event


async def _interest(world: World) -> str:
    return await world.interest(await world.opportunity())


def _csv() -> str:
    return f"legal_name,kind,country\n{unique('Imported')},company,BE\n"


_event_body = {"title": "Joint brokerage", "kind": "brokerage", "organiser_cluster_ids": ["{biowin}"],
               "time_zone": "Europe/Brussels", "starts_at": "2027-05-10T08:00:00+02:00",
               "ends_at": "2027-05-10T18:00:00+02:00"}
_offer_body = {"organisation_id": "{iba}", "contact_id": "{anne}", "cluster_id": "{biowin}",
               "kind": "business_offer", "title": "Distribution in Benelux hospitals",
               "summary": "Our network reaches 40 hospitals."}


def _framework_rows() -> list[Row]:
    rows = []
    for service in SERVICES:
        for route in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", *sorted(NO_POLICY)):
            rows.append(row(service, "GET", route, EVERYONE))
    return rows


ROWS: list[Row] = [
    *_framework_rows(),
    # ---- registry: clusters
    row("registry", "POST", "/v1/clusters", "401 201 403 403 403 403 403",
        body=lambda ids: {"name": unique("Cluster"), "acronym": "NEW", "country": "FR",
                          "legal_form": "non_profit_association"}),
    row("registry", "GET", "/v1/clusters", EVERYONE),
    row("registry", "GET", "/v1/clusters/{cluster_id}", EVERYONE, path="/v1/clusters/{biowin}"),
    row("registry", "PATCH", "/v1/clusters/{cluster_id}", "401 200 200 403 403 403 403",
        path="/v1/clusters/{biowin}", etag=True, body={"description": "Health technologies in Wallonia"}),
    row("registry", "POST", "/v1/clusters/{cluster_id}/archive", "401 200 403 403 403 403 403",
        path="/v1/clusters/{cluster}/archive", etag="/v1/clusters/{cluster}",
        fresh=fresh(World.cluster, "cluster")),
    row("registry", "GET", "/v1/clusters/{cluster_id}/history", "401 200 200 403 403 403 403",
        path="/v1/clusters/{biowin}/history"),
    # ---- registry: organisations
    row("registry", "POST", "/v1/organisations", "401 201 201 201 403 403 403",
        body=lambda ids: {"legal_name": unique("Newco"), "kind": "company", "country": "BE"}),
    row("registry", "GET", "/v1/organisations", EVERYONE),
    row("registry", "GET", "/v1/organisations/{organisation_id}", EVERYONE, path="/v1/organisations/{iba}"),
    row("registry", "GET", "/v1/organisations/{organisation_id}", "404 200 200 404 404 404 404",
        path="/v1/organisations/{prospect}", name="(not public)"),
    row("registry", "PATCH", "/v1/organisations/{organisation_id}", "401 200 200 403 200 403 403",
        path="/v1/organisations/{iba}", etag=True, body={"description": "Proton therapy"}),
    row("registry", "PATCH", "/v1/organisations/{organisation_id}", "401 200 200 404 404 404 403",
        path="/v1/organisations/{prospect}", etag=True, body={"description": "A prospect"}, name="(not public)"),
    row("registry", "POST", "/v1/organisations/{organisation_id}/archive", "401 200 200 403 403 403 403",
        path="/v1/organisations/{archived}/archive", etag="/v1/organisations/{archived}",
        fresh=fresh(lambda w: w.organisation(member_of=w.ids["biowin"]), "archived")),
    row("registry", "GET", "/v1/organisations/{organisation_id}/history", "401 200 200 403 200 403 403",
        path="/v1/organisations/{iba}/history"),
    # ---- registry: contacts
    row("registry", "POST", "/v1/organisations/{organisation_id}/contacts", "401 201 201 403 201 403 403",
        path="/v1/organisations/{iba}/contacts", body={"name": "Marc Lenoir"}),
    row("registry", "GET", "/v1/organisations/{organisation_id}/contacts", "401 200 200 403 200 403 403",
        path="/v1/organisations/{iba}/contacts"),
    row("registry", "GET", "/v1/contacts/{contact_id}", "401 200 200 404 200 404 403", path="/v1/contacts/{anne}"),
    row("registry", "PATCH", "/v1/contacts/{contact_id}", "401 200 200 404 200 404 403",
        path="/v1/contacts/{anne}", etag=True, body={"position": "CTO"}),
    row("registry", "DELETE", "/v1/contacts/{contact_id}", "401 204 204 404 204 404 403",
        path="/v1/contacts/{contact}", etag=True, fresh=fresh(lambda w: w.contact(w.ids["iba"]), "contact")),
    row("registry", "GET", "/v1/contacts/{contact_id}/history", "401 200 200 404 200 404 403",
        path="/v1/contacts/{anne}/history"),
    # ---- registry: memberships
    row("registry", "POST", "/v1/memberships", "401 201 201 403 403 403 403",
        body={"organisation_id": "{org}", "cluster_id": "{biowin}", "fee_category": "sme", "yearly_fee": "500"},
        fresh=fresh(lambda w: w.organisation(role="manager"), "org")),
    row("registry", "GET", "/v1/memberships", "401 200 200 200 200 200 403"),
    row("registry", "GET", "/v1/memberships/{membership_id}", "401 200 200 404 200 404 403",
        path="/v1/memberships/{iba_membership}"),
    *[row("registry", "POST", f"/v1/memberships/{{membership_id}}/{action}", "401 200 200 404 403 403 403",
          path=f"/v1/memberships/{{membership}}/{action}",
          fresh=fresh(lambda w, active=active: _membership(w, active=active), "membership"))
      for action, active in (("activate", False), ("suspend", True), ("renew", True), ("end", True))],
    row("registry", "GET", "/v1/memberships/{membership_id}/history", "401 200 200 404 200 404 403",
        path="/v1/memberships/{iba_membership}/history"),
    # ---- registry: connections
    row("registry", "POST", "/v1/connections", "401 201 201 403 201 403 403",
        body={"source_id": "{iba}", "target_id": "{target}", "kind": "supplier_of"},
        fresh=fresh(lambda w: w.organisation(member_of=w.ids["biowin"]), "target")),
    row("registry", "GET", "/v1/connections", "401 200 200 200 200 200 403"),
    row("registry", "GET", "/v1/connections/{connection_id}", "401 200 200 404 200 404 403",
        path="/v1/connections/{connection}"),
    row("registry", "POST", "/v1/connections/{connection_id}/end", "401 200 200 404 200 404 403",
        path="/v1/connections/{connection}/end", fresh=fresh(_connection, "connection")),
    row("registry", "GET", "/v1/connections/{connection_id}/history", "401 200 200 404 200 404 403",
        path="/v1/connections/{connection}/history"),
    # ---- registry: working groups
    row("registry", "POST", "/v1/working-groups", "401 201 201 403 403 403 403",
        body=lambda ids: {"cluster_id": ids["biowin"], "name": unique("Imaging")}),
    row("registry", "GET", "/v1/working-groups", "401 200 200 200 200 200 403"),
    row("registry", "GET", "/v1/working-groups/{working_group_id}", "401 200 200 404 200 404 403",
        path="/v1/working-groups/{group}"),
    row("registry", "GET", "/v1/working-groups/{working_group_id}/members", "401 200 200 404 200 404 403",
        path="/v1/working-groups/{group}/members"),
    row("registry", "POST", "/v1/working-groups/{working_group_id}/members", "401 200 200 404 200 404 403",
        path="/v1/working-groups/{group}/members", body={"organisation_id": "{organisation}"}, fresh=_group_without),
    row("registry", "DELETE", "/v1/working-groups/{working_group_id}/members/{organisation_id}",
        "401 200 200 404 200 404 403", path="/v1/working-groups/{group}/members/{organisation}", fresh=_group_with),
    row("registry", "GET", "/v1/working-groups/{working_group_id}/history", "401 200 200 404 403 403 403",
        path="/v1/working-groups/{group}/history"),
    # ---- registry: import, export, audit, tokens
    row("registry", "POST", "/v1/organisation-imports", "401 201 403 403 403 403 403", csv=_csv),
    row("registry", "GET", "/v1/organisation-exports", "401 200 200 200 403 403 403"),
    row("registry", "GET", "/v1/audit", "401 200 200 200 403 403 403"),
    row("registry", "POST", "/v1/auth/token", EVERYONE,
        form={"grant_type": "client_credentials", "client_id": "{client_id}", "client_secret": "{client_secret}"}),
    # ---- events
    row("events", "POST", "/v1/events", "401 201 201 403 403 403 403", body=_event_body),
    row("events", "GET", "/v1/events", EVERYONE),
    row("events", "GET", "/v1/events/{event_id}", EVERYONE, path="/v1/events/{event}"),
    row("events", "GET", "/v1/events/{event_id}", "404 200 200 404 404 404 404", path="/v1/events/{draft_event}",
        name="(draft)"),
    row("events", "PATCH", "/v1/events/{event_id}", "401 200 200 403 403 403 403", path="/v1/events/{event}",
        etag=True, body={"description": "Meet the Walloon health-tech ecosystem"}),
    row("events", "POST", "/v1/events/{event_id}/publish", "401 200 200 403 403 403 403",
        path="/v1/events/{event}/publish", fresh=fresh(lambda w: w.event(status="draft"), "event")),
    *[row("events", "POST", f"/v1/events/{{event_id}}/{action}", "401 200 200 403 403 403 403",
          path=f"/v1/events/{{event}}/{action}", fresh=fresh(World.event, "event"))
      for action in ("close-registration", "held")],
    row("events", "POST", "/v1/events/{event_id}/archive", "401 200 200 403 403 403 403",
        path="/v1/events/{event}/archive", etag="/v1/events/{event}", fresh=fresh(World.event, "event")),
    row("events", "GET", "/v1/events/{event_id}/history", "401 200 200 403 403 403 403",
        path="/v1/events/{event}/history"),
    row("events", "POST", "/v1/events/{event_id}/b2b-sessions", "401 201 201 403 403 403 403",
        path="/v1/events/{event}/b2b-sessions",
        body={"starts_at": "2027-03-10T14:00:00Z", "slot_minutes": 20, "slot_count": 3, "tables": 5},
        fresh=fresh(lambda w: w.event(session=False), "event")),
    row("events", "GET", "/v1/events/{event_id}/b2b-sessions", EVERYONE, path="/v1/events/{event}/b2b-sessions"),
    row("events", "DELETE", "/v1/events/{event_id}/b2b-sessions/{session_id}", "401 204 204 403 403 403 403",
        path="/v1/events/{event}/b2b-sessions/{session}", fresh=fresh(World.event, "event")),
    row("events", "POST", "/v1/events/{event_id}/registrations", "401 201 201 403 201 403 403",
        path="/v1/events/{event}/registrations", body={"organisation_id": "{iba}", "contact_id": "{contact}"},
        fresh=fresh(lambda w: w.contact(w.ids["iba"]), "contact")),
    row("events", "GET", "/v1/events/{event_id}/registrations", "401 200 200 403 403 403 403",
        path="/v1/events/{event}/registrations"),
    row("events", "POST", "/v1/events/{event_id}/registrations/{participant_id}/cancel",
        "401 200 200 404 200 404 403", path="/v1/events/{event}/registrations/{p_iba}/cancel",
        fresh=fresh(World.participant, "p_iba")),
    row("events", "GET", "/v1/events/{event_id}/participants", "401 200 200 403 200 200 403",
        path="/v1/events/{event}/participants"),
    row("events", "GET", "/v1/events/{event_id}/participants/{participant_id}", "401 200 200 404 200 404 403",
        path="/v1/events/{event}/participants/{p_iba}"),
    row("events", "GET", "/v1/events/{event_id}/participants/{participant_id}/history",
        "401 200 200 404 200 404 403", path="/v1/events/{event}/participants/{p_iba}/history"),
    *[row("events", "POST", f"/v1/events/{{event_id}}/participants/{{participant_id}}/{action}",
          "401 200 200 404 403 403 403", path=f"/v1/events/{{event}}/participants/{{p_iba}}/{action}",
          fresh=fresh(World.participant, "p_iba"))
      for action in ("check-in", "no-show")],
    row("events", "PUT", "/v1/events/{event_id}/participants/{participant_id}/profile",
        "401 200 200 404 200 404 403", path="/v1/events/{event}/participants/{p_iba}/profile",
        etag="/v1/events/{event}/participants/{p_iba}",
        body={"offer": "Cyclotrons", "seek": "Hospitals", "keywords": ["PET"]}),
    row("events", "PUT", "/v1/events/{event_id}/participants/{participant_id}/availability",
        "401 200 200 404 200 404 403", path="/v1/events/{event}/participants/{p_iba}/availability",
        body={"unavailable_slots": []}),
    row("events", "PUT", "/v1/events/{event_id}/participants/{participant_id}/booth",
        "401 200 200 404 403 403 403", path="/v1/events/{event}/participants/{p_iba}/booth", body={"booth": "B7"}),
    *[row("events", "GET", f"/v1/events/{{event_id}}/participants/{{participant_id}}/{name}",
          "401 200 200 404 200 404 403", path=f"/v1/events/{{event}}/participants/{{p_iba}}/{name}")
      for name in ("agenda", "agenda.ics", "agenda.html")],
    row("events", "POST", "/v1/events/{event_id}/agenda/publish", "401 200 200 403 403 403 403",
        path="/v1/events/{event}/agenda/publish", fresh=fresh(World.event, "event")),
    row("events", "POST", "/v1/events/{event_id}/agenda/unlock", "401 200 200 403 403 403 403",
        path="/v1/events/{event}/agenda/unlock", fresh=fresh(_agenda_published, "event")),
    row("events", "POST", "/v1/events/{event_id}/meeting-requests", "401 201 201 403 201 403 403",
        path="/v1/events/{event}/meeting-requests", body={"requester_id": "{p_iba}", "receiver_id": "{p_ul}"},
        fresh=fresh(World.participant, "p_iba")),
    *[row("events", "POST", f"/v1/events/{{event_id}}/meeting-requests/{{meeting_id}}/{action}",
          "401 200 200 404 403 404 403", path=f"/v1/events/{{event}}/meeting-requests/{{meeting}}/{action}",
          fresh=fresh(lambda w: w.meeting(accepted=False), "meeting"))
      for action in ("accept", "decline")],
    row("events", "GET", "/v1/events/{event_id}/meetings", "401 200 200 403 200 200 403",
        path="/v1/events/{event}/meetings"),
    row("events", "GET", "/v1/events/{event_id}/meetings/{meeting_id}", "401 200 200 404 200 404 403",
        path="/v1/events/{event}/meetings/{meeting}"),
    row("events", "GET", "/v1/events/{event_id}/meetings/{meeting_id}/history", "401 200 200 404 200 404 403",
        path="/v1/events/{event}/meetings/{meeting}/history"),
    row("events", "POST", "/v1/events/{event_id}/meetings/{meeting_id}/cancel", "401 200 200 404 200 404 403",
        path="/v1/events/{event}/meetings/{meeting}/cancel", body={"by": "{side}"},
        fresh=fresh(lambda w: w.meeting(accepted=False), "meeting")),
    row("events", "POST", "/v1/events/{event_id}/meetings/{meeting_id}/move", "401 200 200 404 403 403 403",
        path="/v1/events/{event}/meetings/{meeting}/move", body={"slot_id": "S1-5"},
        fresh=fresh(lambda w: w.meeting(accepted=True), "meeting")),
    *[row("events", "POST", f"/v1/events/{{event_id}}/meetings/{{meeting_id}}/{action}",
          "401 200 200 404 403 403 403", path=f"/v1/events/{{event}}/meetings/{{meeting}}/{action}",
          fresh=fresh(lambda w: w.meeting(accepted=True), "meeting"))
      for action in ("lock", "unlock")],
    row("events", "POST", "/v1/events/{event_id}/meetings/{meeting_id}/outcome", "401 200 200 404 200 404 403",
        path="/v1/events/{event}/meetings/{meeting}/outcome", body={"participant_id": "{side}", "outcome": "held"},
        fresh=fresh(lambda w: w.meeting(accepted=True), "meeting")),
    row("events", "POST", "/v1/events/{event_id}/schedule", "401 200 200 403 403 403 403",
        path="/v1/events/{event}/schedule", body={"time_limit": 1},
        fresh=fresh(lambda w: w.event(mode="organiser"), "event")),
    row("events", "GET", "/v1/events/{event_id}/schedule", "401 200 200 403 403 403 403",
        path="/v1/events/{event}/schedule"),
    row("events", "GET", "/v1/events/{event_id}/statistics", "401 200 200 403 403 403 403",
        path="/v1/events/{event}/statistics"),
    # ---- matchmaking: opportunities and interests
    row("matchmaking", "POST", "/v1/opportunities", "401 201 201 403 201 403 403", body=_offer_body),
    row("matchmaking", "GET", "/v1/opportunities", EVERYONE),
    row("matchmaking", "GET", "/v1/opportunities/{opportunity_id}", EVERYONE, path="/v1/opportunities/{offer}"),
    row("matchmaking", "GET", "/v1/opportunities/{opportunity_id}", "404 200 200 404 200 404 404",
        path="/v1/opportunities/{draft_offer}", name="(draft)"),
    row("matchmaking", "PATCH", "/v1/opportunities/{opportunity_id}", "401 200 200 404 200 404 403",
        path="/v1/opportunities/{draft_offer}", etag=True, body={"description": "Self-shielded, 18 MeV."}),
    row("matchmaking", "POST", "/v1/opportunities/{opportunity_id}/submit", "401 200 200 404 200 404 403",
        path="/v1/opportunities/{draft_offer}/submit",
        fresh=fresh(lambda w: w.opportunity(status="draft"), "draft_offer")),
    row("matchmaking", "POST", "/v1/opportunities/{opportunity_id}/publish", "401 200 200 404 403 403 403",
        path="/v1/opportunities/{draft_offer}/publish",
        fresh=fresh(lambda w: w.opportunity(status="submitted"), "draft_offer")),
    row("matchmaking", "POST", "/v1/opportunities/{opportunity_id}/reject", "401 200 200 404 403 403 403",
        path="/v1/opportunities/{draft_offer}/reject", body={"reason": "Say which tracers"},
        fresh=fresh(lambda w: w.opportunity(status="submitted"), "draft_offer")),
    *[row("matchmaking", "POST", f"/v1/opportunities/{{opportunity_id}}/{action}", "401 200 200 403 200 403 403",
          path=f"/v1/opportunities/{{offer}}/{action}", fresh=fresh(World.opportunity, "offer"))
      for action in ("renew", "close")],
    row("matchmaking", "GET", "/v1/opportunities/{opportunity_id}/history", "401 200 200 403 200 403 403",
        path="/v1/opportunities/{offer}/history"),
    row("matchmaking", "POST", "/v1/opportunities/{opportunity_id}/interests", "401 201 403 403 201 403 403",
        path="/v1/opportunities/{offer}/interests",
        body={"organisation_id": "{iba}", "contact_id": "{anne}", "message": "We would like to distribute it."},
        fresh=fresh(lambda w: w.opportunity(organisation="uliege", contact="bruno"), "offer")),
    row("matchmaking", "GET", "/v1/opportunities/{opportunity_id}/interests", "401 200 200 403 200 403 403",
        path="/v1/opportunities/{offer}/interests"),
    row("matchmaking", "GET", "/v1/interests/{interest_id}", "401 200 200 404 200 404 403",
        path="/v1/interests/{interest}"),
    *[row("matchmaking", "POST", f"/v1/interests/{{interest_id}}/{action}", "401 200 200 404 200 404 403",
          path=f"/v1/interests/{{interest}}/{action}", fresh=fresh(_interest, "interest"))
      for action in ("accept", "decline")],
    # ---- matchmaking: calls, recommendations
    row("matchmaking", "POST", "/v1/calls", "401 201 403 403 403 403 403",
        body=lambda ids: {"call_id": f"EU4H-{uuid.uuid4().hex[:8]}", "programme": "eu4health",
                          "title": "Cancer screening", "deadline": "2026-10-01"}),
    row("matchmaking", "GET", "/v1/calls", EVERYONE),
    row("matchmaking", "GET", "/v1/calls/{call_id}", EVERYONE, path="/v1/calls/{call}"),
    row("matchmaking", "PATCH", "/v1/calls/{call_id}", "401 200 403 403 403 403 403", path="/v1/calls/{call}",
        etag=True, body={"description": "Biomarkers from PET and MRI"}),
    row("matchmaking", "GET", "/v1/recommendations/partners", "401 200 200 200 200 200 403",
        params={"text": "cyclotron tracers"}),
    row("matchmaking", "GET", "/v1/recommendations/partners", "401 200 200 404 200 404 403",
        params={"opportunity": "{draft_offer}"}, name="(for a draft)"),
    row("matchmaking", "POST", "/v1/consortia/proposals", "401 200 200 200 200 200 403",
        body={"call_id": "{call}", "lead_organisation_id": "{iba}"}),
    row("matchmaking", "GET", "/v1/events/{event_id}/participants/{participant_id}/meeting-suggestions",
        "401 200 200 404 200 404 403", path="/v1/events/{event}/participants/{p_iba}/meeting-suggestions"),
    row("matchmaking", "GET", "/v1/index", "401 200 403 403 403 403 403"),
]


# ---- federation (services/registry/federation, services/events/federation.py): BioWin shares a
# joint event with Medicen; Medicen's system has a webhook; Medicen's side received the event.

async def _seed_federation(world: World, store: Store) -> None:
    from services.registry.federation import feed, signing

    ids = world.ids
    ids["joint_event"] = await world.event()
    ids["fed_agreement"] = (await world.post("registry", "/v1/agreements", {
        "owner_cluster_id": ids["biowin"], "partner_cluster_id": ids["medicen"], "event_ids": [ids["joint_event"]],
        "public_profiles": True}, role="manager"))["id"]
    ids["fed_webhook"] = (await world.post("registry", "/v1/webhooks", {"url": "http://127.0.0.1:9/hook"},
                                           role="partner"))["id"]
    await anyio.to_thread.run_sync(feed.subscription(store.db, "urn:clusterhub:matrix").catch_up)
    deliveries = await world.call("registry", "GET", "/v1/webhook-deliveries")
    ids["fed_delivery"] = deliveries["data"][0]["id"]
    secret = "whsec_matrix-0123456789abcdefghijklmnop"
    await world.post("registry", "/v1/federation/peers", {
        "local_cluster_id": ids["medicen"], "remote_cluster_id": ids["biowin"], "source": "urn:clusterhub:matrix",
        "secret": secret}, role="manager_other")
    item = (await world.call("registry", "GET", "/v1/feed", role="partner"))["data"][1]
    assert item["type"] == "eu.clusterhub.events.EventShared", item
    body = json.dumps(item).encode()
    response = await world.http["registry"].post("/v1/federation/inbox", content=body, headers={
        "Content-Type": "application/cloudevents+json", signing.HEADER: signing.sign(secret, body)})
    assert response.status_code == 200 and response.json()["status"] == "recorded", response.text


async def _fresh_agreement(world: World) -> str:
    return (await world.post("registry", "/v1/agreements", {
        "owner_cluster_id": world.ids["biowin"], "partner_cluster_id": f"partner-{uuid.uuid4().hex[:12]}"}))["id"]


async def _fresh_webhook(world: World) -> str:
    return (await world.post("registry", "/v1/webhooks", {"url": "http://127.0.0.1:9/hook",
                                                          "partner_cluster_id": world.ids["medicen"]}))["id"]


def _federated_registration(ids: Ids) -> dict[str, Any]:
    return {"organisation_id": ids["guerbet"], "organisation_name": "Guerbet", "contact_id": str(uuid.uuid4()),
            "name": "Claire Dupont", "email": "claire@guerbet.example"}


_inbox_body = {"specversion": "1.0", "id": "forged-1", "source": "urn:clusterhub:matrix",
               "type": "eu.clusterhub.events.EventShared", "data": {"event_id": "{joint_event}"}}

ROWS += [
    row("registry", "POST", "/v1/agreements", "401 201 201 403 403 403 403",
        body=lambda ids: {"owner_cluster_id": ids["biowin"], "partner_cluster_id": f"p-{uuid.uuid4().hex[:12]}",
                          "event_ids": [ids["joint_event"]]}),
    row("registry", "GET", "/v1/agreements", "401 200 200 200 403 403 200"),
    row("registry", "GET", "/v1/agreements/{agreement_id}", "401 200 200 200 403 403 200",
        path="/v1/agreements/{fed_agreement}"),
    row("registry", "PATCH", "/v1/agreements/{agreement_id}", "401 200 200 403 403 403 403",
        path="/v1/agreements/{fed_agreement}", etag=True, body={"shareable_opportunities": True},
        fresh=fresh(_fresh_agreement, "fed_agreement")),
    row("registry", "POST", "/v1/agreements/{agreement_id}/end", "401 200 200 403 403 403 403",
        path="/v1/agreements/{fed_agreement}/end", body={}, fresh=fresh(_fresh_agreement, "fed_agreement")),
    row("registry", "GET", "/v1/feed", "401 200 403 403 403 403 200", params={"partner_cluster_id": "{medicen}"}),
    row("registry", "POST", "/v1/webhooks", "401 201 403 403 403 403 201",
        body={"url": "https://hooks.medicen.test/clusterhub", "partner_cluster_id": "{medicen}"}),
    row("registry", "GET", "/v1/webhooks", "401 200 403 403 403 403 200"),
    row("registry", "DELETE", "/v1/webhooks/{webhook_id}", "401 204 403 403 403 403 204",
        path="/v1/webhooks/{fed_webhook}", fresh=fresh(_fresh_webhook, "fed_webhook")),
    row("registry", "GET", "/v1/webhook-deliveries", "401 200 200 200 403 403 403"),
    row("registry", "POST", "/v1/webhook-deliveries/{delivery_id}/replay", "401 202 202 404 403 403 403",
        path="/v1/webhook-deliveries/{fed_delivery}/replay"),
    row("registry", "POST", "/v1/federation/peers", "401 201 201 403 403 403 403",
        body={"local_cluster_id": "{biowin}", "remote_cluster_id": "imago", "source": "https://hub.imago.test",
              "secret": "whsec_imago-0123456789abcdefghijklmn"}),
    row("registry", "GET", "/v1/federation/peers", "401 200 200 200 403 403 403"),
    # Authenticated by its signature alone: unsigned, everyone is refused, bearer token or not.
    row("registry", "POST", "/v1/federation/inbox", "401 401 401 401 401 401 401", body=_inbox_body),
    row("registry", "GET", "/v1/federation/events", "401 200 200 200 200 200 403"),
    row("registry", "POST", "/v1/federation/events/{event_id}/registrations", "401 404 404 404 404 404 403",
        path="/v1/federation/events/{draft_event}/registrations",
        body={"organisation_id": "{guerbet}", "contact_id": "{anne}"}),
    row("registry", "GET", "/v1/federation/events/{event_id}/registrations", "401 200 404 200 404 200 403",
        path="/v1/federation/events/{joint_event}/registrations"),
    row("events", "POST", "/v1/events/{event_id}/federated-registrations", "401 201 403 403 403 403 201",
        path="/v1/events/{joint_event}/federated-registrations", body=_federated_registration),
    row("events", "POST", "/v1/events/{event_id}/federated-registrations", "401 201 403 403 403 403 404",
        path="/v1/events/{event}/federated-registrations", body=_federated_registration, name="(not shared)"),
]

# ---- GDPR (services/registry/persons.py): erasure, export and consents of a contact person.
# Erasing is for platform admins and the person's cluster managers; members may read the export
# and record consents of their organisation's people.
ROWS += [
    row("registry", "DELETE", "/v1/persons/{person_id}", "401 204 204 404 403 403 403",
        path="/v1/persons/{contact}", fresh=fresh(lambda w: w.contact(w.ids["iba"]), "contact")),
    row("registry", "GET", "/v1/persons/{person_id}/export", "401 200 200 404 200 404 403",
        path="/v1/persons/{anne}/export"),
    row("registry", "PUT", "/v1/persons/{person_id}/consents", "401 200 200 404 200 404 403",
        path="/v1/persons/{anne}/consents", body={"newsletter": True, "share_profile_with_partner_clusters": False}),
]


# --------------------------------------------------------------------------------------------
# The checks


def _format(value: Any, ids: Ids) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_format(item, ids) for item in value]
    if isinstance(value, dict):
        return {key: _format(item, ids) for key, item in value.items()}
    return value


async def request(world: World, spec: Row, role: str, expected: int) -> httpx.Response:
    ids = dict(world.ids)
    if spec.fresh is not None and expected < 300:
        ids.update(await spec.fresh(world, role))
    path = (spec.path or spec.route).format(**ids)
    headers = dict(world.tokens[role])
    if spec.etag:
        headers["If-Match"] = await world.etag(spec.service, path if spec.etag is True else spec.etag.format(**ids))
    kwargs: dict[str, Any] = {"headers": headers, "params": _format(spec.params, ids)}
    if spec.body is not None:
        kwargs["json"] = spec.body(ids) if callable(spec.body) else _format(spec.body, ids)
    if spec.form is not None:
        kwargs["data"] = _format(spec.form, ids)
    if spec.csv is not None:
        kwargs["content"], headers["Content-Type"] = spec.csv(), "text/csv"
    return await world.http[spec.service].request(spec.method, path, **kwargs)


@pytest.mark.parametrize("spec", ROWS, ids=lambda spec: spec.id)
async def test_route(world: World, spec: Row) -> None:
    wrong = []
    for role, expected in zip(ROLES, spec.expect, strict=True):
        response = await request(world, spec, role, expected)
        if response.status_code != expected:
            wrong.append(f"{role}: {response.status_code}, expected {expected}: {response.text[:300]}")
        elif expected in (401, 403, 404):
            assert response.headers["content-type"] == "application/problem+json", (role, response.text)
            if expected == 401:
                assert response.headers["www-authenticate"].startswith("Bearer"), role
    assert not wrong, "\n".join(wrong)


def _apps(world: World) -> dict[str, FastAPI]:
    return world.apps


def _routes(app: FastAPI) -> list[tuple[str, str, Any]]:
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        for method in sorted(getattr(route, "methods", None) or []):
            if method != "HEAD":
                found.append((method, context.path, route))
    return found


async def test_every_route_has_a_row(world: World) -> None:
    """A new endpoint without a row in this matrix fails the suite."""
    covered = {(spec.service, spec.method, spec.route) for spec in ROWS}
    missing = [f"{service} {method} {path}" for service, app in _apps(world).items()
               for method, path, _ in _routes(app) if (service, method, path) not in covered]
    assert not missing, "routes without a row in the authorisation matrix:\n" + "\n".join(missing)
    declared = {(service, method, path) for service, app in _apps(world).items()
                for method, path, _ in _routes(app)}
    assert covered <= declared, f"rows for routes that do not exist: {sorted(covered - declared)}"


async def test_every_route_declares_a_policy(world: World) -> None:
    """Deny by default: each API route names who may call it, with `shared.auth.allow`."""
    def has_policy(dependant: Any) -> bool:
        return any(hasattr(dep.call, "roles") or has_policy(dep) for dep in dependant.dependencies)

    missing = [f"{service} {method} {path}" for service, app in _apps(world).items()
               for method, path, route in _routes(app)
               if isinstance(route, APIRoute) and path not in NO_POLICY and not has_policy(route.dependant)]
    assert not missing, "routes without a policy:\n" + "\n".join(missing)


async def test_lists_show_each_caller_only_what_is_theirs_or_public(world: World) -> None:
    ids = world.ids

    async def listed(service: str, path: str, role: str, **params: str) -> list[dict[str, Any]]:
        response = await world.http[service].get(path, params={"limit": "200", **params}, headers=world.tokens[role])
        assert response.status_code == 200, response.text
        return response.json()["data"]

    async def organisations(role: str, **params: str) -> set[str]:
        return {o["id"] for o in await listed("registry", "/v1/organisations", role, **params)}

    for role in ("anonymous", "manager_other", "member", "partner"):
        assert {ids["iba"], ids["guerbet"]} <= await organisations(role)
        assert ids["prospect"] not in await organisations(role)
    assert ids["prospect"] in await organisations("manager")
    # Membership filters reveal only active (public) memberships, or the caller's own.
    assert await organisations("anonymous", cluster=ids["biowin"], membership_status="applied") == set()
    assert await organisations("manager_other", cluster=ids["biowin"], membership_status="applied") == set()
    assert ids["prospect"] in await organisations("manager", cluster=ids["biowin"], membership_status="applied")

    assert {m["organisation_id"] for m in await listed("registry", "/v1/memberships", "member")} == {ids["iba"]}
    assert {m["cluster_id"] for m in await listed("registry", "/v1/memberships", "manager_other")} == {
        ids["medicen"]}
    assert await listed("registry", "/v1/connections", "member_other") == []
    assert await listed("registry", "/v1/working-groups", "manager_other") == []
    export = await world.http["registry"].get("/v1/organisation-exports", params={"format": "json"},
                                               headers=world.tokens["manager_other"])
    exported = {o["id"] for o in export.json()}
    assert ids["guerbet"] in exported and not exported & {ids["iba"], ids["uliege"], ids["prospect"]}

    public_events = await listed("events", "/v1/events", "anonymous")
    assert ids["event"] in {e["id"] for e in public_events}
    assert all(e["status"] != "draft" and not e["members_only"] for e in public_events)
    assert ids["draft_event"] in {e["id"] for e in await listed("events", "/v1/events", "manager")}
    assert await listed("events", f"/v1/events/{ids['event']}/meetings", "member_other") == []
    mine = await listed("events", f"/v1/events/{ids['event']}/meetings", "member")
    participants_of_iba = {p["id"] for p in await listed("events", f"/v1/events/{ids['event']}/registrations",
                                                          "admin") if p["organisation_id"] == ids["iba"]}
    assert mine and all({m["requester_id"], m["receiver_id"]} & participants_of_iba for m in mine)

    public_offers = await listed("matchmaking", "/v1/opportunities", "anonymous")
    assert all(o["status"] == "published" and o["visibility"] == "public" for o in public_offers)
    assert ids["draft_offer"] in {o["id"] for o in await listed("matchmaking", "/v1/opportunities", "member")}
    assert ids["draft_offer"] not in {o["id"] for o in await listed("matchmaking", "/v1/opportunities",
                                                                    "member_other")}
