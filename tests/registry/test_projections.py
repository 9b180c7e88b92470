"""Read models: rebuilt from the log they equal the live ones; old event versions project as new."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, select

from services.registry.projections import PROJECTORS, TABLES
from shared.eventlog import EventLog, Metadata, verify_chain
from shared.subscriptions import rebuild_projections
from shared.tables import metadata
from tests.conftest import Store
from tests.registry.conftest import BIOWIN, GUERBET, IBA, MEDICEN, ULIEGE, created


def snapshot(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    return {table.name: [dict(row) for row in conn.execute(
        select(table).order_by(*table.primary_key.columns)).mappings()] for table in TABLES}


async def write_a_bit_of_everything(client: httpx.AsyncClient) -> None:
    biowin = await created(client, "/v1/clusters", BIOWIN)
    medicen = await created(client, "/v1/clusters", MEDICEN)
    await client.patch(f"/v1/clusters/{medicen['id']}", json={"website": "https://medicen.org"},
                       headers={"If-Match": '"1"'})
    iba = await created(client, "/v1/organisations", IBA)
    uliege = await created(client, "/v1/organisations", ULIEGE)
    guerbet = await created(client, "/v1/organisations", GUERBET)
    await client.patch(f"/v1/organisations/{iba['id']}", headers={"If-Match": '"1"'},
                       json={"roles": ["manufacturer_oem", "service_provider"], "keywords": ["gantry"]})
    await client.post(f"/v1/organisations/{guerbet['id']}/archive", headers={"If-Match": '"1"'})
    anne = await created(client, f"/v1/organisations/{iba['id']}/contacts", {"name": "Anne Dupont"})
    luc = await created(client, f"/v1/organisations/{uliege['id']}/contacts",
                        {"name": "Luc Martin", "email": "l@uliege.be"})
    await client.delete(f"/v1/persons/{luc['id']}")  # erased: the rebuild reads "erased" too
    await client.patch(f"/v1/contacts/{anne['id']}", json={"position": "CTO"}, headers={"If-Match": '"1"'})
    await client.put(f"/v1/persons/{anne['id']}/consents",
                     json={"newsletter": True, "share_profile_with_partner_clusters": False})
    bart = await created(client, f"/v1/organisations/{iba['id']}/contacts", {"name": "Bart Peeters"})
    await client.delete(f"/v1/contacts/{bart['id']}", headers={"If-Match": '"1"'})
    fee = {"fee_category": "research_institution", "yearly_fee": "800"}
    membership = await created(client, "/v1/memberships", {"organisation_id": uliege["id"],
                                                           "cluster_id": biowin["id"], **fee})
    await client.post(f"/v1/memberships/{membership['id']}/activate")
    await client.post(f"/v1/memberships/{membership['id']}/renew")
    await client.post(f"/v1/memberships/{membership['id']}/suspend", json={"reason": "fee unpaid"})
    await created(client, "/v1/memberships", {"organisation_id": iba["id"], "cluster_id": medicen["id"], **fee})
    connection = await created(client, "/v1/connections", {"source_id": uliege["id"], "target_id": iba["id"],
                                                           "kind": "partner_of"})
    await client.post(f"/v1/connections/{connection['id']}/end")
    group = await created(client, "/v1/working-groups", {"cluster_id": biowin["id"], "name": "Connected Health"})
    for organisation in (iba, uliege):
        await client.post(f"/v1/working-groups/{group['id']}/members", json={"organisation_id": organisation["id"]})
    await client.delete(f"/v1/working-groups/{group['id']}/members/{iba['id']}")


async def test_rebuilt_read_models_equal_the_live_ones(store: Store, client: httpx.AsyncClient) -> None:
    await write_a_bit_of_everything(client)
    with store.db.reading() as conn:
        live = snapshot(conn)
    assert all(live[table.name] for table in TABLES), "every table should hold rows"

    replayed = rebuild_projections(store.db, EventLog(store.db.dialect), PROJECTORS)

    with store.db.reading() as conn:
        assert snapshot(conn) == live
        assert verify_chain(conn).ok
    assert replayed > 20


@dataclass
class StoredV1:
    """What code before schema v2 appended: an OrganisationRegistered with a single `name`."""

    event_type: ClassVar[str] = "registry.OrganisationRegistered"
    schema_version: ClassVar[int] = 1
    data: dict[str, Any]

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        return self.data


async def test_a_v1_organisation_projects_as_v2_live_and_on_rebuild(store: Store, client: httpx.AsyncClient) -> None:
    organisation_id = "5e1f3c9a-3a43-4d35-8f0e-3f3f0f6a1b11"
    v1 = {"organisation_id": organisation_id, "name": "Université de Liège", "kind": "university",
          "roles": ["researcher"], "competencies": ["pet"], "country": "BE", "nuts_region": "BE33"}
    log = EventLog(store.db.dialect, projectors=PROJECTORS)
    with store.db.writing() as conn:
        log.append(conn, f"organisation-{organisation_id}", "registry.Organisation", 0, [StoredV1(v1)],  # type: ignore[list-item]
                   Metadata(actor="legacy-import"))
        stored = log.read_stream(conn, f"organisation-{organisation_id}")[0]
    assert (stored.schema_version, stored.data["name"]) == (1, "Université de Liège")
    assert stored.event.legal_name == "Université de Liège"

    rebuild_projections(store.db, log, PROJECTORS)

    read = (await client.get(f"/v1/organisations/{organisation_id}")).json()
    assert (read["legal_name"], read["short_name"], read["version"]) == ("Université de Liège", None, 1)
    found = (await client.get("/v1/organisations", params={"q": "liege", "role": "researcher"})).json()["data"]
    assert [o["id"] for o in found] == [organisation_id]
    # The aggregate folds the v1 event too, so the record can be changed as usual.
    updated = await client.patch(f"/v1/organisations/{organisation_id}", json={"short_name": "ULiège"},
                                 headers={"If-Match": '"1"'})
    assert updated.status_code == 200, updated.text
    assert updated.json()["legal_name"] == "Université de Liège"


def test_migrations_create_exactly_the_projection_tables(store: Store) -> None:
    registry = MetaData()
    for table in TABLES:
        table.to_metadata(registry)
    with store.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, registry)
                       if not (d[0] == "remove_table" and not d[1].name.startswith("registry_"))
                       and not (d[0] == "remove_index" and not d[1].table.name.startswith("registry_"))]
    assert differences == []
    assert {t.name for t in TABLES} <= set(metadata.tables)
