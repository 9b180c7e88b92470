"""Structured logs: one access line per request with the ids, the token's actor and cluster; the same
ids travel on the events service's calls to the registry and into the events it records."""
from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import structlog
from structlog.testing import capture_logs

from shared.logging import configure_logging
from shared.observability import forward_ids
from tests.conftest import Store
from tests.observability.conftest import SUBJECT, Services, token_headers


def captured_logs():  # type: ignore[no-untyped-def]
    """Log lines as dicts, with the context bound for the request merged in as in production."""
    return capture_logs(processors=[structlog.contextvars.merge_contextvars])


def access_lines(captured: list[dict[str, Any]], route: str) -> list[dict[str, Any]]:
    return [line for line in captured if line["event"] == "http.request" and line["route"] == route]


async def test_access_lines_carry_the_ids_across_the_call_to_the_registry(store: Store, running: Services) -> None:
    ids = {"X-Request-ID": "req-7f3a", "X-Correlation-ID": "signup-2026-03"}
    with captured_logs() as captured:
        _, event_id = await running.brokerage(**ids)

    [created] = access_lines(captured, "/v1/events")
    assert created | {"duration_ms": 0} == {
        "event": "http.request", "log_level": "info", "method": "POST", "route": "/v1/events",
        "path": "/v1/events", "status": 201, "duration_ms": 0, "actor": SUBJECT, "cluster": "biowin",
        "request_id": "req-7f3a", "correlation_id": "signup-2026-03"}
    assert created["duration_ms"] > 0
    # The registry, in its own server, saw the same ids on the events service's call.
    [checked] = access_lines(captured, "/v1/clusters/{cluster_id}")
    assert (checked["request_id"], checked["correlation_id"], checked["status"]) == (
        "req-7f3a", "signup-2026-03", 200)
    # A request without ids starts its own chain: a new request id that is also its correlation id.
    [published] = access_lines(captured, "/v1/events/{event_id}/publish")
    assert published["request_id"] == published["correlation_id"] != "req-7f3a"

    history = await running.events.get(f"/v1/events/{event_id}/history", headers=token_headers())
    assert history.status_code == 200, history.text
    scheduled = history.json()["data"][0]["metadata"]
    assert (scheduled["request_id"], scheduled["correlation_id"]) == ("req-7f3a", "signup-2026-03")


async def test_health_probes_and_scrapes_are_not_logged_line_by_line(running: Services) -> None:
    with captured_logs() as captured:
        for path in ("/healthz", "/metrics"):
            assert (await running.events.get(path)).status_code == 200
        await running.events.get("/v1/events", headers=token_headers())
    assert [line["route"] for line in captured if line["event"] == "http.request"] == ["/v1/events"]


async def test_calls_carry_the_ids_of_the_request_being_served() -> None:
    seen: list[httpx.Headers] = []

    def registry(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={})

    async with httpx.AsyncClient(transport=httpx.MockTransport(registry), base_url="http://registry.test",
                                 event_hooks={"request": [forward_ids]}) as client:
        with structlog.contextvars.bound_contextvars(request_id="req-1", correlation_id="corr-9"):
            await client.get("/v1/clusters/x")
        await client.get("/v1/clusters/x")  # a background worker's call: no request, no ids
    assert (seen[0]["x-request-id"], seen[0]["x-correlation-id"], seen[0]["x-causation-id"]) == (
        "req-1", "corr-9", "req-1")
    assert "x-request-id" not in seen[1]


def test_json_lines_in_production_for_structlog_and_the_standard_library(
        capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True)
    try:
        with structlog.contextvars.bound_contextvars(request_id="req-1", correlation_id="corr-9"):
            structlog.get_logger().info("registry.imported", rows=3)
            logging.getLogger("uvicorn.error").warning("Shutting down")
    finally:
        configure_logging()
    ours, uvicorn = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert ours | {"timestamp": None} == {"event": "registry.imported", "rows": 3, "level": "info",
                                          "request_id": "req-1", "correlation_id": "corr-9", "timestamp": None}
    assert (uvicorn["event"], uvicorn["level"], uvicorn["logger"], uvicorn["request_id"]) == (
        "Shutting down", "warning", "uvicorn.error", "req-1")
