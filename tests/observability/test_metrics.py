"""/metrics on every service: requests by route template and status, appends, the log head, the
events outbox's depth, the matchmaking index's lag (which also holds /readyz), and the names kept
for the scheduler and webhooks."""
from __future__ import annotations

import uuid

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from sqlalchemy import insert

from services.events.notifications import PENDING, SENT, outbox
from services.matchmaking.app import create_app as create_matchmaking_app
from services.matchmaking.feed import SUBSCRIPTION
from services.matchmaking.settings import MatchmakingSettings
from shared import metrics
from tests.conftest import Store
from tests.observability.conftest import Services, token_headers

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests(samples: Samples, service: str, method: str, route: str, status: int) -> float:
    return value(samples, "clusterhub_http_requests_total", service=service, method=method, route=route,
                 status=str(status))


def waiting_mail(store: Store, *, pending: int, sent: int) -> None:
    """Outbox rows as the outbox projector leaves them, some waiting and some sent."""
    rows = [{"id": str(uuid.uuid4()), "event_position": 1, "event_type": "events.ParticipantRegistered",
             "recipient": f"person{i}@example.org", "subject": "Registration confirmed", "body": "…",
             "status": status, "attempts": 0, "next_attempt_at": "2026-01-01T00:00:00.000000Z",
             "created_at": "2026-01-01T00:00:00.000000Z"}
            for i, status in enumerate([PENDING] * pending + [SENT] * sent)]
    with store.db.writing() as conn:
        conn.execute(insert(outbox), rows)


def log_head(store: Store) -> int:
    with store.db.reading() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM events").scalar_one()


async def test_requests_appends_log_head_and_outbox_depth(store: Store, running: Services) -> None:
    before = await scrape(running.events)
    _, event_id = await running.brokerage()
    waiting_mail(store, pending=2, sent=1)
    unknown = await running.events.get("/v1/events/8a4b0f5e-0000-4000-8000-000000000000", headers=token_headers())
    assert unknown.status_code == 404
    assert (await running.events.get("/no/such/path")).status_code == 404

    after = await scrape(running.events)
    # Counters are the process's: compare with the scrape before.
    assert requests(after, "events", "POST", "/v1/events", 201) - requests(before, "events", "POST", "/v1/events",
                                                                          201) == 1
    assert requests(after, "events", "POST", "/v1/events/{event_id}/publish", 200) - requests(
        before, "events", "POST", "/v1/events/{event_id}/publish", 200) == 1
    assert requests(after, "events", "GET", "/v1/events/{event_id}", 404) >= 1
    assert requests(after, "events", "GET", "<none>", 404) >= 1
    routes = {dict(labels).get("route") for name, labels in after if name == "clusterhub_http_requests_total"}
    assert event_id not in "".join(route or "" for route in routes), "a raw path became a label"
    duration = "clusterhub_http_request_duration_seconds_count"
    assert value(after, duration, service="events", method="POST", route="/v1/events", status="201") >= 1

    # This process appended through both apps: the cluster, the event and its publication.
    assert value(after, "clusterhub_events_appended_total") - value(before, "clusterhub_events_appended_total") >= 3
    appends = value(after, "clusterhub_event_appends_total") - value(before, "clusterhub_event_appends_total")
    assert appends >= 3
    assert value(after, "clusterhub_event_append_duration_seconds_count") - value(
        before, "clusterhub_event_append_duration_seconds_count") == appends
    assert value(after, "clusterhub_event_append_duration_seconds_bucket", le="+Inf") == value(
        after, "clusterhub_event_append_duration_seconds_count")

    assert value(after, metrics.STORE_UP) == 1
    assert value(after, metrics.LOG_HEAD) == log_head(store)
    assert value(after, metrics.OUTBOX_DEPTH) == 2

    text = (await running.events.get("/metrics")).text
    for name, kind in (("clusterhub_scheduler_runs_total", "counter"),
                       ("clusterhub_scheduler_run_duration_seconds", "histogram"),
                       ("clusterhub_webhook_deliveries_total", "counter"),
                       ("clusterhub_webhook_delivery_duration_seconds", "histogram"),
                       (metrics.SUBSCRIPTION_LAG, "gauge")):
        assert f"# TYPE {name} {kind}" in text

    registry = await scrape(running.registry)
    assert requests(registry, "registry", "GET", "/v1/clusters/{cluster_id}", 200) >= 1


async def test_matchmaking_index_lag_on_metrics_and_readyz(store: Store, running: Services) -> None:
    await running.brokerage()
    # The index follows the log by itself only every minute here: the test moves it by hand.
    app = create_matchmaking_app(MatchmakingSettings(index_poll_interval=60, ready_max_lag=1), db=store.db)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://matchmaking.test") as matchmaking:
        samples = await scrape(matchmaking)
        assert value(samples, metrics.SUBSCRIPTION_LAG, subscription=SUBSCRIPTION) == 0
        assert (await matchmaking.get("/readyz")).status_code == 200

        await running.organisation("Ion Beam Applications")
        await running.organisation("Guerbet")
        samples = await scrape(matchmaking)
        lag = value(samples, metrics.SUBSCRIPTION_LAG, subscription=SUBSCRIPTION)
        assert lag == log_head(store) - app.state.feed.position >= 2
        lagging = await matchmaking.get("/readyz")
        assert lagging.status_code == 503
        assert lagging.headers["content-type"] == "application/problem+json"
        assert lagging.json()["lagging"] == {SUBSCRIPTION: lag}

        app.state.feed.catch_up()
        assert value(await scrape(matchmaking), metrics.SUBSCRIPTION_LAG, subscription=SUBSCRIPTION) == 0
        assert (await matchmaking.get("/readyz")).status_code == 200


def test_scheduler_runs_are_counted_and_timed_by_outcome() -> None:
    @metrics.timed_scheduler_run
    def search(fail: bool) -> str:
        if fail:
            raise ValueError("no solution")
        return "schedule"

    def runs(outcome: str) -> float:
        return REGISTRY.get_sample_value("clusterhub_scheduler_runs_total", {"outcome": outcome}) or 0.0

    ok, error = runs("ok"), runs("error")
    assert search(False) == "schedule"
    with pytest.raises(ValueError):
        search(True)
    assert (runs("ok") - ok, runs("error") - error) == (1, 1)
