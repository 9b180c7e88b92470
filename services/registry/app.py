"""The registry service's composition root: settings, store, event log with its projectors, routes."""
from __future__ import annotations

from fastapi import FastAPI

from services.registry import api, audit, federation, importer, persons
from services.registry.federation import worker as federation_worker
from services.registry.projections import PROJECTORS
from services.registry.settings import RegistrySettings
from shared import api_keys, read_cache
from shared.db import Database
from shared.eventlog import EventLog
from shared.http import service_app


def create_app(settings: RegistrySettings | None = None, *, db: Database | None = None) -> FastAPI:
    """Build the registry app; a `db` passed in stays the caller's to dispose."""
    settings = settings or RegistrySettings()
    owns_db = db is None
    db = db or Database(settings.database_url, pool_size=settings.db_pool_size)
    app = service_app("clusterhub registry", "registry", settings, db, owns_db=owns_db,
                      max_body_bytes=settings.max_body_bytes,
                      body_limits={importer.IMPORT_PATH: importer.MAX_IMPORT_BYTES})
    app.state.log = EventLog(db.dialect, projectors=[*PROJECTORS, *federation.PROJECTORS])
    app.include_router(api.router)
    app.include_router(importer.router)
    app.include_router(audit.router)
    app.include_router(persons.router)
    app.include_router(api_keys.router)  # the token endpoint: tokens are issued where the API keys are kept
    app.include_router(federation.router)
    federation_worker.install(app, db, settings)
    # The hot reads (bench/api_load.py's get, list and search), answered from memory while the store
    # has not changed; the key holds what decides the caller's view (shared/read_cache.py).
    read_cache.install(app, db, api.router, {api.get_organisation: api.organisation_scope,
                                             api.list_organisations: api.organisation_scope})
    return app
