"""Long-lived plug-in instances of one gateway process: harnesses and compute providers.

One instance per name, so each upstream gets one pooled HTTP client. Harnesses are built with
the upstream base URL and key of their provider: the configured ones, or the in-process mock
upstream (a test double) when the gateway runs on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from cerver.errors import NotConfigured
from cerver.registry import Registry, compute_registry, harness_registry
from cerver.settings import Settings
from compute.base import Compute, Sandbox
from harnesses.base import Harness
from harnesses.retry import RetryPolicy

__all__ = ["ComputePool", "HarnessPool", "Upstream", "Upstreams"]

log = logging.getLogger("cerver.plugins")


@dataclass(frozen=True, slots=True)
class Upstream:
    base_url: str | None
    api_key: str | None
    key_variable: str = ""
    #: More constructor arguments (a harness reaching two providers takes both URLs).
    extra: dict[str, Any] = field(default_factory=dict)


class Upstreams:
    """Where each model provider is reached; ``mock`` is true when it is the mock upstream."""

    def __init__(
        self,
        by_provider: dict[str, Upstream],
        *,
        mock: bool,
        retry: RetryPolicy | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        self._by_provider = by_provider
        self.mock = mock
        #: How SDK harnesses retry failed model calls (``None``: the harness's default).
        self.retry = retry
        #: Seconds an SDK harness's model stream may stay silent (``None``: its default).
        self.idle_timeout = idle_timeout

    @classmethod
    def from_settings(cls, settings: Settings, mock_url: str | None = None) -> Upstreams:
        retry = RetryPolicy(
            max_attempts=settings.upstream_max_attempts,
            base_delay=settings.upstream_retry_base_delay,
            max_delay=settings.upstream_retry_max_delay,
        )
        if mock_url is not None:
            return cls(
                {
                    "anthropic": Upstream(mock_url, "cerver-mock-upstream"),
                    "openai": Upstream(f"{mock_url}/v1", "cerver-mock-upstream"),
                    "gemini": Upstream(mock_url, "cerver-mock-upstream"),
                    # LiteLLM's models (xai/…, openai/…) reach the mock's Chat Completions.
                    "litellm": Upstream(f"{mock_url}/v1", "cerver-mock-upstream"),
                    "pydantic-ai": Upstream(
                        f"{mock_url}/v1",
                        "cerver-mock-upstream",
                        extra={
                            "anthropic_base_url": mock_url,
                            "anthropic_api_key": "cerver-mock-upstream",
                        },
                    ),
                },
                mock=True,
                retry=retry,
                idle_timeout=settings.upstream_idle_timeout,
            )
        return cls(
            {
                "anthropic": Upstream(
                    settings.anthropic_base_url, settings.anthropic_api_key, "ANTHROPIC_API_KEY"
                ),
                "openai": Upstream(
                    settings.openai_base_url, settings.openai_api_key, "OPENAI_API_KEY"
                ),
                "gemini": Upstream(
                    settings.gemini_base_url, settings.gemini_api_key, "GEMINI_API_KEY"
                ),
            },
            mock=False,
            retry=retry,
            idle_timeout=settings.upstream_idle_timeout,
        )

    def configured(self, provider: str) -> bool:
        upstream = self._by_provider.get(provider)
        return upstream is None or upstream.api_key is not None

    def kwargs_for(self, provider: str) -> dict[str, Any]:
        """Constructor arguments for a harness of ``provider``.

        Raises:
            NotConfigured: the provider has no API key on this gateway.
        """
        upstream = self._by_provider.get(provider)
        if upstream is None:
            return {}
        if upstream.api_key is None:
            raise NotConfigured(
                f"No API key for {provider!r} on this gateway: set {upstream.key_variable} "
                "where `cerver serve` runs, or pick a harness whose provider is configured.",
                context={"provider": provider, "variable": upstream.key_variable},
            )
        return {"base_url": upstream.base_url, "api_key": upstream.api_key, **upstream.extra}


class HarnessPool:
    def __init__(self, upstreams: Upstreams, registry: Registry = harness_registry) -> None:
        self.upstreams = upstreams
        self.registry = registry
        self._instances: dict[str, Harness] = {}

    def canonical(self, name: str) -> str:
        return self.registry.canonical(name)

    def harness_class(self, name: str) -> type[Harness]:
        return self.registry.load(name)

    def get(self, name: str) -> Harness:
        name = self.registry.canonical(name)
        if name not in self._instances:
            cls = self.registry.load(name)
            instance = cls(**self.upstreams.kwargs_for(cls.provider))
            if self.upstreams.retry is not None and hasattr(type(instance), "retry"):
                instance.retry = self.upstreams.retry
            idle = self.upstreams.idle_timeout
            if idle is not None and hasattr(type(instance), "idle_timeout"):
                instance.idle_timeout = idle
            self._instances[name] = instance
        return self._instances[name]

    async def aclose(self) -> None:
        for harness in self._instances.values():
            await harness.aclose()
        self._instances.clear()


class ComputePool:
    """Compute providers by name, each built once with its ``options`` (e.g. local's root)."""

    def __init__(
        self,
        options: dict[str, dict[str, Any]] | None = None,
        registry: Registry = compute_registry,
    ) -> None:
        self.registry = registry
        self._options = options or {}
        self._providers: dict[str, Compute] = {}
        self._sandboxes: dict[str, Sandbox] = {}

    def canonical(self, name: str) -> str:
        return self.registry.canonical(name)

    def provider(self, name: str) -> Compute:
        name = self.registry.canonical(name)
        if name not in self._providers:
            self._providers[name] = self.registry.load(name)(**self._options.get(name, {}))
        return self._providers[name]

    async def sandbox(self, provider: str, sandbox_id: str) -> Sandbox:
        """A handle to an existing sandbox (cached; re-attached after a restart)."""
        key = f"{provider}:{sandbox_id}"
        if key not in self._sandboxes:
            self._sandboxes[key] = await self.provider(provider).attach(sandbox_id)
        return self._sandboxes[key]

    def remember(self, provider: str, sandbox: Sandbox) -> None:
        self._sandboxes[f"{provider}:{sandbox.sandbox_id}"] = sandbox

    async def release(self, provider: str, sandbox_id: str) -> None:
        sandbox = await self.sandbox(provider, sandbox_id)
        await sandbox.delete()
        self._sandboxes.pop(f"{provider}:{sandbox_id}", None)

    async def aclose(self) -> None:
        for compute in self._providers.values():
            await compute.aclose()
        self._providers.clear()
        self._sandboxes.clear()
