"""Registry settings: the shared ones (CLUSTERHUB_*) plus where it listens (CLUSTERHUB_REGISTRY_*)."""
from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.http import MIB
from shared.settings import CommonSettings


class RegistrySettings(CommonSettings):
    # Aliases give the service-specific variable names; by-name lets code pass host=..., port=...
    model_config = SettingsConfigDict(**CommonSettings.model_config, populate_by_name=True)

    host: str = Field(default="127.0.0.1", validation_alias="CLUSTERHUB_REGISTRY_HOST")
    port: int = Field(default=8001, ge=1, le=65535, validation_alias="CLUSTERHUB_REGISTRY_PORT")
    max_body_bytes: int = Field(default=MIB, ge=1024, validation_alias="CLUSTERHUB_REGISTRY_MAX_BODY_BYTES")
    # Federation (services/registry/federation/): what this instance calls itself in CloudEvents, and
    # how its feed builder and webhook deliveries run.
    federation_source: str = Field(default="urn:clusterhub:local", min_length=1, max_length=500,
                                   validation_alias="CLUSTERHUB_FEDERATION_SOURCE",
                                   description="CloudEvents `source` of this instance, e.g. https://hub.biowin.org")
    federation_workers: bool = Field(default=True, validation_alias="CLUSTERHUB_FEDERATION_WORKERS",
                                     description="Build the feed and deliver webhooks in this process")
    federation_feed_poll: float = Field(default=0.5, gt=0, le=60, validation_alias="CLUSTERHUB_FEDERATION_FEED_POLL")
    webhook_timeout: float = Field(default=5.0, gt=0, le=60, validation_alias="CLUSTERHUB_WEBHOOK_TIMEOUT",
                                   description="Seconds per delivery attempt (connect, send, answer)")
    webhook_max_attempts: int = Field(default=10, ge=1, le=50, validation_alias="CLUSTERHUB_WEBHOOK_MAX_ATTEMPTS")
    webhook_backoff: float = Field(default=5.0, gt=0, validation_alias="CLUSTERHUB_WEBHOOK_BACKOFF",
                                   description="Seconds before the first retry; doubles with each failure")
    webhook_backoff_max: float = Field(default=3600.0, gt=0, validation_alias="CLUSTERHUB_WEBHOOK_BACKOFF_MAX")
    webhook_poll: float = Field(default=0.5, gt=0, le=60, validation_alias="CLUSTERHUB_WEBHOOK_POLL")
    webhook_private_targets: bool | None = Field(
        default=None, validation_alias="CLUSTERHUB_WEBHOOK_PRIVATE_TARGETS",
        description="Allow webhook URLs on loopback, private or link-local addresses; default: not in production")

    @property
    def private_webhook_targets_allowed(self) -> bool:
        # A partner's URL pointing inside our network would make the deliveries a probe of it (SSRF).
        if self.webhook_private_targets is not None:
            return self.webhook_private_targets
        return self.environment != "production"
