"""Matchmaking settings: the shared ones (CLUSTERHUB_*) plus where it listens, how it calls the events
service and how often its index follows the log (CLUSTERHUB_MATCHMAKING_*). The events service's
address is the shared `CLUSTERHUB_EVENTS_URL`."""
from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.http import MIB
from shared.settings import CommonSettings


class MatchmakingSettings(CommonSettings):
    # Aliases give the service-specific variable names; by-name lets code pass host=..., port=...
    model_config = SettingsConfigDict(**CommonSettings.model_config, populate_by_name=True)

    host: str = Field(default="127.0.0.1", validation_alias="CLUSTERHUB_MATCHMAKING_HOST")
    port: int = Field(default=8003, ge=1, le=65535, validation_alias="CLUSTERHUB_MATCHMAKING_PORT")
    max_body_bytes: int = Field(default=MIB, ge=1024, validation_alias="CLUSTERHUB_MATCHMAKING_MAX_BODY_BYTES")
    index_poll_interval: float = Field(default=0.2, gt=0, le=60,
                                       validation_alias="CLUSTERHUB_MATCHMAKING_INDEX_POLL_INTERVAL",
                                       description="Seconds between two looks at the log for the index")
    expiry_sweep_interval: float = Field(default=3600, gt=0, le=86_400,
                                         validation_alias="CLUSTERHUB_MATCHMAKING_EXPIRY_SWEEP_INTERVAL",
                                         description="Seconds between two sweeps recording expired opportunities")
    events_timeout: float = Field(default=3.0, gt=0, le=60, validation_alias="CLUSTERHUB_MATCHMAKING_EVENTS_TIMEOUT",
                                  description="Seconds per events-service call")
    events_retries: int = Field(default=2, ge=0, le=10, validation_alias="CLUSTERHUB_MATCHMAKING_EVENTS_RETRIES",
                                description="Extra attempts after a failed events-service call")
    events_backoff: float = Field(default=0.2, ge=0, le=10, validation_alias="CLUSTERHUB_MATCHMAKING_EVENTS_BACKOFF",
                                  description="Seconds before the first retry; doubles each time")
    retry_after: int = Field(default=10, ge=1, le=3600, validation_alias="CLUSTERHUB_MATCHMAKING_RETRY_AFTER",
                             description="Retry-After (seconds) when the events service does not answer")
