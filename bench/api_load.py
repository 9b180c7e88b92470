"""Throughput and latency of the services over HTTP, against a bare FastAPI endpoint as the ceiling.

    .venv/bin/python bench/api_load.py [--duration S] [--quick] [--clients 1,8,32,128] [--stores sqlite,postgres]
                                       [--generator auto|wrk|httpx] [--json]

Every installed service runs as `clusterhub serve` runs it (cli/serve.py's uvicorn command line:
one worker, uvloop, httptools, uvicorn's access log off), first on a fresh SQLite file, then on a
fresh PostgreSQL 15 database, both migrated and seeded with the demo data, logging as in
production: JSON lines at INFO, one access line per request (to a file here). The ceiling is a
FastAPI app with one trivial JSON endpoint, served by the same command line: what this machine
does per request before any of our code runs (auth, validation, store, logs, metrics). It stays
up for the whole run and is measured again, at the same concurrency, right before each row: on a
shared machine the load changes within minutes, and a ratio must compare figures taken together.

Workloads, as a platform admin (rate limit off), on the registry unless said otherwise:
  get      GET /v1/organisations/{id}, rotating over 50 seeded organisations
  list     GET /v1/organisations?country=BE&kind=company
  search   GET /v1/organisations?q=imaging
  register POST /v1/organisations with a unique name (writes: one event appended, projections
           updated, one transaction)
  meeting  on the events service: POST /v1/events/{id}/meeting-requests, one fresh pair of
           participants per request (a write on one event: its row locked, the pair checked for an
           open request either way round, one event appended). Before measuring, each store gets,
           through the HTTP API, one published brokerage event (opt-in requests, so no meeting cap
           applies) with 200 B2B participants, each the first contact of a different demo
           organisation: 19,900 unordered pairs, shuffled, each used once in a random direction, in
           order across warm-ups and concurrency levels (each store has its own event). Were they
           to run out, the list wraps round, the reused pairs answer 409 and show as errors (a line
           says so).
  mixed    80% reads (get/list/search in turn) and 20% register, at random
  get-uncached, list-uncached, search-uncached
           the same reads with `Cache-Control: no-cache`, which the registry's read cache
           (shared/read_cache.py) honours: what a read costs when it is not answered from memory
           (printed for comparison, not counted in the summary's reads target)
each at 1, 8, 32 and 128 concurrent keep-alive connections for --duration seconds.

Load generator: `wrk` (C, one thread, a Lua script for the token and the POST bodies) when it is
installed, else an asyncio httpx client (one pool, keep-alive), which is CPU-heavy: on two cores
it competes with the server. The run measures both generators against the bare endpoint and the
CPU the generator itself used there, so a reader can see whether it, not the server, was the limit.
Non-2xx responses count as errors (wrk: status >= 400 and socket errors). Each row also gives the
CPU the server process spent per request (all its threads), which moves less than requests/s
when other work shares the machine.

The write bound (before the stores; `--no-bound` skips it): the bare app also serves three POST
endpoints taking register's body, at 32 clients (or the top level): `bound-body` parses it into
OrganisationCreate, `bound-auth` adds an HTTPBearer dependency, `bound-commit` adds one durable
one-row sqlite3 commit on the event loop. Each is what FastAPI alone reaches with that much of a
write, against the ceiling measured just before it: how much of the 35% target is left for the
work a write does.

SQLite's write ceiling is its durable commit (WAL, synchronous=FULL: one fsync each): the run
measures what a bare sqlite3 loop of one-row commits reaches on the same file system, for scale.

Targets (checked at 32 clients): reads >= 60% and writes >= 35% of the ceiling's requests/s; p99 < 100 ms.
The writes figure is the lower of register's and meeting's ratios (whichever of them ran).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fastapi import Depends  # noqa: E402
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer  # noqa: E402

from cli.serve import uvicorn_argv  # noqa: E402
from cli.services import installed_services  # noqa: E402
from services.registry.models import OrganisationCreate  # noqa: E402
from shared.auth import PLATFORM_ADMIN, Tokens  # noqa: E402
from shared.settings import CommonSettings  # noqa: E402

SIGNING_KEYS = "bench-1:clusterhub-bench-signing-key-0123456789abcdef"
READS = ("get", "list", "search")
UNCACHED = tuple(f"{read}-uncached" for read in READS)  # READS past the read cache (no-cache)
WRITES = ("register", "meeting")
WORKLOADS = (*READS, *UNCACHED, *WRITES, "mixed")
# The write bound, on the bare app (register's body each time): the body parsed into
# OrganisationCreate; that and a bearer-token dependency; those and one durable one-row commit.
BOUNDS = ("bound-body", "bound-auth", "bound-commit")
MEETING_PARTICIPANTS = 200  # 19,900 unordered pairs: more than a default run sends
LIST_PATH = "/v1/organisations?country=BE&kind=company"
SEARCH_PATH = "/v1/organisations?q=imaging"
READ_TARGET, WRITE_TARGET, P99_TARGET_MS, TARGET_CLIENTS = 0.60, 0.35, 100.0, 32


# (Module level: FastAPI reads the endpoints' annotations, strings here, in the module's namespace.)
BoundCredentials = Annotated[HTTPAuthorizationCredentials, Depends(HTTPBearer())]


def create_bare_app():  # type: ignore[no-untyped-def]
    """The ceiling: uvicorn + FastAPI + JSON, nothing of ours. Beside it, the write bound: how far
    FastAPI alone gets with what any write endpoint needs (BOUNDS)."""
    import sqlite3

    from fastapi import FastAPI

    app = FastAPI()
    # One durable commit per request, on the event loop, with shared/db.py's pragmas.
    store = sqlite3.connect(os.environ.get("BENCH_BOUND_SQLITE", ":memory:"), isolation_level=None,
                            check_same_thread=False)
    store.execute("PRAGMA journal_mode=WAL")
    store.execute("PRAGMA synchronous=FULL")
    store.execute("CREATE TABLE IF NOT EXISTS bound (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/bound/body")
    async def body(_: OrganisationCreate) -> dict[str, bool]:
        return {"ok": True}

    @app.post("/bound/auth")
    async def auth(_: OrganisationCreate, __: BoundCredentials) -> dict[str, bool]:
        return {"ok": True}

    @app.post("/bound/commit")
    async def commit(organisation: OrganisationCreate, _: BoundCredentials) -> dict[str, bool]:
        store.execute("BEGIN IMMEDIATE")
        store.execute("INSERT INTO bound (name) VALUES (?)", (organisation.legal_name,))
        store.execute("COMMIT")
        return {"ok": True}

    return app


# --------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Processes:
    """Everything this run starts, stopped in reverse on the way out, whatever the way out."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.servers: list[Server] = []

    def uvicorn(self, name: str, factory: str, port: int, env: dict[str, str]) -> Server:
        # The command line of cli/serve.py: the ceiling and the services differ only in the factory.
        argv = uvicorn_argv(factory, "127.0.0.1", port)
        log = open(self.logs / f"{name}-{port}.log", "wb")
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        log.close()
        server = Server(name, port, process)
        self.servers.append(server)
        return server

    def wait_listening(self, servers: list[Server], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for server in servers:
            while True:
                if server.process.poll() is not None:
                    raise RuntimeError(f"{server.name} exited with {server.process.returncode}: "
                                       f"{self.tail(server)}")
                try:
                    with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{server.name} did not listen within {timeout:.0f} s") from None
                    time.sleep(0.1)

    def tail(self, server: Server) -> str:
        path = self.logs / f"{server.name}-{server.port}.log"
        return path.read_text(errors="replace")[-1500:] if path.exists() else ""

    def stop(self, servers: list[Server] | None = None) -> None:
        chosen = list(self.servers if servers is None else servers)
        for server in chosen:
            if server.process.poll() is None:
                server.process.terminate()
        deadline = time.monotonic() + 10
        for server in chosen:
            try:
                server.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
            self.servers.remove(server)


def service_env(database_url: str, ports: dict[str, int]) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "CLUSTERHUB_DATABASE_URL": database_url,
        "CLUSTERHUB_AUTH_SIGNING_KEYS": SIGNING_KEYS,
        "CLUSTERHUB_RATE_LIMIT_PER_MINUTE": "0",
        # As in production: an access line per request, JSON (the log goes to a file in the work dir).
        "CLUSTERHUB_LOG_LEVEL": "INFO",
        "CLUSTERHUB_LOG_JSON": "true",
        "CLUSTERHUB_ACCESS_LOG": "true",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "bench"), str(ROOT), env.get("PYTHONPATH")])),
    })
    for name, port in ports.items():
        env[f"CLUSTERHUB_{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
        env[f"CLUSTERHUB_{name.upper()}_PORT"] = str(port)
    return env


def clusterhub(database_url: str, *args: str) -> None:
    env = dict(os.environ, CLUSTERHUB_DATABASE_URL=database_url, CLUSTERHUB_AUTH_SIGNING_KEYS=SIGNING_KEYS)
    result = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"clusterhub {' '.join(args)} failed: {result.stderr.strip()}")


def admin_token() -> str:
    tokens = Tokens.from_settings(CommonSettings(auth_signing_keys=SIGNING_KEYS))
    return tokens.issue(subject="bench@clusterhub", roles=[PLATFORM_ADMIN], expires_in=6 * 3600)


# --------------------------------------------------------------------------------------------
# Load generators: both return requests/s, latency percentiles (ms), errors, generator CPU seconds.


@dataclass
class Result:
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    generator_cpu_s: float
    seconds: float
    server_cpu_ms: float | None = None  # per request, filled in by measure()


class MeetingPairs:
    """The meeting workload's fresh pairs on one event, handed out in order across runs: each run
    gets the list from the first unused pair on (wrapping round), and says how many it may have used."""

    def __init__(self, event_id: str, pairs: list[tuple[str, str]]) -> None:
        self.event_id = event_id
        self.pairs = pairs
        self.used = 0  # may pass len(pairs): then pairs are being reused

    def bodies(self) -> list[str]:
        start = self.used % len(self.pairs)
        return [json.dumps({"requester_id": a, "receiver_id": b}, separators=(",", ":"))
                for a, b in self.pairs[start:] + self.pairs[:start]]

    @property
    def exhausted(self) -> bool:
        return self.used > len(self.pairs)


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process, all threads (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


WRK_SCRIPT = r"""
local token, workload, ids, run_tag = "", "", {}, ""
local counter, thread_id = 0, 0
local reads = {"get", "list", "search"}
local read_turn = 0
local meeting_path, meeting_bodies = "", {}

function init(args)
  token, workload, run_tag = args[1], args[2], args[3]
  if workload == "meeting" then
    -- args: the event id, then a file of request bodies (one fresh pair a line), used in order.
    meeting_path = "/v1/events/" .. args[4] .. "/meeting-requests"
    for line in io.lines(args[5]) do meeting_bodies[#meeting_bodies + 1] = line end
  else
    for i = 4, #args do ids[#ids + 1] = args[i] end
  end
  thread_id = math.random(1, 1000000000)
  math.randomseed(os.time() + thread_id)
end

local function headers()
  return {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
end

local function read(kind)
  local h = headers()
  if kind:sub(-9) == "-uncached" then
    kind = kind:sub(1, -10)
    h["Cache-Control"] = "no-cache"
  end
  if kind == "get" then
    counter = counter + 1
    return wrk.format("GET", "/v1/organisations/" .. ids[(counter %% #ids) + 1], h)
  elseif kind == "list" then
    return wrk.format("GET", "%(list)s", h)
  elseif kind == "search" then
    return wrk.format("GET", "%(search)s", h)
  end
  return wrk.format("GET", "/ping", h)
end

local function register()
  counter = counter + 1
  local body = string.format(
    '{"legal_name":"Bench %%s %%d %%d","kind":"company","country":"BE","keywords":["bench"]}',
    run_tag, thread_id, counter)
  return wrk.format("POST", "/v1/organisations", headers(), body)
end

local function meeting()
  -- In order; past the end it wraps round (those pairs exist already: 409, counted as errors).
  counter = counter + 1
  return wrk.format("POST", meeting_path, headers(), meeting_bodies[((counter - 1) %% #meeting_bodies) + 1])
end

local function bound()
  counter = counter + 1
  local body = string.format(
    '{"legal_name":"Bench %%s %%d %%d","kind":"company","country":"BE","keywords":["bench"]}',
    run_tag, thread_id, counter)
  return wrk.format("POST", "/bound/" .. workload:sub(7), headers(), body)
end

function request()
  if workload == "register" then return register() end
  if workload:sub(1, 6) == "bound-" then return bound() end
  if workload == "meeting" then return meeting() end
  if workload == "mixed" then
    if math.random() < 0.2 then return register() end
    read_turn = read_turn %% 3 + 1
    return read(reads[read_turn])
  end
  return read(workload)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK-RESULT {"requests":%%d,"duration_us":%%d,"p50":%%d,"p95":%%d,"p99":%%d,"errors":%%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end
""" % {"list": LIST_PATH, "search": SEARCH_PATH}


class Wrk:
    name = "wrk"

    def __init__(self, workdir: Path) -> None:
        self.script = workdir / "api_load.lua"
        self.script.write_text(WRK_SCRIPT)

    def run(self, base_url: str, workload: str, clients: int, duration: float, token: str,
            ids: list[str], meeting: MeetingPairs | None = None) -> Result:
        if workload == "meeting":
            assert meeting is not None
            bodies = self.script.with_name("meeting-bodies.txt")
            bodies.write_text("\n".join(meeting.bodies()) + "\n")
            ids = [meeting.event_id, str(bodies)]
        # One thread: wrk is C and event-driven; a second thread would only take CPU from the server.
        argv = ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
                "-s", str(self.script), base_url, "--", token, workload, uuid.uuid4().hex[:10], *ids]
        before = os.times()
        result = subprocess.run(argv, capture_output=True, text=True)
        after = os.times()
        line = next((l for l in result.stdout.splitlines() if l.startswith("WRK-RESULT ")), None)
        if line is None:
            raise RuntimeError(f"wrk failed: {result.stderr.strip() or result.stdout.strip()}")
        data = json.loads(line.removeprefix("WRK-RESULT "))
        if workload == "meeting":
            # wrk's done() cannot see the thread's counter: every request sent either completed, failed
            # (an error) or was in flight at the end (at most one per connection), so this bounds it.
            meeting.used += data["requests"] + data["errors"] + clients
        seconds = data["duration_us"] / 1e6
        cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
        return Result(data["requests"] / seconds, data["p50"] / 1000, data["p95"] / 1000, data["p99"] / 1000,
                      data["errors"], cpu, seconds)


class HttpxLoad:
    name = "httpx"

    def run(self, base_url: str, workload: str, clients: int, duration: float, token: str,
            ids: list[str], meeting: MeetingPairs | None = None) -> Result:
        before = time.process_time()
        result = asyncio.run(self._run(base_url, workload, clients, duration, token, ids, meeting))
        result.generator_cpu_s = time.process_time() - before
        return result

    async def _run(self, base_url: str, workload: str, clients: int, duration: float, token: str,
                   ids: list[str], meeting: MeetingPairs | None) -> Result:
        headers = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        latencies: list[float] = []
        errors = 0
        tag = uuid.uuid4().hex[:10]
        counter = 0
        if workload == "meeting":
            assert meeting is not None
            meeting_path = f"/v1/events/{meeting.event_id}/meeting-requests"
            start = meeting.used % len(meeting.pairs)
            pairs = meeting.pairs[start:] + meeting.pairs[:start]

        def next_request() -> tuple[str, str, dict | None, dict | None]:
            nonlocal counter
            counter += 1
            kind = workload.removesuffix("-uncached")
            fresh = {"Cache-Control": "no-cache"} if kind != workload else None
            if kind == "meeting":  # in order, wrapping round like the Lua script
                requester, receiver = pairs[(counter - 1) % len(pairs)]
                return "POST", meeting_path, {"requester_id": requester, "receiver_id": receiver}, None
            if workload == "mixed":
                kind = "register" if random.random() < 0.2 else READS[counter % 3]
            if kind == "register" or kind in BOUNDS:
                path = f"/bound/{kind.removeprefix('bound-')}" if kind in BOUNDS else "/v1/organisations"
                return "POST", path, {"legal_name": f"Bench {tag} {counter}", "kind": "company",
                                      "country": "BE", "keywords": ["bench"]}, None
            if kind == "get":
                return "GET", f"/v1/organisations/{ids[counter % len(ids)]}", None, fresh
            return "GET", {"list": LIST_PATH, "search": SEARCH_PATH}.get(kind, "/ping"), None, fresh

        async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=10) as http:
            start = time.perf_counter()
            end = start + duration

            async def client() -> None:
                nonlocal errors
                while time.perf_counter() < end:
                    method, path, body, extra_headers = next_request()
                    sent = time.perf_counter()
                    try:
                        response = await http.request(method, path, json=body, headers=extra_headers)
                        await response.aread()
                        ok = 200 <= response.status_code < 300
                    except httpx.HTTPError:
                        ok = False
                    latencies.append(time.perf_counter() - sent)
                    errors += not ok

            await asyncio.gather(*(client() for _ in range(clients)))
            seconds = time.perf_counter() - start
        if workload == "meeting":
            meeting.used += counter  # exact here: one pair per request built
        latencies.sort()

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else 0.0

        return Result(len(latencies) / seconds, pct(50), pct(95), pct(99), errors, 0.0, seconds)


# --------------------------------------------------------------------------------------------
# The run


@contextmanager
def stores(names: list[str], workdir: Path) -> Iterator[Iterator[tuple[str, str]]]:
    """Fresh stores in turn, (name, url), migrated and seeded; a PostgreSQL server only if asked for."""
    postgres = None

    def made() -> Iterator[tuple[str, str]]:
        nonlocal postgres
        for name in names:
            if name == "sqlite":
                url = f"sqlite:///{workdir / 'bench.db'}"
            else:
                import psycopg

                from tests.support.postgres import PostgresServer

                postgres = PostgresServer.start()
                with psycopg.connect(postgres.url().replace("+psycopg", ""), autocommit=True) as conn:
                    conn.execute("CREATE DATABASE clusterhub_bench")
                url = postgres.url("clusterhub_bench")  # the owner: fine for a benchmark
            clusterhub(url, "db", "upgrade")
            clusterhub(url, "seed", "demo")
            yield name, url

    try:
        yield made()
    finally:
        if postgres is not None:
            postgres.stop()


def seeded_ids(base_url: str, token: str) -> list[str]:
    response = httpx.get(f"{base_url}/v1/organisations", params={"limit": 50},
                         headers={"Authorization": f"Bearer {token}"}, timeout=10)
    response.raise_for_status()
    ids = [item["id"] for item in response.json()["data"]]
    if not ids:
        raise RuntimeError("the seeded registry lists no organisations")
    for path in (LIST_PATH, SEARCH_PATH):  # empty answers would flatter the figures
        found = httpx.get(base_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10).json()["data"]
        if not found:
            raise RuntimeError(f"{path} finds nothing in the demo data")
    return ids


def meeting_setup(registry_url: str, events_url: str, token: str,
                  participants: int = MEETING_PARTICIPANTS) -> MeetingPairs:
    """A published brokerage event with `participants` B2B participants from as many demo organisations,
    made through the API, and every unordered pair of them in a random order and direction.

    The request is refused for a pair with an open request either way round (so each unordered pair
    once), for oneself, for a participant not registered for B2B, or on an event not published; the cap
    counts accepted meetings only and opt-in requests stay `requested`. The same organisation on both
    sides is allowed, yet distinct organisations keep the pairs like real ones."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=30) as http:
        def ok(response: httpx.Response) -> dict:
            if response.status_code not in (200, 201):
                raise RuntimeError(f"meeting setup: {response.request.method} {response.request.url} "
                                   f"answered {response.status_code}: {response.text[:500]}")
            return response.json()

        cluster_id = ok(http.get(f"{registry_url}/v1/clusters", params={"limit": 1}))["data"][0]["id"]
        starts = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 60 * 86400))
        event = ok(http.post(f"{events_url}/v1/events", json={
            "title": "Bench brokerage", "kind": "brokerage", "organiser_cluster_ids": [cluster_id],
            "time_zone": "Europe/Brussels", "starts_at": f"{starts}T08:00:00+01:00",
            "ends_at": f"{starts}T18:00:00+01:00", "venue": "Bench hall"}))
        path = f"{events_url}/v1/events/{event['id']}"
        ok(http.post(f"{path}/b2b-sessions", json={"title": "Bench meetings", "starts_at": f"{starts}T09:00:00+01:00",
                                                   "slot_minutes": 30, "slot_count": 16, "tables": 100}))
        ok(http.post(f"{path}/publish"))
        registered: list[str] = []
        cursor = None
        while len(registered) < participants:
            params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            page = ok(http.get(f"{registry_url}/v1/organisations", params=params))
            for organisation in page["data"]:
                contacts = ok(http.get(f"{registry_url}/v1/organisations/{organisation['id']}/contacts",
                                       params={"limit": 1}))["data"]
                if contacts:
                    registered.append(ok(http.post(f"{path}/registrations", json={
                        "organisation_id": organisation["id"], "contact_id": contacts[0]["id"], "b2b": True}))["id"])
                if len(registered) == participants:
                    break
            cursor = page.get("next_cursor")
            if not cursor and len(registered) < participants:
                raise RuntimeError(f"meeting setup: the demo data has only {len(registered)} organisations "
                                   f"with a contact, {participants} wanted")
    rng = random.Random()
    pairs = [(a, b) if rng.random() < 0.5 else (b, a)
             for i, a in enumerate(registered) for b in registered[i + 1:]]
    rng.shuffle(pairs)
    return MeetingPairs(event["id"], pairs)


def emit(line: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(line), flush=True)
        return
    if "workload" in line:
        print(f"{line['store']:<9} {line['workload']:<15} {line['clients']:>4} clients  "
              f"{line['requests_per_s']:>8.0f} req/s  p50 {line['p50_ms']:6.1f}  p95 {line['p95_ms']:6.1f}  "
              f"p99 {line['p99_ms']:6.1f} ms  errors {line['errors']:<5} "
              f"{100 * line['ratio_to_ceiling']:5.1f}% of ceiling  "
              f"cpu {line['server_cpu_ms_per_request'] or 0:5.2f} ms/req", flush=True)
    else:
        print(" ".join(f"{k}={v}" for k, v in line.items()), flush=True)


def measure(generator, base_url: str, workload: str, clients: int, duration: float, token: str,  # type: ignore[no-untyped-def]
            ids: list[str], server: Server | None = None, meeting: MeetingPairs | None = None) -> Result:
    # warm-up (pools, caches); the meeting workload's warm-up uses pairs of its own too
    generator.run(base_url, workload, clients, min(1.0, duration), token, ids, meeting)
    before = process_cpu_s(server.process.pid) if server else None
    result = generator.run(base_url, workload, clients, duration, token, ids, meeting)
    after = process_cpu_s(server.process.pid) if server else None
    served = result.requests_per_s * result.seconds
    if before is not None and after is not None and served:
        result.server_cpu_ms = (after - before) / served * 1000
    return result


def row(store: str, workload: str, clients: int, r: Result, top: float) -> dict:
    return {"store": store, "workload": workload, "clients": clients,
            "requests_per_s": round(r.requests_per_s, 1), "p50_ms": round(r.p50_ms, 2),
            "p95_ms": round(r.p95_ms, 2), "p99_ms": round(r.p99_ms, 2), "errors": r.errors,
            "ceiling_requests_per_s": round(top, 1),
            "ratio_to_ceiling": round(r.requests_per_s / top, 3) if top else 0.0,
            "server_cpu_ms_per_request": None if r.server_cpu_ms is None else round(r.server_cpu_ms, 3)}


def sqlite_commit_rate(directory: Path, seconds: float = 2.0) -> float:
    """Durable one-row commits per second of a bare sqlite3 loop, with shared/db.py's pragmas."""
    import sqlite3

    path = directory / "commit-rate.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        done, end = 0, time.perf_counter() + seconds
        start = time.perf_counter()
        while time.perf_counter() < end:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (body) VALUES (?)", ("x" * 500,))
            conn.execute("COMMIT")
            done += 1
        return done / (time.perf_counter() - start)
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per workload and concurrency")
    parser.add_argument("--quick", action="store_true", help="1 s each")
    parser.add_argument("--clients", default="1,8,32,128")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--generator", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--no-bound", action="store_true", help="skip the write bound (FastAPI alone, see BOUNDS)")
    args = parser.parse_args()
    duration = 1.0 if args.quick else args.duration
    levels = [int(c) for c in args.clients.split(",")]
    workloads = [w for w in args.workloads.split(",") if w]
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}")

    # SIGTERM ends the run the way Ctrl-C does: through the finally blocks that stop the servers.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    workdir = Path(tempfile.mkdtemp(prefix="clusterhub-bench-"))
    processes = Processes(workdir)
    httpx_load = HttpxLoad()
    use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk"))
    generator = Wrk(workdir) if use_wrk else httpx_load
    token = admin_token()
    try:
        # The ceiling: the bare endpoint under the services' uvicorn command line (again before each row).
        env = {**service_env("sqlite://", {}), "BENCH_BOUND_SQLITE": str(workdir / "bound.db")}
        bare = processes.uvicorn("bare", "api_load:create_bare_app", free_port(), env)
        processes.wait_listening([bare])
        ceiling: dict[int, Result] = {}
        for clients in levels:
            ceiling[clients] = measure(generator, bare.url, "bare", clients, duration, token, [], bare)
            r = ceiling[clients]
            emit(row("none", "ceiling", clients, r, r.requests_per_s), args.json)
        # The generator's own limit: the CPU it burnt while driving the bare endpoint, and what the
        # Python generator reaches there (if it is well below wrk, httpx would be the bottleneck).
        probe = TARGET_CLIENTS if TARGET_CLIENTS in ceiling else levels[-1]
        import uvicorn

        line = {"generator": generator.name, "clients": probe,
                "server": f"uvicorn {uvicorn.__version__}, 1 worker, uvloop, httptools, --no-access-log "
                          f"(same command line for the ceiling and the services)",
                "bare_requests_per_s": round(ceiling[probe].requests_per_s, 1),
                "generator_cpu_share": round(ceiling[probe].generator_cpu_s / ceiling[probe].seconds, 2)}
        if generator is not httpx_load:
            h = measure(httpx_load, bare.url, "bare", probe, duration, token, [])
            line["httpx_bare_requests_per_s"] = round(h.requests_per_s, 1)
            line["httpx_cpu_share"] = round(h.generator_cpu_s / h.seconds, 2)
        emit(line, args.json)
        if not args.no_bound:
            # What a write endpoint reaches with FastAPI alone, each against the ceiling measured just before.
            for workload in BOUNDS:
                top = measure(generator, bare.url, "bare", probe, duration, token, [], bare)
                r = measure(generator, bare.url, workload, probe, duration, token, [], bare)
                emit(row("none", workload, probe, r, top.requests_per_s), args.json)

        with stores(args.stores.split(","), workdir) as each:
            for store, url in each:
                if store == "sqlite":
                    emit({"store": store, "sqlite_durable_commits_per_s": round(sqlite_commit_rate(workdir), 1),
                          "note": "bare sqlite3 loop, one-row transactions, WAL, synchronous=FULL"}, args.json)
                services = installed_services()
                ports = {service.name: free_port() for service in services}
                env = service_env(url, ports)
                started = [processes.uvicorn(s.name, s.app_factory, ports[s.name], env) for s in services]
                processes.wait_listening(started)
                registry = f"http://127.0.0.1:{ports['registry']}"
                registry_server = next(s for s in started if s.name == "registry")
                ids = seeded_ids(registry, token)
                meeting = None
                if "meeting" in workloads:
                    events = f"http://127.0.0.1:{ports['events']}"
                    events_server = next(s for s in started if s.name == "events")
                    meeting = meeting_setup(registry, events, token)
                results: dict[tuple[str, int], dict] = {}
                for workload in workloads:
                    url, server = (events, events_server) if workload == "meeting" else (registry, registry_server)
                    for clients in levels:
                        top = measure(generator, bare.url, "bare", clients, duration, token, [], bare)
                        r = measure(generator, url, workload, clients, duration, token, ids, server, meeting)
                        results[workload, clients] = line = row(store, workload, clients, r, top.requests_per_s)
                        emit(line, args.json)
                if meeting is not None and meeting.exhausted:
                    emit({"store": store, "note": f"the meeting workload used up its {len(meeting.pairs)} pairs "
                                                  f"and reused some (about {meeting.used}): those answered 409 "
                                                  "and count among its errors"}, args.json)
                emit(summary(store, results, generator.name), args.json)
                processes.stop(started)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    finally:
        processes.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def summary(store: str, results: dict[tuple[str, int], dict], generator: str) -> dict:
    """The targets at 32 clients: reads (each of get/list/search) and writes against the ceiling, p99.
    `writes_ratio` is the lower of register's and meeting's ratios (of those that ran). The uncached
    reads are reported (`uncached_reads_min_ratio`) but count towards no target, p99's included."""
    at = {workload: row for (workload, clients), row in results.items() if clients == TARGET_CLIENTS}
    uncached = [at.pop(w)["ratio_to_ceiling"] for w in UNCACHED if w in at]
    reads = [at[w]["ratio_to_ceiling"] for w in READS if w in at]
    line: dict = {"store": store, "summary": True, "generator": generator, "at_clients": TARGET_CLIENTS}
    if reads:
        line["reads_min_ratio"] = min(reads)
        line["reads_ok"] = min(reads) >= READ_TARGET
    if uncached:
        line["uncached_reads_min_ratio"] = min(uncached)
    writes = [at[w]["ratio_to_ceiling"] for w in WRITES if w in at]
    if writes:
        line["writes_ratio"] = min(writes)
        line["writes_ok"] = min(writes) >= WRITE_TARGET
    if at:
        line["p99_max_ms"] = max(row["p99_ms"] for row in at.values())
        line["p99_ok"] = line["p99_max_ms"] < P99_TARGET_MS
    line["errors"] = sum(row["errors"] for row in results.values())
    checks = [v for k, v in line.items() if k.endswith("_ok")]
    line["all_ok"] = bool(checks) and all(checks) and line["errors"] == 0  # no checks (no 32-client run): not ok
    return line


if __name__ == "__main__":
    main()
