"""GDPR tests reuse the events tests' set-up: the events app in process, the registry in uvicorn,
both on the test's store (SQLite file or PostgreSQL database)."""
from __future__ import annotations

from tests.events.conftest import client, registry  # noqa: F401 - fixtures
