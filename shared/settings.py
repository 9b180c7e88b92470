"""Configuration from the environment only (prefix CLUSTERHUB_); read in create_app, never at import."""
from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Known to everyone who reads this file: fine on a laptop, refused in production.
DEV_SIGNING_KEY = "dev:clusterhub-development-signing-key-do-not-use-in-production"


class CommonSettings(BaseSettings):
    """What every service and the command line share."""

    model_config = SettingsConfigDict(env_prefix="CLUSTERHUB_", env_file=".env", env_ignore_empty=True, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(default="sqlite:///./var/clusterhub.db", description="SQLite file or PostgreSQL URL")
    db_pool_size: int = 10
    log_level: str = "INFO"
    log_json: bool = Field(default=False, description="One JSON object per log line; on by default in production")
    # Observability (shared/observability.py, shared/tracing.py).
    access_log: bool = Field(default=True, description="One log line per request (health probes and scrapes excepted)")
    otel_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("CLUSTERHUB_OTEL_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="OTLP/HTTP collector URL (e.g. http://otel-collector:4318); no tracing without it")
    ready_max_lag: int = Field(default=1000, ge=0,
                               description="/readyz fails while a catch-up consumer is more events behind the log")
    registry_url: str = "http://127.0.0.1:8001"
    events_url: str = "http://127.0.0.1:8002"
    matchmaking_url: str = "http://127.0.0.1:8003"
    # Bounded writes (shared/idempotency.py, shared/ratelimit.py).
    idempotency_ttl_hours: float = Field(default=24, gt=0, description="How long an Idempotency-Key is kept")
    rate_limit_per_minute: int = Field(default=600, ge=0, description="Requests per client and minute; 0 = off")
    rate_limit_burst: int | None = Field(default=None, ge=1, description="Bucket size; default: one minute's worth")
    cors_origins: str = Field(default="", description="Comma-separated origins allowed by CORS; empty = none")

    # Authentication (shared/auth.py): HS256 keys as "kid:secret", a JSON list or comma-separated.
    # The first signs new tokens; all verify, so a new key can be put first while the old one still verifies.
    auth_signing_keys: Annotated[list[str], NoDecode] = Field(default=[DEV_SIGNING_KEY], min_length=1)
    auth_issuer: str = Field(default="clusterhub", min_length=1, max_length=200)
    auth_token_ttl: int = Field(default=3600, ge=60, le=30 * 86_400, description="Seconds a token stays valid")

    @field_validator("auth_signing_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [k.strip() for k in text.split(",") if k.strip()]
        return value

    @field_validator("auth_signing_keys")
    @classmethod
    def _check_keys(cls, keys: list[str]) -> list[str]:
        kids = []
        for key in keys:
            kid, _, secret = key.partition(":")
            if not kid or not kid.replace("-", "").replace("_", "").replace(".", "").isalnum():
                raise ValueError("each key is kid:secret, the kid letters, digits, '-', '_' or '.'")
            if len(secret) < 32:
                raise ValueError(f"the secret of key {kid!r} is shorter than 32 characters")
            kids.append(kid)
        if len(set(kids)) != len(kids):
            raise ValueError("two signing keys share a kid")
        return keys

    @model_validator(mode="after")
    def _json_logs_in_production(self) -> "CommonSettings":
        # A log collector wants JSON lines; an explicit CLUSTERHUB_LOG_JSON=false still wins.
        if self.environment == "production" and "log_json" not in self.model_fields_set:
            self.log_json = True
        return self

    @model_validator(mode="after")
    def _no_development_key_in_production(self) -> "CommonSettings":
        if self.environment == "production" and DEV_SIGNING_KEY in self.auth_signing_keys:
            raise ValueError("CLUSTERHUB_AUTH_SIGNING_KEYS holds the development key: set your own in production")
        return self

    @property
    def signing_keys(self) -> dict[str, str]:
        """kid -> secret, the signing key first."""
        return dict(key.split(":", 1) for key in self.auth_signing_keys)  # type: ignore[misc]

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]
