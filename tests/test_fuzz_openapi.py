"""API fuzzing: schemathesis generates requests from each service's own OpenAPI schema and sends
them, authenticated as a platform admin, to the app in process over a migrated empty store (SQLite
and PostgreSQL). No request may get a 5xx, and every response must match what the schema declares.

Examples per operation are bounded so the file stays well under a minute and a half; the point is
breadth over every route and both stores, not depth."""
from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from services.events.app import create_app as create_events_app
from services.events.settings import EventsSettings
from services.matchmaking.app import create_app as create_matchmaking_app
from services.matchmaking.settings import MatchmakingSettings
from services.registry.app import create_app as create_registry_app
from services.registry.settings import RegistrySettings
from tests.conftest import Store, auth_headers

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# CLUSTERHUB_FUZZ_EXAMPLES=50 digs deeper, by hand; make test keeps to a few per operation.
BOUNDED = settings(max_examples=int(os.environ.get("CLUSTERHUB_FUZZ_EXAMPLES", "5")), deadline=None, derandomize=True,
                   suppress_health_check=list(HealthCheck))


def _schema(app):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def registry_schema(module_store: Store):  # type: ignore[no-untyped-def]
    return _schema(create_registry_app(RegistrySettings(rate_limit_per_minute=0), db=module_store.db))


@pytest.fixture(scope="module")
def events_schema(module_store: Store):  # type: ignore[no-untyped-def]
    # The registry it asks runs in process on the same store (ASGI transport, no socket).
    registry = create_registry_app(RegistrySettings(rate_limit_per_minute=0), db=module_store.db)
    to_registry = httpx.AsyncClient(transport=httpx.ASGITransport(app=registry), base_url="http://registry.test")
    return _schema(create_events_app(EventsSettings(rate_limit_per_minute=0, registry_backoff=0.01),
                                     db=module_store.db, registry=to_registry))


@pytest.fixture(scope="module")
def matchmaking_schema(module_store: Store):  # type: ignore[no-untyped-def]
    # The events service it asks, and the registry that one asks, run in process on the same store.
    registry = create_registry_app(RegistrySettings(rate_limit_per_minute=0), db=module_store.db)
    to_registry = httpx.AsyncClient(transport=httpx.ASGITransport(app=registry), base_url="http://registry.test")
    events_app = create_events_app(EventsSettings(rate_limit_per_minute=0, registry_backoff=0.01),
                                   db=module_store.db, registry=to_registry)
    events = httpx.AsyncClient(transport=httpx.ASGITransport(app=events_app), base_url="http://events.test",
                               headers=auth_headers())
    return _schema(create_matchmaking_app(MatchmakingSettings(rate_limit_per_minute=0, events_backoff=0.01),
                                          db=module_store.db, events=events))


def fuzz(schema) -> None:  # type: ignore[no-untyped-def]
    """Every operation, valid and invalid data; all failures are reported together.

    A loop over operations rather than schemathesis's `@schema.parametrize()`: its pytest plugin
    (4.32) reads `request.node._nodeid`, which pytest 9 no longer has."""
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @BOUNDED
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case) -> None:  # type: ignore[no-untyped-def]
                case.call_and_validate(headers=auth_headers(), checks=CHECKS)
            try:
                check()
            except Unsatisfiable:
                pass  # nothing to make invalid (no parameters, no body)
            except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - reported all at once
                causes = getattr(error, "exceptions", [])
                failures.append(f"{operation.label} [{mode.value}]: {error}" + "".join(f"\n  {c!r}" for c in causes))
    assert not failures, "\n\n".join(failures)


def test_registry(registry_schema) -> None:  # type: ignore[no-untyped-def]
    fuzz(registry_schema)


def test_events(events_schema) -> None:  # type: ignore[no-untyped-def]
    fuzz(events_schema)


def test_matchmaking(matchmaking_schema) -> None:  # type: ignore[no-untyped-def]
    fuzz(matchmaking_schema)
