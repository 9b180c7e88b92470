"""Events settings: the shared ones (CLUSTERHUB_*) plus where it listens and how it calls the registry
(CLUSTERHUB_EVENTS_*). The registry's address is the shared `CLUSTERHUB_REGISTRY_URL`."""
from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.http import MIB
from shared.settings import CommonSettings


class EventsSettings(CommonSettings):
    # Aliases give the service-specific variable names; by-name lets code pass host=..., port=...
    model_config = SettingsConfigDict(**CommonSettings.model_config, populate_by_name=True)

    host: str = Field(default="127.0.0.1", validation_alias="CLUSTERHUB_EVENTS_HOST")
    port: int = Field(default=8002, ge=1, le=65535, validation_alias="CLUSTERHUB_EVENTS_PORT")
    max_body_bytes: int = Field(default=MIB, ge=1024, validation_alias="CLUSTERHUB_EVENTS_MAX_BODY_BYTES")
    registry_timeout: float = Field(default=3.0, gt=0, le=60, validation_alias="CLUSTERHUB_EVENTS_REGISTRY_TIMEOUT",
                                    description="Seconds per registry call")
    registry_retries: int = Field(default=2, ge=0, le=10, validation_alias="CLUSTERHUB_EVENTS_REGISTRY_RETRIES",
                                  description="Extra attempts after a failed registry call")
    registry_backoff: float = Field(default=0.2, ge=0, le=10, validation_alias="CLUSTERHUB_EVENTS_REGISTRY_BACKOFF",
                                    description="Seconds before the first retry; doubles each time")
    retry_after: int = Field(default=10, ge=1, le=3600, validation_alias="CLUSTERHUB_EVENTS_RETRY_AFTER",
                             description="Retry-After (seconds) when the registry does not answer")
