"""Configuration from the environment only (prefix CLUSTERHUB_); read in create_app, never at import."""
from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every service and the command line share."""

    model_config = SettingsConfigDict(env_prefix="CLUSTERHUB_", env_file=".env", env_ignore_empty=True, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(default="sqlite:///./var/clusterhub.db", description="SQLite file or PostgreSQL URL")
    db_pool_size: int = 10
    log_level: str = "INFO"
    log_json: bool = False
    registry_url: str = "http://127.0.0.1:8001"
    events_url: str = "http://127.0.0.1:8002"
    matchmaking_url: str = "http://127.0.0.1:8003"
    # Bounded writes (shared/idempotency.py, shared/ratelimit.py).
    idempotency_ttl_hours: float = Field(default=24, gt=0, description="How long an Idempotency-Key is kept")
    rate_limit_per_minute: int = Field(default=600, ge=0, description="Requests per client and minute; 0 = off")
    rate_limit_burst: int | None = Field(default=None, ge=1, description="Bucket size; default: one minute's worth")
    cors_origins: str = Field(default="", description="Comma-separated origins allowed by CORS; empty = none")

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]
