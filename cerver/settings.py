"""Gateway configuration, read from ``CERVER_*`` environment variables.

Provider keys use the providers' own variable names (``ANTHROPIC_API_KEY``,
``OPENAI_BASE_URL``…) so an existing shell setup just works.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cerver.types import SandboxLimits

__all__ = ["SANDBOX_LIMITS_MAX", "Settings"]

SANDBOX_LIMITS_MAX = SandboxLimits(
    processes=4096,
    memory_mb=16384,
    cpu_seconds=86400,
    cpus=8,
    disk_mb=65536,
    open_files=65536,
    wall_seconds=86400,
)
"""The default of ``CERVER_SANDBOX_LIMITS_MAX``."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CERVER_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8787
    data_dir: Path = Path("~/.cerver")
    database_url: str | None = None
    admin_key: str | None = None

    default_harness: str = "anthropic"
    default_compute: str | None = "local"
    max_body_bytes: int = 1_048_576
    run_lease_seconds: float = 30.0

    # The one retry layer for model calls (harnesses/retry.py); SDK retries are off.
    upstream_max_attempts: int = Field(default=3, ge=1)
    upstream_retry_base_delay: float = Field(default=0.5, ge=0)
    upstream_retry_max_delay: float = Field(default=8.0, ge=0)

    anthropic_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY", "CERVER_ANTHROPIC_API_KEY")
    )
    anthropic_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ANTHROPIC_BASE_URL", "CERVER_ANTHROPIC_BASE_URL"),
    )
    openai_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "CERVER_OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "CERVER_OPENAI_BASE_URL")
    )
    gemini_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("GEMINI_API_KEY", "CERVER_GEMINI_API_KEY")
    )
    gemini_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("GEMINI_BASE_URL", "CERVER_GEMINI_BASE_URL")
    )
    otel_capture_content: bool = Field(
        default=False,
        description="Put message content (prompts, answers, tool arguments and output) on "
        "OpenTelemetry spans. Off by default: spans then carry ids, names, counts and timings.",
    )
    mock_upstream: bool | None = Field(
        default=None,
        description="Serve models from the in-process mock upstream (a test double). "
        "Default: on when no provider key is configured.",
    )

    @cached_property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.resolved_data_dir / 'cerver.db'}"

    @property
    def use_mock_upstream(self) -> bool:
        if self.mock_upstream is not None:
            return self.mock_upstream
        return not (self.anthropic_api_key or self.openai_api_key or self.gemini_api_key)

    # -- sandboxes (compute/local.py, cerver/services/sandbox_policy.py) -------------------
    sandbox_limits: SandboxLimits = Field(
        default_factory=SandboxLimits,
        description="Default limits of every sandbox command (JSON, e.g. "
        "'{\"memory_mb\": 2048}'; unnamed fields keep their defaults).",
    )
    sandbox_limits_max: SandboxLimits = Field(
        default_factory=lambda: SANDBOX_LIMITS_MAX,
        description="The most a session may ask for in requirements.limits (JSON; unnamed "
        "fields keep their default maxima).",
    )
    sandbox_egress: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts sandboxes may reach when a session asks for requirements.network "
        "(comma-separated host or host:port; '*.example.com' matches subdomains). Empty "
        "(default): no session may ask for network.",
    )

    @field_validator("sandbox_limits_max", mode="before")
    @classmethod
    def _over_default_maxima(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, dict):
            return {**SANDBOX_LIMITS_MAX.model_dump(), **value}
        return value

    @field_validator("sandbox_egress", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [host.strip() for host in value.split(",") if host.strip()]
        return value
