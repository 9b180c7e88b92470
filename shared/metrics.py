"""Prometheus metrics: what every service counts, and how `/metrics` renders it.

One registry per process, prometheus_client's default, which also carries the process and
Python collectors. With several uvicorn workers or replicas, each process exposes its own
figures on its own `/metrics` and Prometheus sums them across targets; multiprocess mode is
not used, so a service run with `--workers N` behind one port shows one worker per scrape
(run one worker per container and scale by replicas instead, as deploy/ does).

Three kinds of figures:
- counted as things happen: HTTP requests, scheduler runs, webhook deliveries (module level);
- event appends, on the hottest path there is: plain counters under a lock (well under a
  microsecond), turned into a histogram only when scraped (`AppendStats`);
- read on scrape from the store: the log head, each catch-up consumer's lag, the outbox depth
  (`shared.observability` gathers them in one read transaction per scrape).
"""
from __future__ import annotations

import bisect
import functools
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ParamSpec, TypeVar

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

P = ParamSpec("P")
R = TypeVar("R")

# --------------------------------------------------------------------------------------------
# HTTP

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HTTP_LABELS = ("service", "method", "route", "status")

HTTP_REQUESTS = Counter("clusterhub_http_requests_total", "HTTP requests answered, by route template and status",
                        HTTP_LABELS)
HTTP_DURATION = Histogram("clusterhub_http_request_duration_seconds",
                          "Time from the request's arrival to the end of its response", HTTP_LABELS,
                          buckets=HTTP_BUCKETS)

_http_children: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}


def observe_request(service: str, method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request; `route` is the template (`/v1/organisations/{id}`), never the raw path."""
    key = (service, method, route, str(status))
    children = _http_children.get(key)
    if children is None:
        # .labels() takes a lock and builds a key each call: look each series up once.
        children = _http_children.setdefault(key, (HTTP_REQUESTS.labels(*key), HTTP_DURATION.labels(*key)))
    children[0].inc()
    children[1].observe(seconds)


# --------------------------------------------------------------------------------------------
# Read cache (shared/read_cache.py)

_READ_CACHE = Counter("clusterhub_read_cache_requests_total",
                      "Cacheable reads, by outcome: hit (answered from memory), miss (the route ran), "
                      "bypass (no-cache, or the store's version unknown)", ["outcome"])
READ_CACHE_HITS, READ_CACHE_MISSES, READ_CACHE_BYPASS = (_READ_CACHE.labels(outcome)
                                                         for outcome in ("hit", "miss", "bypass"))


class _ReadCacheSize(Collector):
    """Entries and bytes held, summed over the process's caches (tests build many apps: weakly held)."""

    def __init__(self) -> None:
        self.caches: weakref.WeakSet[Any] = weakref.WeakSet()

    def collect(self) -> Iterator[Metric]:
        caches = list(self.caches)
        yield GaugeMetricFamily("clusterhub_read_cache_entries", "Responses held by the read cache",
                                value=sum(len(cache.entries) for cache in caches))
        yield GaugeMetricFamily("clusterhub_read_cache_bytes", "Bytes of response bodies held by the read cache",
                                value=sum(cache.bytes for cache in caches))


_READ_CACHE_SIZE = _ReadCacheSize()
REGISTRY.register(_READ_CACHE_SIZE)


def watch_read_cache(cache: Any) -> None:
    _READ_CACHE_SIZE.caches.add(cache)


# --------------------------------------------------------------------------------------------
# Event appends

APPEND_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class AppendStats(Collector):
    """Appends to the event log: how many, how many events, and how long each took.

    `EventLog.append` calls `observe` once per append; a lock and three additions cost about
    0.5 µs where a prometheus_client histogram and counter cost about 1.6 µs.
    """

    def __init__(self, buckets: tuple[float, ...] = APPEND_BUCKETS) -> None:
        self.buckets = buckets
        self._lock = threading.Lock()
        self._counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._events = 0

    def observe(self, seconds: float, events: int) -> None:
        with self._lock:
            self._counts[bisect.bisect_left(self.buckets, seconds)] += 1
            self._sum += seconds
            self._events += events

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts, total, events = list(self._counts), self._sum, self._events
        cumulative, running = [], 0
        for bound, count in zip((*self.buckets, float("inf")), counts):
            running += count
            cumulative.append(("+Inf" if bound == float("inf") else repr(bound), running))
        duration = HistogramMetricFamily(
            "clusterhub_event_append_duration_seconds",
            "Time an append takes in its transaction, inline projections included (commit excluded)")
        duration.add_metric([], cumulative, total)
        yield duration
        yield CounterMetricFamily("clusterhub_event_appends", "Appends to the event log (calls that wrote events)",
                                  value=running)
        yield CounterMetricFamily("clusterhub_events_appended", "Events written to the event log", value=events)


APPENDS = AppendStats()
REGISTRY.register(APPENDS)


# --------------------------------------------------------------------------------------------
# Scheduler

SCHEDULER_RUNS = Counter("clusterhub_scheduler_runs_total", "Auto-scheduler searches, by outcome (ok, error)",
                         ["outcome"])
SCHEDULER_DURATION = Histogram("clusterhub_scheduler_run_duration_seconds", "Time an auto-scheduler search takes",
                               buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))


def timed_scheduler_run(search: Callable[P, R]) -> Callable[P, R]:
    """Count and time every call of `search` (the scheduler's blocking solve)."""

    @functools.wraps(search)
    def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = search(*args, **kwargs)
            outcome = "ok"
            return result
        finally:
            SCHEDULER_RUNS.labels(outcome).inc()
            SCHEDULER_DURATION.observe(time.perf_counter() - started)

    return timed


# --------------------------------------------------------------------------------------------
# Webhooks (the delivery worker that uses these is yet to come; the names are fixed here)

WEBHOOK_DELIVERIES = Counter("clusterhub_webhook_deliveries_total",
                             "Webhook delivery attempts, by outcome (delivered, failed, abandoned)", ["outcome"])
WEBHOOK_DELIVERY_DURATION = Histogram("clusterhub_webhook_delivery_duration_seconds",
                                      "Time from sending a webhook to its answer",
                                      buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


# --------------------------------------------------------------------------------------------
# Worker leases (shared/leases.py): which process runs each exclusive background worker

LEASE_HELD = Gauge("clusterhub_worker_lease_held",
                   "1 while this process holds the worker's lease and runs it; summed over replicas, 0 or 1",
                   ["worker"])


# --------------------------------------------------------------------------------------------
# Read on scrape (values come from shared.observability)

LOG_HEAD = "clusterhub_event_log_head_position"
SUBSCRIPTION_LAG = "clusterhub_subscription_lag_events"
STORE_UP = "clusterhub_store_up"
OUTBOX_DEPTH = "clusterhub_outbox_depth"


def gauge(name: str, documentation: str, value: float | None = None,
          labelled: dict[str, float] | None = None, label: str = "name") -> GaugeMetricFamily:
    """A scrape-time gauge: one `value`, or one series per `labelled` key under `label`."""
    if labelled is None:
        return GaugeMetricFamily(name, documentation, value=value)
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, each in sorted(labelled.items()):
        family.add_metric([key], each)
    return family


class _Scrape(Collector):
    def __init__(self, extra: Iterable[Metric]) -> None:
        self.extra = list(extra)

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        yield from self.extra


def render(accept: str | None, extra: Iterable[Metric] = ()) -> tuple[bytes, str]:
    """The process's metrics plus `extra`, in the text format the scraper asked for; (body, content type)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(_Scrape(extra)), content_type
