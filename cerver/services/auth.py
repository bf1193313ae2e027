"""Accounts, API keys and the first-start bootstrap of the admin account."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from cerver.errors import AuthenticationFailed, PermissionDenied
from cerver.store import AccountRecord, ApiKeyRecord, Store
from cerver.store.accounts import KEY_PREFIX, hash_key

__all__ = ["AuthService", "BootstrapResult"]

_CACHE_SECONDS = 5.0


class BootstrapResult:
    def __init__(self, account: AccountRecord, api_key: str | None, credentials: Path | None):
        self.account = account
        self.api_key = api_key  # set only when a new key was created now
        self.credentials = credentials


class AuthService:
    """Authenticates bearer keys. Successful look-ups are cached for a few seconds per process
    (revocations in this process take effect at once; in others within the cache time)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[str, tuple[float, AccountRecord]] = {}

    async def bootstrap(self, data_dir: Path, admin_key: str | None) -> BootstrapResult | None:
        """On an empty store create the admin account; make ``admin_key`` valid if given.

        A generated key is written to ``<data_dir>/credentials`` (mode 0600) and returned so
        the caller can print it once. Returns ``None`` when there was nothing to do.
        """
        if admin_key is not None and not admin_key.startswith(KEY_PREFIX):
            raise ValueError(f"CERVER_ADMIN_KEY must start with {KEY_PREFIX!r}.")
        if await self._store.accounts.count() > 0:
            if admin_key and await self._store.accounts.authenticate(admin_key) is None:
                raise ValueError(
                    "CERVER_ADMIN_KEY is set but is not a key of this store. Unset it, or use "
                    "the key in the credentials file of the data directory."
                )
            return None
        account, key = await self._store.accounts.create("admin", is_admin=True, api_key=admin_key)
        if admin_key is not None:
            return BootstrapResult(account, None, None)
        path = await asyncio.to_thread(_write_credentials, data_dir, key, account.id)
        return BootstrapResult(account, key, path)

    async def authenticate(self, authorization: str | None) -> AccountRecord:
        """The account for an ``Authorization: Bearer ck_…`` header.

        Raises:
            AuthenticationFailed: no header, wrong scheme, or an unknown or revoked key.
        """
        if not authorization:
            raise AuthenticationFailed(
                "Missing API key: send 'Authorization: Bearer ck_…'. The first start of "
                "`cerver serve` prints the admin key and writes it to <data dir>/credentials."
            )
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise AuthenticationFailed("Malformed Authorization header: use 'Bearer ck_…'.")
        key = key.strip()
        digest = hash_key(key)
        cached = self._cache.get(digest)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        account = await self._store.accounts.authenticate(key)
        if account is None:
            raise AuthenticationFailed("Invalid or revoked API key.")
        self._cache[digest] = (time.monotonic() + _CACHE_SECONDS, account)
        return account

    async def create_account(self, caller: AccountRecord, name: str) -> tuple[AccountRecord, str]:
        if not caller.is_admin:
            raise PermissionDenied("Only the admin account can create accounts.")
        return await self._store.accounts.create(name)

    async def create_key(self, account: AccountRecord, name: str) -> tuple[ApiKeyRecord, str]:
        return await self._store.accounts.create_key(account.id, name)

    async def list_keys(self, account: AccountRecord) -> list[ApiKeyRecord]:
        return await self._store.accounts.list_keys(account.id)

    async def revoke_key(self, account: AccountRecord, prefix: str) -> None:
        await self._store.accounts.revoke_key(account.id, prefix)
        self._cache.clear()


def _write_credentials(data_dir: Path, key: str, account_id: str) -> Path:
    path = data_dir / "credentials"
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"CERVER_API_KEY={key}\nCERVER_ACCOUNT_ID={account_id}\n")
    return path
