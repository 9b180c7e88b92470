"""Webhook deliveries against real HTTP targets: signed, retried with backoff, logged per attempt,
replayable; a target that refuses connections or never answers does not slow the API down."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.registry.federation import signing
from services.registry.app import create_app
from services.registry.federation.webhooks import WebhookWorker, WorkerSettings, not_public
from services.registry.settings import RegistrySettings
from tests.conftest import Store
from tests.events.conftest import ThreadServer, free_socket
from tests.federation.test_feed import SOURCE, World
from tests.federation.test_feed import world as world  # noqa: F401 - the fixture, shared


@dataclass
class Receiver:
    """A partner's webhook endpoint: records what comes, answers `statuses` in turn (then 200)."""

    url: str = ""
    received: list[tuple[bytes, str | None]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    async def endpoint(self, request: Request) -> Response:
        self.received.append((await request.body(), request.headers.get(signing.HEADER)))
        return Response(status_code=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    app = Starlette(routes=[Route("/hook", made.endpoint, methods=["POST"])])
    server = ThreadServer(uvicorn.Config(app, log_level="warning", lifespan="off"))
    sock = free_socket()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.005)
    made.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    try:
        yield made
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def silent_target() -> Iterator[str]:
    """Accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    finally:
        sock.close()


def refused_target() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    return f"http://127.0.0.1:{port}/hook"


async def _shared_event(world: World) -> str:
    joint = world.event("Joint brokerage")
    await world.post("/v1/agreements", {"owner_cluster_id": world.ids["biowin"],
                                        "partner_cluster_id": world.ids["medicen"], "event_ids": [joint]},
                     headers=world.manager())
    await world.build()
    return joint


async def _deliveries(world: World, role: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = await world.http.get("/v1/webhook-deliveries", params=params, headers=role)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def test_deliveries_are_signed_retried_logged_and_replayable(
        world: World, store: Store, receiver: Receiver) -> None:
    hook = await world.post("/v1/webhooks", {"url": receiver.url}, headers=world.partner())
    assert hook["secret"].startswith("whsec_") and hook["partner_cluster_id"] == world.ids["medicen"]
    listed = await world.http.get("/v1/webhooks", headers=world.partner())
    assert "secret" not in listed.text and [h["id"] for h in listed.json()] == [hook["id"]]
    receiver.statuses = [503]  # the first attempt fails, the retry succeeds
    await _shared_event(world)
    feed = (await world.feed())["data"]

    worker = WebhookWorker(store.db, WorkerSettings(timeout=2, backoff=0.01, backoff_max=0.02, max_attempts=3))
    try:
        for _ in range(50):
            await worker.run_once()
            pending = await _deliveries(world, world.manager(), status="pending")
            if not pending:
                break
            await asyncio.sleep(0.02)
    finally:
        await worker.aclose()

    delivered = await _deliveries(world, world.manager(), status="delivered")
    assert sorted(d["cloud_event_id"] for d in delivered) == sorted(i["id"] for i in feed)
    # Every body received verifies with the secret returned at registration, and is the feed's item.
    bodies = {}
    for body, header in receiver.received:
        assert signing.verify([hook["secret"]], header, body) == hook["secret"]
        bodies[httpx.Response(200, content=body).json()["id"]] = httpx.Response(200, content=body).json()
    assert all(bodies[item["id"]] == item for item in feed)
    retried = [d for d in delivered if len(d["attempt_log"]) == 2]
    assert len(retried) == 1
    first, second = retried[0]["attempt_log"]
    assert (first["outcome"], first["http_status"], first["error"]) == ("retry", 503, "http_503")
    assert (second["outcome"], second["http_status"]) == ("delivered", 200)

    # The owner's manager sees the log; another cluster's manager does not; a partner may not list it.
    assert await _deliveries(world, world.manager("medicen")) == []
    response = await world.http.get("/v1/webhook-deliveries", headers=world.partner())
    assert response.status_code == 403

    # Replay: queued again, delivered again with the same CloudEvent id.
    target = delivered[0]
    response = await world.http.post(f"/v1/webhook-deliveries/{target['id']}/replay", headers=world.manager("medicen"))
    assert response.status_code == 404
    response = await world.http.post(f"/v1/webhook-deliveries/{target['id']}/replay", headers=world.manager())
    assert response.status_code == 202 and response.json()["status"] == "pending"
    count = len(receiver.received)
    worker = WebhookWorker(store.db, WorkerSettings(timeout=2))
    try:
        await worker.run_once()
    finally:
        await worker.aclose()
    assert len(receiver.received) == count + 1
    again = [d for d in await _deliveries(world, world.manager()) if d["id"] == target["id"]][0]
    assert again["status"] == "delivered" and len(again["attempt_log"]) == len(target["attempt_log"]) + 1


async def test_a_down_target_fails_after_its_attempts_and_does_not_slow_the_api(
        world: World, store: Store, silent_target: str) -> None:
    await world.post("/v1/webhooks", {"url": refused_target()}, headers=world.partner())
    await world.post("/v1/webhooks", {"url": silent_target, "secret": "s" * 32}, headers=world.partner())
    await _shared_event(world)
    worker = WebhookWorker(store.db, WorkerSettings(timeout=3, backoff=0.01, backoff_max=0.02, max_attempts=2))
    try:
        delivering = asyncio.create_task(worker.run_once())
        await asyncio.sleep(0.3)  # the silent target now holds its deliveries for the whole timeout
        for _ in range(5):
            started = time.perf_counter()
            response = await world.http.get("/v1/agreements", headers=world.manager())
            assert response.status_code == 200
            assert time.perf_counter() - started < 1.5  # answered, not held for the target's timeout
        assert not delivering.done()  # the deliveries were hanging all along
        await delivering
        for _ in range(20):
            if not await worker.run_once():
                await asyncio.sleep(0.03)
            if not await _deliveries(world, world.manager(), status="pending"):
                break
    finally:
        await worker.aclose()
    failed = await _deliveries(world, world.manager(), status="failed")
    assert len(failed) == 4  # two items (agreement, event) x two webhooks
    errors = {attempt["error"] for d in failed for attempt in d["attempt_log"]}
    assert errors == {"connection", "timeout"}
    assert all(len(d["attempt_log"]) == 2 and d["attempts"] == 2 for d in failed)
    slow = [a["duration_ms"] for d in failed for a in d["attempt_log"] if a["error"] == "timeout"]
    assert all(2900 <= ms < 10_000 for ms in slow)


def test_backoff_doubles_with_jitter_and_is_capped(store: Store) -> None:
    low = WebhookWorker(store.db, WorkerSettings(backoff=5, backoff_max=60), jitter=lambda: 0.0)
    high = WebhookWorker(store.db, WorkerSettings(backoff=5, backoff_max=60), jitter=lambda: 1.0)
    assert [low.backoff(n) for n in (1, 2, 3, 4, 5, 6)] == [2.5, 5, 10, 20, 30, 30]
    assert [high.backoff(n) for n in (1, 2, 3, 4, 5, 6)] == [5, 10, 20, 40, 60, 60]




@pytest.mark.parametrize("url", ["http://127.0.0.1:8001/hook", "https://10.0.0.7/hook", "https://192.168.1.1/",
                                 "http://169.254.169.254/latest/meta-data/", "https://[::1]/hook",
                                 "https://[fd00::1]/hook", "https://100.64.0.1/", "https://localhost/hook",
                                 "https://no-such-host.invalid/hook"])
def test_internal_and_unresolvable_targets_are_named(url: str) -> None:
    assert not_public(url) is not None


def test_a_public_address_is_a_target() -> None:
    assert not_public("https://8.8.8.8/hook") is None


async def test_private_targets_refused_at_registration_and_before_each_delivery(
        world: World, store: Store, receiver: Receiver) -> None:
    """An instance that refuses private targets (the production default) names body.url when a
    partner registers one, and never POSTs to one already registered (its name may have been
    re-pointed since): that delivery fails at once, without retries."""
    hook = await world.post("/v1/webhooks", {"url": receiver.url}, headers=world.partner())  # allowed here
    strict = create_app(RegistrySettings(rate_limit_per_minute=0, federation_source=SOURCE,
                                         webhook_private_targets=False), db=store.db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=strict), base_url="http://registry.test") as http:
        for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data/"):
            response = await http.post("/v1/webhooks", json={"url": url}, headers=world.partner())
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert [e["field"] for e in response.json()["errors"]] == ["body.url"]
            assert "not a public address" in response.json()["errors"][0]["message"]

    await _shared_event(world)
    worker = WebhookWorker(store.db, WorkerSettings(timeout=2, backoff=0.01, max_attempts=5, private_targets=False))
    try:
        await worker.run_once()
    finally:
        await worker.aclose()
    assert receiver.received == []
    failed = await _deliveries(world, world.manager(), status="failed")
    assert failed and all(d["webhook_id"] == hook["id"] for d in failed)
    assert all([a["error"] for a in d["attempt_log"]] == ["forbidden_target"] for d in failed)
