"""Accounts (tenants) and their API keys. Keys are stored as SHA-256 hashes only."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any, Final

import sqlalchemy as sa

from cerver.errors import Conflict, NotFound
from cerver.ids import new_id
from cerver.store.database import Database
from cerver.store.records import AccountRecord, ApiKeyRecord
from cerver.store.schema import accounts, api_keys, utcnow

__all__ = ["KEY_PREFIX", "AccountStore", "hash_key"]

KEY_PREFIX = "ck_"
_PREFIX_LEN = 12

_RECENT_MAX = 10_000

RECENT_SECONDS: Final = 5.0
"""How old an account read by :meth:`AccountStore.recent` may be. Changes made through this
process's store are seen at once; another gateway process's, within this time."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(30)


def _key_row(account_id: str, key: str, name: str) -> dict[str, Any]:
    return {
        "prefix": key[:_PREFIX_LEN],
        "account_id": account_id,
        "key_hash": hash_key(key),
        "name": name,
        "created_at": utcnow(),
    }


class AccountStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._recent: dict[str, tuple[float, AccountRecord]] = {}

    async def count(self) -> int:
        query = sa.select(sa.func.count()).select_from(accounts)
        return await self._db.read(lambda conn: conn.execute(query).scalar_one())

    async def create(
        self, name: str, *, is_admin: bool = False, api_key: str | None = None
    ) -> tuple[AccountRecord, str]:
        """Create an account and its first key; returns the plaintext key (shown once)."""
        key = api_key or _new_key()
        row = {"id": new_id("acct"), "name": name, "is_admin": is_admin, "created_at": utcnow()}

        def insert(conn: sa.Connection) -> None:
            conn.execute(accounts.insert().values(**row))
            conn.execute(api_keys.insert().values(**_key_row(row["id"], key, "default")))

        await self._db.write(insert)
        return AccountRecord.model_validate(row), key

    async def get(self, account_id: str) -> AccountRecord:
        query = accounts.select().where(accounts.c.id == account_id)
        row = await self._db.read(lambda conn: conn.execute(query).first())
        if row is None:
            raise NotFound(f"Account {account_id!r} not found.", context={"account_id": account_id})
        return AccountRecord.from_row(row)

    async def recent(self, account_id: str) -> AccountRecord:
        """The account as read at most :data:`RECENT_SECONDS` ago (for a turn's admission:
        its routing policy and budgets), read again when older or changed here since.

        Raises:
            NotFound: no such account.
        """
        cached = self._recent.get(account_id)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        account = await self.get(account_id)
        if len(self._recent) >= _RECENT_MAX:
            self._recent.clear()  # bounded; the accounts in use come straight back
        self._recent[account_id] = (now + RECENT_SECONDS, account)
        return account

    async def set_routing_policy(self, account_id: str, policy: dict | None) -> None:
        query = accounts.update().where(accounts.c.id == account_id).values(routing_policy=policy)
        await self._db.write(lambda conn: conn.execute(query))
        self._recent.pop(account_id, None)

    async def set_budgets(self, account_id: str, budgets: dict | None) -> None:
        query = accounts.update().where(accounts.c.id == account_id).values(budgets=budgets)
        await self._db.write(lambda conn: conn.execute(query))
        self._recent.pop(account_id, None)

    async def authenticate(self, key: str) -> AccountRecord | None:
        """The account owning an active key, or ``None``."""
        if not key.startswith(KEY_PREFIX) or len(key) < _PREFIX_LEN:
            return None
        query = (
            sa.select(api_keys.c.key_hash, accounts)
            .join(accounts, accounts.c.id == api_keys.c.account_id)
            .where(api_keys.c.prefix == key[:_PREFIX_LEN], api_keys.c.revoked_at.is_(None))
        )
        row = await self._db.read(lambda conn: conn.execute(query).first())
        if row is None or not hmac.compare_digest(row.key_hash, hash_key(key)):
            return None
        return AccountRecord.from_row(row)

    async def create_key(self, account_id: str, name: str = "default") -> tuple[ApiKeyRecord, str]:
        key = _new_key()
        row = _key_row(account_id, key, name)
        await self._db.write(lambda conn: conn.execute(api_keys.insert().values(**row)))
        return ApiKeyRecord.model_validate(row), key

    async def list_keys(self, account_id: str) -> list[ApiKeyRecord]:
        query = (
            api_keys.select()
            .where(api_keys.c.account_id == account_id)
            .order_by(api_keys.c.created_at)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [ApiKeyRecord.from_row(r) for r in rows]

    async def revoke_key(self, account_id: str, prefix: str) -> None:
        """Revoke one of the account's active keys, never its last one.

        Raises:
            NotFound: the account has no active key with this prefix.
            Conflict: it is the account's last active key (revoking it would lock the account
                out for good, and the admin's would stop a restart with ``CERVER_ADMIN_KEY``).
        """
        active = (api_keys.c.account_id == account_id) & api_keys.c.revoked_at.is_(None)
        # The account row is locked so that two revocations cannot each leave the other's key.
        lock = sa.select(accounts.c.id).where(accounts.c.id == account_id).with_for_update()
        count = sa.select(sa.func.count()).select_from(api_keys).where(active)
        revoke = (
            api_keys.update().where(active, api_keys.c.prefix == prefix).values(revoked_at=utcnow())
        )

        def revoke_unless_last(conn: sa.Connection) -> int | None:
            conn.execute(lock)
            if conn.execute(count).scalar_one() == 1:
                # Only when the last key is the one asked for; otherwise it is a plain 404.
                exists = sa.select(api_keys.c.prefix).where(active, api_keys.c.prefix == prefix)
                if conn.execute(exists).first() is not None:
                    return None
            return conn.execute(revoke).rowcount

        revoked = await self._db.write(revoke_unless_last)
        if revoked is None:
            raise Conflict(
                f"Key {prefix!r} is the account's last active API key: revoking it would lock "
                "the account out. Create another key first (POST /v2/auth/keys), then revoke "
                "this one.",
                context={"prefix": prefix, "active_keys": 1},
            )
        if revoked == 0:
            raise NotFound(
                f"No active API key with prefix {prefix!r}. List keys with GET /v2/auth/keys.",
                context={"prefix": prefix},
            )
