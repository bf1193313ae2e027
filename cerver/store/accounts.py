"""Accounts (tenants) and their API keys. Keys are stored as SHA-256 hashes only."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import sqlalchemy as sa

from cerver.errors import NotFound
from cerver.ids import new_id
from cerver.store.database import Database
from cerver.store.records import AccountRecord, ApiKeyRecord
from cerver.store.schema import accounts, api_keys, utcnow

__all__ = ["KEY_PREFIX", "AccountStore", "hash_key"]

KEY_PREFIX = "ck_"
_PREFIX_LEN = 12


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(30)


class AccountStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def count(self) -> int:
        async with self._db.read() as conn:
            return (
                await conn.execute(sa.select(sa.func.count()).select_from(accounts))
            ).scalar_one()

    async def create(
        self, name: str, *, is_admin: bool = False, api_key: str | None = None
    ) -> tuple[AccountRecord, str]:
        """Create an account and its first key; returns the plaintext key (shown once)."""
        account_id = new_id("acct")
        key = api_key or _new_key()
        async with self._db.write() as conn:
            await conn.execute(
                accounts.insert().values(
                    id=account_id, name=name, is_admin=is_admin, created_at=utcnow()
                )
            )
            await self._insert_key(conn, account_id, key, "default")
        return await self.get(account_id), key

    async def get(self, account_id: str) -> AccountRecord:
        async with self._db.read() as conn:
            row = (await conn.execute(accounts.select().where(accounts.c.id == account_id))).first()
        if row is None:
            raise NotFound(f"Account {account_id!r} not found.", context={"account_id": account_id})
        return AccountRecord.model_validate(row)

    async def set_routing_policy(self, account_id: str, policy: dict | None) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                accounts.update().where(accounts.c.id == account_id).values(routing_policy=policy)
            )

    async def authenticate(self, key: str) -> AccountRecord | None:
        """The account owning an active key, or ``None``."""
        if not key.startswith(KEY_PREFIX) or len(key) < _PREFIX_LEN:
            return None
        query = (
            sa.select(api_keys.c.key_hash, accounts)
            .join(accounts, accounts.c.id == api_keys.c.account_id)
            .where(api_keys.c.prefix == key[:_PREFIX_LEN], api_keys.c.revoked_at.is_(None))
        )
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None or not hmac.compare_digest(row.key_hash, hash_key(key)):
            return None
        return AccountRecord.model_validate(row)

    async def create_key(self, account_id: str, name: str = "default") -> tuple[ApiKeyRecord, str]:
        key = _new_key()
        async with self._db.write() as conn:
            record = await self._insert_key(conn, account_id, key, name)
        return record, key

    async def list_keys(self, account_id: str) -> list[ApiKeyRecord]:
        query = (
            api_keys.select()
            .where(api_keys.c.account_id == account_id)
            .order_by(api_keys.c.created_at)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [ApiKeyRecord.model_validate(r) for r in rows]

    async def revoke_key(self, account_id: str, prefix: str) -> None:
        async with self._db.write() as conn:
            result = await conn.execute(
                api_keys.update()
                .where(
                    api_keys.c.prefix == prefix,
                    api_keys.c.account_id == account_id,
                    api_keys.c.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )
        if result.rowcount == 0:
            raise NotFound(
                f"No active API key with prefix {prefix!r}. List keys with GET /v2/auth/keys.",
                context={"prefix": prefix},
            )

    async def _insert_key(self, conn, account_id: str, key: str, name: str) -> ApiKeyRecord:
        values = {
            "prefix": key[:_PREFIX_LEN],
            "account_id": account_id,
            "key_hash": hash_key(key),
            "name": name,
            "created_at": utcnow(),
        }
        await conn.execute(api_keys.insert().values(**values))
        return ApiKeyRecord.model_validate(values)
