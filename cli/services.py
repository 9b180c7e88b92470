"""The catalogue of services: the one list that `serve`, `make run` and `projections rebuild` read.

A service appears here before its code exists; whatever is not installed yet is left out, so
adding `services/events/` needs no change anywhere else.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from shared.eventlog import Projector


@dataclass(frozen=True)
class Service:
    name: str
    package: str
    default_port: int
    settings_class: str  # in `<package>.settings`; its `host`/`port` fields make the address configurable

    @property
    def app_factory(self) -> str:
        """What `uvicorn --factory` imports."""
        return f"{self.package}.app:create_app"

    def installed(self) -> bool:
        return _module_exists(f"{self.package}.app")

    def projectors(self) -> list[Projector]:
        if not _module_exists(f"{self.package}.projections"):
            return []
        # Projectors decode stored events by type name: the service's event classes must be loaded.
        if _module_exists(f"{self.package}.events"):
            importlib.import_module(f"{self.package}.events")
        return list(importlib.import_module(f"{self.package}.projections").PROJECTORS)

    def address(self) -> tuple[str, int]:
        """The host and port from the service's own settings (environment), else the defaults."""
        if _module_exists(f"{self.package}.settings"):
            settings = getattr(importlib.import_module(f"{self.package}.settings"), self.settings_class)()
            return getattr(settings, "host", "127.0.0.1"), getattr(settings, "port", self.default_port)
        return "127.0.0.1", self.default_port


SERVICES: tuple[Service, ...] = (
    Service("registry", "services.registry", 8001, "RegistrySettings"),
    Service("events", "services.events", 8002, "EventsSettings"),
    Service("matchmaking", "services.matchmaking", 8003, "MatchmakingSettings"),
)


def installed_services() -> list[Service]:
    return [service for service in SERVICES if service.installed()]


def by_name(name: str) -> Service:
    for service in SERVICES:
        if service.name == name:
            return service
    raise LookupError(f"unknown service {name!r} (known: {', '.join(s.name for s in SERVICES)})")


def all_projectors() -> list[Projector]:
    """Every installed service's read models, for the CLI's event log and for rebuilds."""
    return [projector for service in SERVICES for projector in service.projectors()]


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent package itself is missing
        return False
