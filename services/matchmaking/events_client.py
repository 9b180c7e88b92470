"""The events service over HTTP: a participant's B2B profile, the event's other participants, and
whom the participant already has meetings with (for meeting suggestions).

Matchmaking asks the events service's API rather than its tables, so that the two can be deployed
apart. Each call has a timeout; connection failures, timeouts and 502/503/504 answers are retried
a bounded number of times with exponential backoff; after that the caller gets
`ServiceUnavailable` (503 with `Retry-After`). Each call carries the caller's own bearer token:
the events service answers only what that caller may see there.
"""
from __future__ import annotations

from typing import Any

import anyio
import httpx
import structlog

from shared.errors import NotFound, ServiceUnavailable

log = structlog.get_logger()

RETRYABLE_STATUS = frozenset({502, 503, 504})
PAGE = 200
MAX_PAGES = 50  # 10,000 participants: more than any brokerage event has
OPEN_MEETINGS = ("requested", "accepted")


class EventsClient:
    def __init__(self, http: httpx.AsyncClient, *, retries: int = 2, backoff: float = 0.2,
                 retry_after: int = 10) -> None:
        self.http = http
        self.retries = retries
        self.backoff = backoff
        self.retry_after = retry_after

    async def _get(self, path: str, params: dict[str, Any] | None = None, *, token: str | None = None) -> Any | None:
        """GET JSON with bounded retries; None for 404; ServiceUnavailable when the service does not answer."""
        headers = {"Authorization": f"Bearer {token}"} if token else None
        for attempt in range(self.retries + 1):
            if attempt:
                await anyio.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = await self.http.get(path, params=params, headers=headers)
            except httpx.TransportError as exc:  # refused, reset, timed out
                log.warning("events_service.unreachable", path=path, attempt=attempt + 1, error=repr(exc))
                continue
            if response.status_code in RETRYABLE_STATUS:
                log.warning("events_service.unavailable", path=path, attempt=attempt + 1, status=response.status_code)
                continue
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                log.error("events_service.unexpected", path=path, status=response.status_code,
                          body=response.text[:500])
                raise ServiceUnavailable(f"the events service answered {response.status_code}",
                                         retry_after=self.retry_after)
            return response.json()
        raise ServiceUnavailable("the events service does not answer; try again later", retry_after=self.retry_after)

    async def participant(self, event_id: str, participant_id: str, *, token: str | None = None) -> dict[str, Any]:
        found = await self._get(f"/v1/events/{event_id}/participants/{participant_id}", token=token)
        if found is None:
            raise NotFound(f"participant {participant_id} not found at event {event_id}")
        return found

    async def _pages(self, path: str, params: dict[str, Any], token: str | None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor = None
        for _ in range(MAX_PAGES):
            page = await self._get(path, {**params, "limit": PAGE, **({"cursor": cursor} if cursor else {})},
                                   token=token)
            if page is None:
                raise NotFound(f"{path} not found at the events service")
            rows += page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return rows

    async def participants(self, event_id: str, *, token: str | None = None) -> list[dict[str, Any]]:
        """The event's B2B participants as others see them (cards: offer, seek, keywords)."""
        return await self._pages(f"/v1/events/{event_id}/participants", {}, token)

    async def meeting_partners(self, event_id: str, participant_id: str, *, token: str | None = None) -> set[str]:
        """Participants with whom a meeting is requested or accepted already."""
        meetings = await self._pages(f"/v1/events/{event_id}/meetings", {"participant_id": participant_id}, token)
        return {m["receiver_id"] if m["requester_id"] == participant_id else m["requester_id"]
                for m in meetings if m["status"] in OPEN_MEETINGS}
