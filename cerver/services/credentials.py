"""Accounts' own provider credentials: bring your own key (``/v2/account/credentials``).

An account may store a key for any registered provider, model or compute. The key is
encrypted before it reaches the store (:class:`~cerver.services.secret_key.CredentialCipher`),
never returned by a route (a listing shows the provider, a fingerprint and when it was set),
never logged and never put in an event or a sandbox's environment. When a turn, a proxied
request or a provisioning runs for the account, its key wins over the gateway's environment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cerver.errors import InvalidRequest, NotFound, UnknownPlugin
from cerver.providers import (
    ComputeCredentials,
    Endpoint,
    ModelProvider,
    ProviderRegistry,
    fingerprint,
    providers,
)
from cerver.services.secret_key import CredentialCipher
from cerver.store import Store

__all__ = ["CredentialService", "StoredCredential"]

_MAX_KEY_CHARS = 4096
_CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class StoredCredential:
    """What may be shown of a stored credential: never the key."""

    provider: str
    kind: str
    fingerprint: str
    set_at: datetime
    base_url: str | None


class CredentialService:
    """Stores, lists, removes and resolves accounts' provider credentials.

    Args:
        store: the gateway's store.
        cipher: encrypts keys at rest; ``None`` until the gateway starts (:meth:`open`).
        registry: the providers an account may store a key for.
    """

    def __init__(
        self,
        store: Store,
        cipher: CredentialCipher | None = None,
        registry: ProviderRegistry = providers,
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._registry = registry
        # account → (expiry, its model endpoints): a turn's start reads no row when the
        # account's keys were resolved a moment ago. Changes made in this process apply at
        # once; those made through another gateway process within the cache time.
        self._cache: dict[str, tuple[float, dict[str, Endpoint]]] = {}

    def open(self, cipher: CredentialCipher) -> None:
        self._cipher = cipher

    async def put(
        self, account_id: str, provider: str, api_key: str, base_url: str | None = None
    ) -> StoredCredential:
        """Store (or replace) the account's key for ``provider``; validated before storing.

        Raises:
            UnknownPlugin: no provider of that name (with a did-you-mean).
            InvalidRequest: an empty or malformed key; a base URL the provider does not
                accept from accounts, or one that is not an http(s) URL; a compute provider
                whose credentials are more than one key.
        """
        entry = self._registry.get(provider)
        key = _checked_key(api_key)
        if isinstance(entry, ComputeCredentials) and not entry.accepts_account_key:
            raise InvalidRequest(
                f"The compute provider {provider!r} needs {', '.join(entry.variables)}; "
                "per-account credentials hold one key, so set these where the gateway runs.",
                context={"provider": provider, "variables": list(entry.variables)},
            )
        if base_url is not None:
            base_url = _checked_base_url(entry, base_url)
        self._cache.pop(account_id, None)
        record = await self._store.credentials.put(
            account_id,
            entry.name,
            secret=self._require_cipher().encrypt(key),
            base_url=base_url,
            fingerprint=fingerprint(key),
        )
        return _public(record, entry.kind)

    async def list(self, account_id: str) -> list[StoredCredential]:
        records = await self._store.credentials.list(account_id)
        return [_public(r, self._kind(r.provider)) for r in records]

    async def delete(self, account_id: str, provider: str) -> None:
        """Remove the account's key for ``provider``.

        Raises:
            NotFound: the account has no key for it.
        """
        self._cache.pop(account_id, None)
        if not await self._store.credentials.delete(account_id, provider):
            raise NotFound(
                f"This account has no credential for {provider!r}; list them with "
                "GET /v2/account/credentials.",
                context={"provider": provider},
            )

    async def model_endpoints(self, account_id: str | None) -> dict[str, Endpoint]:
        """Provider → the account's own endpoint, for every model provider it has a key for.

        Raises:
            NotConfigured: a stored key cannot be decrypted with this gateway's secret key.
        """
        if account_id is None:
            return {}
        cached = self._cache.get(account_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        records = await self._store.credentials.fetch(account_id)
        endpoints = {
            name: Endpoint(name, r.base_url, self._require_cipher().decrypt(r.secret), "account")
            for name, r in records.items()
            if self._kind(name) == "model"
        }
        self._cache[account_id] = (time.monotonic() + _CACHE_SECONDS, endpoints)
        return endpoints

    async def compute_arguments(self, account_id: str | None, provider: str) -> dict[str, Any]:
        """Constructor arguments giving compute ``provider`` the account's own key (empty
        when the account has none, so the provider reads the gateway's environment)."""
        entry = self._registry.compute(provider)
        if account_id is None or entry is None or entry.key_argument is None:
            return {}
        record = (await self._store.credentials.fetch(account_id)).get(provider)
        if record is None:
            return {}
        return {entry.key_argument: self._require_cipher().decrypt(record.secret)}

    def _kind(self, provider: str) -> str:
        try:
            return self._registry.get(provider).kind
        except UnknownPlugin:  # a provider whose package was uninstalled since: still listable
            return "unknown"

    def _require_cipher(self) -> CredentialCipher:
        if self._cipher is None:
            raise RuntimeError("CredentialService.open() was not called (gateway not started).")
        return self._cipher


def _public(record: Any, kind: str) -> StoredCredential:
    return StoredCredential(
        record.provider, kind, record.fingerprint, record.set_at, record.base_url
    )


def _checked_key(api_key: str) -> str:
    key = api_key.strip()
    if not key or len(key) > _MAX_KEY_CHARS or any(c.isspace() or ord(c) < 32 for c in key):
        raise InvalidRequest(
            f"api_key must be a non-empty key of at most {_MAX_KEY_CHARS} characters, without "
            "spaces or control characters.",
            context={"field": "api_key"},
        )
    return key


def _checked_base_url(entry: ModelProvider | ComputeCredentials, base_url: str) -> str:
    if not entry.account_base_url:
        raise InvalidRequest(
            f"The provider {entry.name!r} does not take a base_url from accounts: its API is "
            "set by the gateway. Omit base_url.",
            context={"provider": entry.name, "field": "base_url"},
        )
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequest(
            f"base_url must be an http(s) URL, not {base_url!r}.",
            context={"provider": entry.name, "field": "base_url"},
        )
    return base_url.rstrip("/")
