"""Accounts' own provider credentials, stored encrypted (``PUT /v2/account/credentials``).

The store sees only ciphertext: encrypting and decrypting is the credentials service's
(:mod:`cerver.services.credentials`), which holds the gateway's secret key. A record's
``secret`` never leaves the service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from cerver.store.database import Database
from cerver.store.schema import provider_credentials, utcnow

__all__ = ["CredentialRecord", "CredentialStore"]


class CredentialRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    account_id: str
    provider: str
    secret: str = Field(repr=False)
    base_url: str | None
    fingerprint: str
    set_at: datetime


class CredentialStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(
        self, account_id: str, provider: str, *, secret: str, base_url: str | None, fingerprint: str
    ) -> CredentialRecord:
        """Store (or replace) the account's credential for ``provider``, in one transaction."""
        row = {
            "account_id": account_id,
            "provider": provider,
            "secret": secret,
            "base_url": base_url,
            "fingerprint": fingerprint,
            "set_at": utcnow(),
        }
        match = (
            provider_credentials.c.account_id == account_id,
            provider_credentials.c.provider == provider,
        )

        def replace(conn: sa.Connection) -> Any:
            conn.execute(provider_credentials.delete().where(*match))
            conn.execute(provider_credentials.insert().values(**row))
            return conn.execute(provider_credentials.select().where(*match)).one()

        return CredentialRecord.model_validate(await self._db.write(replace))

    async def list(self, account_id: str) -> list[CredentialRecord]:
        """The account's credentials, by provider name."""
        query = (
            provider_credentials.select()
            .where(provider_credentials.c.account_id == account_id)
            .order_by(provider_credentials.c.provider)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [CredentialRecord.model_validate(row) for row in rows]

    async def delete(self, account_id: str, provider: str) -> bool:
        """Remove the account's credential for ``provider``; whether there was one."""
        delete = provider_credentials.delete().where(
            provider_credentials.c.account_id == account_id,
            provider_credentials.c.provider == provider,
        )
        return bool(await self._db.write(lambda conn: conn.execute(delete).rowcount))

    async def fetch(self, account_id: str) -> dict[str, CredentialRecord]:
        """Provider → the account's record (what resolving a turn's endpoints reads)."""
        return {record.provider: record for record in await self.list(account_id)}
