"""A provider's resolved endpoint, and the endpoints one caller may use.

An :class:`Endpoint` holds a secret: its ``repr`` shows a fingerprint, never the key, so a
stray log line or traceback cannot leak it. :class:`Endpoints` is what a harness is built
from and what the model proxy forwards with: the gateway's endpoints, overlaid by one
account's own credentials when it has any.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from cerver.errors import NotConfigured

if TYPE_CHECKING:
    from cerver.providers.registry import ProviderRegistry

__all__ = ["Endpoint", "EndpointSource", "Endpoints", "fingerprint"]

EndpointSource = Literal["account", "gateway", "mock"]


def fingerprint(secret: str) -> str:
    """A short, stable, non-reversible name for a secret (``sha256:`` + 12 hex digits)."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one provider is reached and with which key.

    Attributes:
        provider: the provider's registry name.
        base_url: its base URL, ``None`` for the provider's default.
        api_key: the key, ``None`` when none is configured.
        source: whose key it is: an account's, the gateway's environment, or the mock
            upstream's placeholder.
    """

    provider: str
    base_url: str | None
    api_key: str | None = field(repr=False)
    source: EndpointSource = "gateway"

    def __repr__(self) -> str:
        key = fingerprint(self.api_key) if self.api_key else None
        return (
            f"Endpoint(provider={self.provider!r}, base_url={self.base_url!r}, "
            f"key={key!r}, source={self.source!r})"
        )


class Endpoints:
    """The endpoints of every model provider for one caller (immutable).

    Args:
        registry: the providers (every lookup goes through it, so an unknown name fails the
            same way everywhere).
        gateway: provider → the gateway's endpoint.
        account: provider → an account's own endpoint, winning over the gateway's.
        mock: whether the gateway's endpoints are the mock upstream (a test double).
    """

    def __init__(
        self,
        registry: ProviderRegistry,
        gateway: Mapping[str, Endpoint],
        account: Mapping[str, Endpoint] | None = None,
        *,
        mock: bool = False,
    ) -> None:
        self.registry = registry
        self._gateway = dict(gateway)
        self._account = dict(account or {})
        self.mock = mock

    def with_account(self, account: Mapping[str, Endpoint]) -> Endpoints:
        """These endpoints with ``account``'s own keys (and base URLs, where set) on top."""
        return Endpoints(self.registry, self._gateway, account, mock=self.mock)

    @property
    def account_keys(self) -> dict[str, str]:
        """Provider → fingerprint of each account key in use (a cache key; no secret)."""
        return {p: fingerprint(e.api_key) for p, e in self._account.items() if e.api_key}

    def get(self, provider: str) -> Endpoint:
        """The endpoint of ``provider``: the account's when it has a key, else the gateway's.

        Raises:
            UnknownPlugin: the registry has no model provider of that name.
        """
        name = self.registry.model(provider).name
        gateway = self._gateway.get(name) or Endpoint(name, None, None)
        own = self._account.get(name)
        if own is None or own.api_key is None:
            return gateway
        return replace(own, base_url=own.base_url or gateway.base_url)

    def configured(self, provider: str) -> bool:
        """Whether ``provider`` has a key here. Raises UnknownPlugin for an unknown name."""
        return self.get(provider).api_key is not None

    def require(self, provider: str) -> Endpoint:
        """:meth:`get`, for a caller that cannot work without a key.

        Raises:
            UnknownPlugin: unknown provider.
            NotConfigured: no key, neither the account's nor the gateway's; the message
                names the variable and the credentials route.
        """
        endpoint = self.get(provider)
        if endpoint.api_key is None:
            variable = self.registry.model(provider).key_env
            raise NotConfigured(
                f"No API key for {endpoint.provider!r}: set {variable} where `cerver serve` "
                f"runs, store the account's own with PUT /v2/account/credentials/"
                f"{endpoint.provider}, or pick a harness whose provider is configured.",
                context={"provider": endpoint.provider, "variable": variable},
            )
        return endpoint
