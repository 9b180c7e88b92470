"""Demo data: plausible, deterministic, loaded through the domain, and loaded only once."""
from __future__ import annotations

from collections import Counter

import httpx
from sqlalchemy import func, select

from services.registry.demo import CLUSTERS, LOCALES, demo_id, generate_demo, seed_demo
from services.registry.models import ConnectionCreate, ContactCreate, OrganisationCreate
from services.registry.projections import (
    PROJECTORS,
    clusters,
    contacts,
    memberships,
    organisations,
    working_group_members,
)
from services.registry.vocabulary import OrganisationKind
from shared.eventlog import EventLog, verify_chain
from shared.text import name_key
from tests.conftest import Store


class TestGeneration:
    def test_the_seven_clusters_with_their_regions(self) -> None:
        regions = {c.acronym: (c.country, c.nuts_region) for c in CLUSTERS}
        assert regions == {
            "BioWin": ("BE", "BE3"), "Medicen": ("FR", "FR10"), "IMAGO-MOL": ("RO", "RO21"), "MN": ("ES", "ES30"),
            "BioRegioN": ("DE", "DE9"), "Pharmapolis": ("HU", "HU32"), "FILAS": ("IT", "ITI4"),
        }
        assert set(LOCALES) == {c.country for c in CLUSTERS}

    def test_a_few_hundred_valid_organisations_of_every_kind(self) -> None:
        data = generate_demo()
        assert 300 <= len(data.organisations) <= 400
        kinds = Counter(o.data["kind"] for o in data.organisations)
        assert set(kinds) == {k.value for k in OrganisationKind}
        assert kinds["company"] == max(kinds.values())
        keys = [f"{o.data['country']}:{name_key(o.data['legal_name'])}" for o in data.organisations]
        assert len(set(keys)) == len(keys), "names must not collide under the importer's match rule"
        for organisation in data.organisations:
            OrganisationCreate.model_validate(organisation.data)
            assert 1 <= len(organisation.contacts) <= 2
            for contact in organisation.contacts:
                assert ContactCreate.model_validate(contact).email.endswith(".example")  # type: ignore[union-attr]
        for connection in data.connections:
            ConnectionCreate.model_validate({k: v for k, v in connection.items() if k != "id"})
        assert any(o.data.get("pic") for o in data.organisations) and any(o.data.get("vat") for o in data.organisations)

    def test_some_organisations_belong_to_both_biowin_and_medicen(self) -> None:
        joint = [o for o in generate_demo().organisations if len(o.clusters) > 1]
        assert joint and all(sorted(o.clusters) == ["BioWin", "Medicen"] for o in joint)
        assert {o.data["country"] for o in joint} == {"BE", "FR"}

    def test_the_same_seed_gives_the_same_data_and_ids(self) -> None:
        first, second = generate_demo(), generate_demo()
        assert [(o.id, o.data, o.contacts) for o in first.organisations] == \
               [(o.id, o.data, o.contacts) for o in second.organisations]
        assert first.connections == second.connections and first.working_groups == second.working_groups
        assert demo_id("cluster", "BioWin") == first.clusters[0][0]

    def test_names_read_as_the_countrys_own(self) -> None:
        names = {o.data["legal_name"] for o in generate_demo().organisations}
        assert "Université de Liège" in names and "Debreceni Egyetem" in names
        assert any(n.endswith(" GmbH") for n in names) and any(n.endswith(" Kft.") for n in names)
        assert any(n.startswith("Spitalul ") for n in names) and any(n.startswith("Ospedale ") for n in names)


def _count(conn, table, *where) -> int:  # type: ignore[no-untyped-def]
    return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_seed_demo_loads_everything_once(store: Store) -> None:
    log = EventLog(store.db.dialect, projectors=PROJECTORS)
    progress: list[tuple[int, int]] = []
    counts = seed_demo(store.db, log, progress=lambda done, total: progress.append((done, total)))
    expected = generate_demo()
    assert counts["clusters"] == 7 and counts["organisations"] == len(expected.organisations)
    assert counts["memberships"] == sum(len(o.clusters) for o in expected.organisations)
    assert counts["connections"] == len(expected.connections) and counts["working_groups"] == 21
    assert progress[-1][0] == progress[-1][1] and len(progress) > 1
    with store.db.reading() as conn:
        assert _count(conn, clusters) == 7
        assert _count(conn, organisations) == counts["organisations"]
        assert _count(conn, contacts) == counts["contacts"]
        assert _count(conn, memberships, memberships.c.status == "active") == counts["memberships"]
        assert _count(conn, working_group_members) == counts["working_group_members"]
        assert verify_chain(conn).ok

    again = seed_demo(store.db, log)
    assert again == {"skipped": True, "organisations": counts["organisations"]}
    with store.db.reading() as conn:
        assert _count(conn, organisations) == counts["organisations"]


async def test_every_listing_has_something_to_show(store: Store, client: httpx.AsyncClient) -> None:
    seed_demo(store.db, EventLog(store.db.dialect, projectors=PROJECTORS), organisations_per_cluster=15)
    biowin = demo_id("cluster", "BioWin")
    for path, params in [
        ("/v1/clusters", {}),
        ("/v1/organisations", {"country": "BE"}),
        ("/v1/memberships", {"cluster_id": biowin}),
        ("/v1/connections", {}),
        ("/v1/working-groups", {"cluster_id": biowin}),
    ]:
        response = await client.get(path, params=params)
        assert response.status_code == 200, (path, response.text)
        assert response.json()["data"], path
