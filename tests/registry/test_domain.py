"""The registry's rules, called the way the importer and the demo seeder call them: no HTTP."""
from __future__ import annotations

import uuid
from datetime import date

import pytest

from services.registry import domain
from services.registry.domain import Membership, Organisation
from services.registry.events import OrganisationRegistered
from services.registry.models import (
    ClusterCreate,
    MembershipActivate,
    MembershipCreate,
    MembershipRenew,
    OrganisationCreate,
    OrganisationUpdate,
)
from services.registry.projections import PROJECTORS
from shared.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from shared.eventlog import ConcurrencyError, EventLog, Metadata, decode_event
from tests.conftest import Store
from tests.registry.conftest import BIOWIN, IBA

META = Metadata(actor="importer", service="registry")
NAMESPACE = uuid.UUID("6f1c2a52-8d0e-4a55-9d4c-0c2b7f3e9a10")


@pytest.fixture
def log(store: Store) -> EventLog:
    return EventLog(store.db.dialect, projectors=PROJECTORS)


def test_given_ids_make_registration_deterministic_and_not_repeatable(store: Store, log: EventLog) -> None:
    organisation_id = str(uuid.uuid5(NAMESPACE, "pic:999975526"))
    with store.db.writing() as conn:
        registered = domain.register_organisation(conn, log, OrganisationCreate(**IBA), META,
                                                  organisation_id=organisation_id)
    assert registered.id == organisation_id and registered.version == 1

    with pytest.raises(Conflict), store.db.writing() as conn:
        domain.register_organisation(conn, log, OrganisationCreate(**IBA), META, organisation_id=organisation_id)


def test_update_folds_the_stream_and_checks_the_expected_version(store: Store, log: EventLog) -> None:
    with store.db.writing() as conn:
        iba = domain.register_organisation(conn, log, OrganisationCreate(**IBA), META)
        domain.update_organisation(conn, log, iba.id, 1, OrganisationUpdate(short_name="IBA Group"), META)
        loaded = Organisation.load(conn, log, iba.id)
        assert (loaded.version, loaded.fields["short_name"]) == (2, "IBA Group")
        with pytest.raises(PreconditionFailed) as stale:
            domain.update_organisation(conn, log, iba.id, 1, OrganisationUpdate(short_name="x"), META)
        assert stale.value.extensions["current_version"] == 2
        with pytest.raises(NotFound):
            domain.archive_organisation(conn, log, str(uuid.uuid4()), 1, META)


def test_a_writer_that_loaded_an_older_version_gets_a_conflict_not_a_lost_update(store: Store, log: EventLog) -> None:
    with store.db.writing() as conn:
        iba = domain.register_organisation(conn, log, OrganisationCreate(**IBA), META)
        first = Organisation.load(conn, log, iba.id)
        second = Organisation.load(conn, log, iba.id)
        first.save(conn, log, first.update(OrganisationUpdate(short_name="IBA Group")), META)
        with pytest.raises(ConcurrencyError) as conflict:
            second.save(conn, log, second.update(OrganisationUpdate(short_name="Ion Beam")), META)
    assert conflict.value.status == 409 and conflict.value.current_version == 2


def test_membership_periods(store: Store, log: EventLog) -> None:
    with store.db.writing() as conn:
        cluster = domain.register_cluster(conn, log, ClusterCreate(**BIOWIN), META)
        iba = domain.register_organisation(conn, log, OrganisationCreate(**IBA), META)
        applied = domain.apply_membership(conn, log, MembershipCreate(
            organisation_id=iba.id, cluster_id=cluster.id, fee_category="large_company", yearly_fee="2500"), META)
        assert applied.applied_on == domain.today()
        with pytest.raises(InvalidInput) as early:
            domain.activate_membership(conn, log, applied.id, MembershipActivate(
                on=date(2024, 3, 1), period_end=date(2024, 2, 1)), META)
        assert early.value.extensions["errors"][0]["field"] == "body.period_end"
        active = domain.activate_membership(conn, log, applied.id, MembershipActivate(
            on=date(2024, 3, 1), period_end=date(2025, 2, 28)), META)
        assert active.period_end == date(2025, 2, 28)
        renewed = domain.renew_membership(conn, log, applied.id, MembershipRenew(), META)
        assert renewed.period_end == date(2026, 2, 28) and str(renewed.yearly_fee) == "2500.00"
        with pytest.raises(InvalidInput):
            domain.renew_membership(conn, log, applied.id, MembershipRenew(period_end=date(2026, 1, 1)), META)
        assert Membership.load(conn, log, applied.id).status == "active"


def test_a_stored_v1_organisation_event_reads_as_v2() -> None:
    v1 = {"organisation_id": "5e1f3c9a-3a43-4d35-8f0e-3f3f0f6a1b11", "name": "Université de Liège",
          "kind": "university", "country": "BE"}

    event = decode_event("registry.OrganisationRegistered", 1, v1)

    assert isinstance(event, OrganisationRegistered)
    assert (event.legal_name, event.short_name) == ("Université de Liège", None)
    assert OrganisationRegistered.schema_version == 2
