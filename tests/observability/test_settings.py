"""Settings come from the environment and refuse what is unsafe outside development."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.events.settings import EventsSettings
from shared.settings import DEV_SIGNING_KEY, CommonSettings

OWN_KEY = "prod-1:" + "s" * 48


def test_production_refuses_the_development_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLUSTERHUB_ENVIRONMENT", "production")
    monkeypatch.setenv("CLUSTERHUB_AUTH_SIGNING_KEYS", DEV_SIGNING_KEY)
    with pytest.raises(ValidationError, match="development key"):
        CommonSettings()
    monkeypatch.setenv("CLUSTERHUB_ENVIRONMENT", "development")
    assert CommonSettings().auth_signing_keys == [DEV_SIGNING_KEY]


def test_production_logs_json_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLUSTERHUB_AUTH_SIGNING_KEYS", OWN_KEY)
    assert CommonSettings().log_json is False
    monkeypatch.setenv("CLUSTERHUB_ENVIRONMENT", "production")
    assert CommonSettings().log_json is True
    monkeypatch.setenv("CLUSTERHUB_LOG_JSON", "false")
    assert CommonSettings().log_json is False


def test_tracing_endpoint_from_ours_or_the_standard_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLUSTERHUB_OTEL_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert EventsSettings().otel_endpoint is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert EventsSettings().otel_endpoint == "http://collector:4318"
    monkeypatch.setenv("CLUSTERHUB_OTEL_ENDPOINT", "http://tempo:4318")
    assert EventsSettings().otel_endpoint == "http://tempo:4318"


def test_readiness_lag_limit_is_not_negative(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLUSTERHUB_READY_MAX_LAG", "-1")
    with pytest.raises(ValidationError, match="ready_max_lag"):
        CommonSettings()
