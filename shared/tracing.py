"""OpenTelemetry tracing: a span for every request a service answers and every httpx call it makes,
exported over OTLP/HTTP when an endpoint is configured (`CLUSTERHUB_OTEL_ENDPOINT`, or the standard
`OTEL_EXPORTER_OTLP_ENDPOINT`). Without one nothing is instrumented: no middleware, no wrapped
transport, no cost.

The trace context travels between services in the W3C `traceparent` header, which the httpx
instrumentation writes and the FastAPI instrumentation reads, so one user action is one trace
across the events service and the registry it asks.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry import trace

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider

    from shared.settings import CommonSettings

# Health probes and scrapes would be most of the spans, and say nothing.
EXCLUDED_URLS = "/healthz,/readyz,/metrics"

_provider: TracerProvider | None = None  # the process's exporting provider, built on first use
_override: TracerProvider | None = None


def use_provider(provider: TracerProvider | None) -> None:
    """Make apps built from now on trace to `provider` whatever their settings (tests, or a process
    that sets up its own exporter); None goes back to the settings."""
    global _override
    _override = provider


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for a collector's base URL (as OTEL_EXPORTER_OTLP_ENDPOINT gives it)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


def provider_for(settings: CommonSettings, service: str) -> TracerProvider | None:
    """The tracer provider the service's app uses, or None when tracing is off."""
    global _provider
    if _override is not None:
        return _override
    if not settings.otel_endpoint:
        return None
    if _provider is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({"service.name": f"clusterhub-{service}", "service.namespace": "clusterhub",
                                    "deployment.environment.name": settings.environment})
        _provider = TracerProvider(resource=resource)  # flushes its spans at exit
        _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(settings.otel_endpoint))))
        trace.set_tracer_provider(_provider)  # for spans code may open by hand
    return _provider


def instrument_app(app: FastAPI, provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=EXCLUDED_URLS,
                                       exclude_spans=["receive", "send"])


def instrument_client(client: httpx.AsyncClient, provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)


def add_trace_ids(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: the current span's trace and span ids, so logs and traces join up."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict
