"""Long-lived plug-in instances of one gateway process: harnesses and compute providers.

One instance per name and set of credentials, so each upstream gets one pooled HTTP client.
Harnesses are built with the endpoints of their providers (:mod:`cerver.providers`): the
gateway's, an account's own keys on top of them, or the in-process mock upstream (a test
double) when the gateway runs on it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from cerver.errors import UnknownPlugin
from cerver.providers import Endpoint, Endpoints, ModelProvider, ProviderRegistry, providers
from cerver.registry import Registry, compute_registry, harness_registry
from cerver.retry import RetryPolicy
from cerver.settings import Settings
from compute.base import Compute, Sandbox
from harnesses.base import Harness

__all__ = ["MOCK_API_KEY", "ComputePool", "HarnessPool", "Upstreams"]

MOCK_API_KEY = "cerver-mock-upstream"
"""The placeholder key the gateway sends to the mock upstream."""

log = logging.getLogger("cerver.plugins")


class Upstreams:
    """Where each model provider is reached from this gateway, read from the provider
    registry: the configured endpoints, or all of them on the mock upstream (a test double).

    Args:
        endpoints: the gateway's endpoints (see :meth:`from_settings`).
        retry: how SDK harnesses retry failed model calls (``None``: the harness's default).
        idle_timeout: seconds a model stream may stay silent before the attempt counts as
            failed (``CERVER_UPSTREAM_IDLE_TIMEOUT``; ``None``: the harness's default).
    """

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        retry: RetryPolicy | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.retry = retry
        self.idle_timeout = idle_timeout

    @property
    def mock(self) -> bool:
        """Whether the endpoints are the mock upstream's."""
        return self.endpoints.mock

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        mock_url: str | None = None,
        *,
        registry: ProviderRegistry = providers,
    ) -> Upstreams:
        """Every model provider of ``settings``, at its configured endpoint, or in its
        dialect on the mock upstream served at ``mock_url``.

        The operator's OpenAI-compatible endpoints (``CERVER_OPENAI_COMPATIBLE``) join
        ``registry`` here, so every reader (harnesses, proxy, mock upstream,
        ``GET /v2/providers``, account credentials) knows them.
        """
        for provider in settings.openai_compatible_providers():
            registry.register(provider)
        retry = RetryPolicy(
            max_attempts=settings.upstream_max_attempts,
            base_delay=settings.upstream_retry_base_delay,
            max_delay=settings.upstream_retry_max_delay,
        )
        if mock_url is not None:
            gateway = {
                p.name: Endpoint(p.name, p.mock_base_url(mock_url), MOCK_API_KEY, "mock")
                for p in settings.model_providers()
            }
        else:
            gateway = {
                p.name: Endpoint(
                    p.name, settings.provider_base_url(p), settings.provider_api_key(p)
                )
                for p in settings.model_providers()
            }
        return cls(
            Endpoints(registry, gateway, mock=mock_url is not None),
            retry=retry,
            idle_timeout=settings.upstream_idle_timeout,
        )

    def configured(self, provider: str) -> bool:
        """Whether the gateway has a key for ``provider``.

        Raises:
            UnknownPlugin: the registry knows no model provider of that name.
        """
        return self.endpoints.configured(provider)

    def kwargs_for(self, provider: str) -> dict[str, Any]:
        """``base_url`` and ``api_key`` of ``provider`` on this gateway.

        Raises:
            UnknownPlugin: the registry knows no model provider of that name.
            NotConfigured: the provider has no API key on this gateway.
        """
        endpoint = self.endpoints.require(provider)
        return {"base_url": endpoint.base_url, "api_key": endpoint.api_key}


class HarnessPool:
    def __init__(
        self,
        upstreams: Upstreams,
        registry: Registry = harness_registry,
        *,
        provider_registry: ProviderRegistry = providers,
    ) -> None:
        self.upstreams = upstreams
        self.registry = registry
        self.providers = provider_registry
        #: An account's own model endpoints (``CredentialService.model_endpoints``); set by
        #: the gateway. ``None``: every caller uses the gateway's.
        self.account_endpoints: Callable[[str], Awaitable[dict[str, Endpoint]]] | None = None
        self._instances: dict[str, Harness] = {}

    async def endpoints_for(self, account_id: str | None) -> Endpoints:
        """The endpoints ``account_id``'s turns use: its own keys over the gateway's."""
        gateway = self.upstreams.endpoints
        if account_id is None or self.account_endpoints is None:
            return gateway
        own = await self.account_endpoints(account_id)
        return gateway.with_account(own) if own else gateway

    def canonical(self, name: str) -> str:
        """The registered harness name for ``name``; a model provider that declares an
        ``sdk_harness`` (an OpenAI-compatible endpoint) is a harness of its own name.

        Raises:
            UnknownPlugin: neither a harness nor such a provider.
        """
        try:
            return self.registry.canonical(name)
        except UnknownPlugin:
            provider = self.providers.bound_harness(name)
            if provider is None:
                raise
            self.registry.register(name, self._bind(provider))
            return name

    def harness_class(self, name: str) -> type[Harness]:
        return self.registry.load(self.canonical(name))

    def get(self, name: str, endpoints: Endpoints | None = None) -> Harness:
        """The harness ``name`` reaching its providers at ``endpoints`` (default: the
        gateway's). One instance per distinct set of credentials, built on first use.

        Raises:
            UnknownPlugin: unknown harness, or a harness whose provider is not registered.
            MissingDependency: the harness's SDK is not installed.
            NotConfigured: no key for the harness's provider, neither the account's nor the
                gateway's.
        """
        name = self.canonical(name)
        cls = self.registry.load(name)
        kwargs = cls.upstream_arguments(endpoints or self.upstreams.endpoints)
        # Keyed by a digest of the arguments, so accounts sharing the gateway's keys share
        # its instance; the digest, not the keys, is what stays in the dict's keys.
        digest = hashlib.sha256(orjson.dumps(kwargs, default=str, option=orjson.OPT_SORT_KEYS))
        key = f"{name}:{digest.hexdigest()}"
        if key not in self._instances:
            instance = cls(**kwargs)
            if self.upstreams.retry is not None and hasattr(type(instance), "retry"):
                instance.retry = self.upstreams.retry
            idle = self.upstreams.idle_timeout
            if idle is not None and hasattr(type(instance), "idle_timeout"):
                instance.idle_timeout = idle
            self._instances[key] = instance
        return self._instances[key]

    def forget_session(self, session_id: str) -> None:
        """Tell every harness built so far that ``session_id`` was deleted."""
        for instance in self._instances.values():
            instance.forget_session(session_id)

    def _bind(self, provider: ModelProvider) -> type[Harness]:
        """A harness class for ``provider``: its ``sdk_harness``'s, named after it."""
        assert provider.sdk_harness is not None
        base = self.registry.load(provider.sdk_harness)
        attributes: dict[str, Any] = {
            "name": provider.name,
            "provider": provider.name,
            "__doc__": f"The {base.name!r} harness reaching the {provider.name!r} provider.",
            "__module__": base.__module__,
        }
        if provider.default_model:
            attributes["default_model"] = provider.default_model
        camel = "".join(part.title() for part in provider.name.split("-"))
        return type(f"{camel}Harness", (base,), attributes)

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

    def provider(self, name: str, credentials: dict[str, Any] | None = None) -> Compute:
        """The compute provider ``name``, built once per set of ``credentials`` (constructor
        arguments carrying an account's own key; none: the gateway's environment)."""
        name = self.registry.canonical(name)
        key = name
        if credentials:
            digest = hashlib.sha256(orjson.dumps(credentials, option=orjson.OPT_SORT_KEYS))
            key = f"{name}:{digest.hexdigest()}"
        if key not in self._providers:
            options = {**self._options.get(name, {}), **(credentials or {})}
            self._providers[key] = self.registry.load(name)(**options)
        return self._providers[key]

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
