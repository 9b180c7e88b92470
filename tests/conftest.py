"""Test stores: a fresh SQLite file per test, and a fresh database per test on one real PostgreSQL
15 server started for the session (see tests/support/postgres.py). No backend is ever skipped."""
from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from shared.auth import PLATFORM_ADMIN, Tokens
from shared.db import Database
from shared.migrate import upgrade
from shared.settings import CommonSettings
from tests.support.postgres import PostgresServer

APP_ROLE = "clusterhub_app"
TEMPLATE = "clusterhub_template"
_counter = itertools.count()
# The services under test read their keys from the environment, as in production.
TEST_SIGNING_KEYS = "test-1:clusterhub-test-signing-key-0123456789abcdef"


def pytest_configure(config: pytest.Config) -> None:
    os.environ["CLUSTERHUB_AUTH_SIGNING_KEYS"] = TEST_SIGNING_KEYS


def auth_headers(role: str = PLATFORM_ADMIN, *, cluster: str | None = None, organisation: str | None = None,
                 subject: str | None = None, expires_in: int | None = None) -> dict[str, str]:
    """`Authorization: Bearer …` for a token signed with the test key (a platform admin unless told)."""
    token = Tokens.from_settings(CommonSettings()).issue(
        subject=subject or f"{role}@test", roles=[role], cluster=cluster, organisation=organisation,
        expires_in=expires_in)
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Store:
    """A migrated, empty store: `db` connects as the services do; `admin_url` as its owner."""

    backend: str
    db: Database
    admin_url: str

    def admin(self) -> Database:
        return Database(self.admin_url)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    try:
        with psycopg.connect(server.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN")
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        template = Database(server.url(TEMPLATE))
        upgrade(template.engine, app_role=APP_ROLE)
        template.dispose()
        yield server
    finally:
        server.stop()


def _postgres_store(server: PostgresServer) -> Store:
    name = f"test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(server.url().replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return Store("postgres", Database(server.url(name, user=APP_ROLE), pool_size=5), server.url(name))


def _sqlite_store(tmp_path) -> Store:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'clusterhub.db'}"
    db = Database(url)
    upgrade(db.engine)
    return Store("sqlite", db, url)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    """The same test runs once on each backend."""
    if request.param == "sqlite":
        made = _sqlite_store(tmp_path)
    else:
        made = _postgres_store(request.getfixturevalue("postgres_server"))
    try:
        yield made
    finally:
        made.db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_store(request, tmp_path_factory) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    """One store per backend for a whole module, for tests that share one seeded world."""
    if request.param == "sqlite":
        made = _sqlite_store(tmp_path_factory.mktemp("module_store"))
    else:
        made = _postgres_store(request.getfixturevalue("postgres_server"))
    try:
        yield made
    finally:
        made.db.dispose()


@pytest.fixture
def postgres_store(postgres_server) -> Iterator[Store]:
    """For what only PostgreSQL has (role grants, TRUNCATE)."""
    made = _postgres_store(postgres_server)
    try:
        yield made
    finally:
        made.db.dispose()
