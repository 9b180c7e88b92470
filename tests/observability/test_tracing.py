"""OpenTelemetry: off without an endpoint (nothing instrumented); with a provider, one trace from the
events service's request through its httpx call into the registry's server."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.events.app import create_app as create_events_app
from services.events.settings import EventsSettings
from shared import tracing
from tests.conftest import Store
from tests.observability.conftest import services


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_provider(None)
        provider.shutdown()


async def test_one_trace_from_the_events_request_into_the_registry(store: Store,
                                                                    exported: InMemorySpanExporter) -> None:
    async with services(store) as running:
        await running.brokerage()
    spans = exported.get_finished_spans()
    [created] = [s for s in spans if s.kind == SpanKind.SERVER and s.name == "POST /v1/events"]
    trace_id = created.context.trace_id
    [call] = [s for s in spans if s.kind == SpanKind.CLIENT and s.context.trace_id == trace_id]
    [checked] = [s for s in spans if s.kind == SpanKind.SERVER and s.name == "GET /v1/clusters/{cluster_id}"]
    assert call.parent.span_id == created.context.span_id
    assert checked.context.trace_id == trace_id, "the registry's span is not in the events request's trace"
    assert checked.parent.span_id == call.context.span_id
    assert call.attributes.get("http.response.status_code", call.attributes.get("http.status_code")) == 200
    assert not [s for s in spans if s.name.startswith(("GET /healthz", "GET /metrics"))]


def test_off_without_an_endpoint(store: Store) -> None:
    app = create_events_app(EventsSettings(), db=store.db)
    assert app.state.tracer_provider is None
    assert "OpenTelemetryMiddleware" not in [m.cls.__name__ for m in app.user_middleware]
    assert not getattr(app.state.registry.http, "_is_instrumented_by_opentelemetry", False)


def test_the_collector_url_takes_the_traces_path() -> None:
    assert tracing.traces_url("http://otel-collector:4318") == "http://otel-collector:4318/v1/traces"
    assert tracing.traces_url("http://otel-collector:4318/v1/traces/") == "http://otel-collector:4318/v1/traces"
