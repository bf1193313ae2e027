"""Gateway configuration, read from ``CERVER_*`` environment variables.

Provider keys use the providers' own variable names (``ANTHROPIC_API_KEY``,
``OPENAI_BASE_URL``…) so an existing shell setup just works. Which variables exist is the
provider registry's business (:mod:`cerver.providers`): settings have no field per provider.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cerver.providers import ModelProvider, openai_compatible, providers
from cerver.types import SandboxLimits

__all__ = ["SANDBOX_LIMITS_MAX", "OpenAICompatible", "Settings"]

_KEYWORD_SUFFIXES = {"_api_key": "api_keys", "_base_url": "base_urls"}

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


class OpenAICompatible(BaseModel):
    """An OpenAI-compatible endpoint named in ``CERVER_OPENAI_COMPATIBLE``."""

    base_url: str
    key_env: str | None = None
    pricing_id: str | None = None
    account_base_url: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CERVER_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8787
    data_dir: Path = Path("~/.cerver")
    database_url: str | None = None
    admin_key: str | None = None

    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="The URL remote sandboxes reach this gateway at (CERVER_PUBLIC_URL): CLI "
        "harnesses in relay, E2B or other remote sandboxes call the model proxy at "
        "<public_url>/v2/proxy/{provider}/… with their run's token. Unset: CLI harnesses "
        "run in local sandboxes only.",
    )

    default_harness: str = "anthropic"
    default_compute: str | None = "local"
    max_body_bytes: int = 1_048_576
    # A run's lease: the process running a turn renews it every third of this; once it runs
    # out, any replica's reaper ends the run as interrupted and frees its session.
    run_lease_seconds: float = Field(default=30.0, gt=0)
    # How often each process reads cancel requests stored by other replicas.
    cancel_poll_seconds: float = Field(default=1.0, gt=0)
    # SIGTERM: running turns get this long to finish, then are stopped as interrupted.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)

    # The one retry layer for model calls (cerver/retry.py); SDK retries are off.
    upstream_max_attempts: int = Field(default=3, ge=1)
    upstream_retry_base_delay: float = Field(default=0.5, ge=0)
    upstream_retry_max_delay: float = Field(default=8.0, ge=0)
    # A model stream silent this long (no chunk) is abandoned as stalled: retried if nothing
    # was streamed yet, kept as ``incomplete`` otherwise (SDK harnesses: harnesses/_loop.py).
    upstream_idle_timeout: float = Field(default=60.0, gt=0)

    # Provider keys and base URLs are not fields of their own: each registered provider
    # (cerver.providers) names its variables, read by provider_api_key/provider_base_url.
    api_keys: dict[str, SecretStr | None] = Field(
        default_factory=dict,
        description="Provider → key, overriding the provider's variable (None: no key). "
        "The keyword `<provider>_api_key=` fills it too.",
    )
    base_urls: dict[str, str | None] = Field(
        default_factory=dict,
        description="Provider → base URL, overriding the provider's variable "
        "(keyword `<provider>_base_url=`).",
    )
    openai_compatible: dict[str, OpenAICompatible] = Field(
        default_factory=dict,
        description="OpenAI-compatible endpoints this gateway serves as model providers, "
        'by name: CERVER_OPENAI_COMPATIBLE=\'{"acme": {"base_url": "https://…/v1"}}\'. '
        "Each is keyed by <NAME>_API_KEY (or its key_env).",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="The Fernet key that encrypts accounts' provider credentials at rest. "
        "Default: generated on first start into <data dir>/secret_key (mode 0600).",
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

    @model_validator(mode="before")
    @classmethod
    def _provider_keywords(cls, data: Any) -> Any:
        """``anthropic_api_key="…"`` → ``api_keys["anthropic"]`` (any provider's name)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in [k for k in data if isinstance(k, str) and k not in cls.model_fields]:
            for suffix, target in _KEYWORD_SUFFIXES.items():
                if key.endswith(suffix) and key != suffix.lstrip("_"):
                    name = key.removesuffix(suffix).replace("_", "-")
                    data[target] = {**data.get(target, {}), name: data.pop(key)}
        return data

    def model_providers(self) -> list[ModelProvider]:
        """The registry's model providers plus this gateway's OpenAI-compatible endpoints."""
        named = self.openai_compatible_providers()
        known = {p.name for p in named}
        return [*(p for p in providers.models() if p.name not in known), *named]

    def openai_compatible_providers(self) -> list[ModelProvider]:
        return [
            openai_compatible(
                name,
                spec.base_url,
                key_env=spec.key_env,
                pricing_id=spec.pricing_id,
                account_base_url=spec.account_base_url,
            )
            for name, spec in self.openai_compatible.items()
        ]

    def provider_api_key(self, provider: ModelProvider) -> str | None:
        """The gateway's key for ``provider``: an explicit ``api_keys`` entry, else its
        variable (``ANTHROPIC_API_KEY``), else ``CERVER_<NAME>_API_KEY``."""
        if provider.name in self.api_keys:
            key = self.api_keys[provider.name]
            return key.get_secret_value() if key is not None else None
        return os.environ.get(provider.key_env) or os.environ.get(provider.env_alias) or None

    def provider_base_url(self, provider: ModelProvider) -> str | None:
        """The gateway's base URL for ``provider`` (``None``: the provider's default)."""
        if provider.name in self.base_urls:
            return self.base_urls[provider.name]
        return (os.environ.get(provider.base_url_env) if provider.base_url_env else None) or None

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
        return not any(self.provider_api_key(p) for p in self.model_providers())

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
