"""The registry over HTTP: may this person register for this event on behalf of this organisation?

The events service asks the registry service rather than its tables, so that the two can be
deployed apart. Each call has a timeout; connection failures, timeouts and 502/503/504 answers
are retried a bounded number of times with exponential backoff. When the registry still does
not answer, the caller gets `ServiceUnavailable` (503 with `Retry-After`) before anything is
written: the check runs before the write transaction opens.

Each call carries the caller's own bearer token: the registry answers what that caller may see,
so the events service cannot be used to read past the registry's tenant rules.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import structlog

from shared.errors import DomainError, InvalidInput, ServiceUnavailable

log = structlog.get_logger()

RETRYABLE_STATUS = frozenset({502, 503, 504})


class NotAMember(DomainError):
    status, title, type_slug = 403, "Members only", "members-only"


@dataclass(frozen=True)
class Registrant:
    """What the registry confirmed, and what the registration records of it."""

    organisation_id: str
    organisation_name: str
    contact_id: str
    name: str
    email: str | None


class RegistryClient:
    def __init__(self, http: httpx.AsyncClient, *, retries: int = 2, backoff: float = 0.2,
                 retry_after: int = 10) -> None:
        self.http = http
        self.retries = retries
        self.backoff = backoff
        self.retry_after = retry_after

    async def _get(self, path: str, params: dict[str, Any] | None = None, *,
                   token: str | None = None) -> httpx.Response | None:
        """GET with bounded retries; None for 404; ServiceUnavailable when the registry does not answer."""
        headers = {"Authorization": f"Bearer {token}"} if token else None
        for attempt in range(self.retries + 1):
            if attempt:
                await anyio.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = await self.http.get(path, params=params, headers=headers)
            except httpx.TransportError as exc:  # refused, reset, timed out
                log.warning("registry.unreachable", path=path, attempt=attempt + 1, error=repr(exc))
                continue
            if response.status_code in RETRYABLE_STATUS:
                log.warning("registry.unavailable", path=path, attempt=attempt + 1, status=response.status_code)
                continue
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                log.error("registry.unexpected", path=path, status=response.status_code, body=response.text[:500])
                raise ServiceUnavailable(f"the registry answered {response.status_code}",
                                         retry_after=self.retry_after)
            return response
        raise ServiceUnavailable("the registry does not answer; try again later", retry_after=self.retry_after)

    async def check_registrant(self, organisation_id: str, contact_id: str, *,
                               member_of: Sequence[str] | None = None, token: str | None = None) -> Registrant:
        """The organisation exists and is not archived, the contact is one of its people, and (when
        `member_of` is given) it has an active membership of at least one of those clusters."""
        found = await self._get(f"/v1/organisations/{organisation_id}", token=token)
        if found is None:
            raise InvalidInput.field("body.organisation_id", f"no organisation {organisation_id}")
        organisation = found.json()
        if organisation.get("archived"):
            raise InvalidInput.field("body.organisation_id", f"organisation {organisation_id} is archived")
        found = await self._get(f"/v1/contacts/{contact_id}", token=token)
        if found is None or found.json().get("organisation_id") != organisation_id:
            raise InvalidInput.field("body.contact_id", f"no contact {contact_id} at organisation {organisation_id}")
        contact = found.json()
        if member_of is not None and not await self._is_member(organisation_id, member_of, token):
            raise NotAMember("this event is open only to members of its organising clusters, and the "
                             "organisation has no active membership of any of them",
                             organisation_id=organisation_id, cluster_ids=list(member_of))
        return Registrant(
            organisation_id=organisation_id,
            organisation_name=organisation.get("short_name") or organisation["legal_name"],
            contact_id=contact_id, name=contact["name"], email=contact.get("email"))

    async def check_clusters(self, cluster_ids: Sequence[str], *, field: str = "body.organiser_cluster_ids",
                             token: str | None = None) -> None:
        """Every organiser is a cluster the registry knows and has not archived."""
        for i, cluster_id in enumerate(cluster_ids):
            found = await self._get(f"/v1/clusters/{cluster_id}", token=token)
            if found is None:
                raise InvalidInput.field(f"{field}.{i}", f"no cluster {cluster_id}")
            if found.json().get("archived"):
                raise InvalidInput.field(f"{field}.{i}", f"cluster {cluster_id} is archived")

    async def _is_member(self, organisation_id: str, cluster_ids: Sequence[str], token: str | None) -> bool:
        response = await self._get("/v1/memberships", {"organisation_id": organisation_id, "status": "active",
                                                         "limit": 200}, token=token)
        memberships = response.json()["data"] if response is not None else []
        return any(m["cluster_id"] in cluster_ids for m in memberships)
