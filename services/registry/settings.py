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
