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
