"""Stored answers to POSTs sent with an ``Idempotency-Key``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from cerver.store.database import Database
from cerver.store.schema import idempotency_keys, utcnow

__all__ = ["IdempotencyStore", "StoredResponse"]

_IN_FLIGHT = 0  # status_code of a claimed key whose request has not finished


@dataclass(frozen=True, slots=True)
class StoredResponse:
    request_hash: str
    status_code: int  # 0 while the first request is still running
    body: str
    #: Headers replayed with the body (``None`` for answers stored before they were kept).
    headers: list[tuple[str, str]] | None = None


class IdempotencyStore:
    def __init__(self, db: Database, *, ttl: timedelta = timedelta(hours=24)) -> None:
        self._db = db
        self._ttl = ttl

    async def claim(self, account_id: str, key: str, request_hash: str) -> StoredResponse | None:
        """Claim ``key`` for a new request; returns the earlier request's record if any."""
        c = idempotency_keys.c
        existing = sa.select(c.request_hash, c.status_code, c.body, c.headers).where(
            c.account_id == account_id, c.key == key
        )
        expired = idempotency_keys.delete().where(
            c.account_id == account_id, c.key == key, c.created_at < utcnow() - self._ttl
        )
        insert = idempotency_keys.insert().values(
            account_id=account_id,
            key=key,
            request_hash=request_hash,
            status_code=_IN_FLIGHT,
            body="",
            created_at=utcnow(),
        )

        def run(conn: sa.Connection) -> StoredResponse | None:
            conn.execute(expired)
            row = conn.execute(existing).first()
            if row is not None:
                return _stored(row)
            try:
                with conn.begin_nested():
                    conn.execute(insert)
            except IntegrityError:  # another process claimed it a moment ago
                return _stored(conn.execute(existing).one())
            return None

        return await self._db.write(run)

    async def complete(
        self,
        account_id: str,
        key: str,
        status_code: int,
        body: str,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        c = idempotency_keys.c
        query = (
            idempotency_keys.update()
            .where(c.account_id == account_id, c.key == key)
            .values(status_code=status_code, body=body, headers=[list(h) for h in headers])
        )
        await self._db.write(lambda conn: conn.execute(query))

    async def release(self, account_id: str, key: str) -> None:
        """Forget a claim whose request failed before answering (it may be retried)."""
        c = idempotency_keys.c
        query = idempotency_keys.delete().where(
            c.account_id == account_id, c.key == key, c.status_code == _IN_FLIGHT
        )
        await self._db.write(lambda conn: conn.execute(query))


def _stored(row: sa.Row[Any]) -> StoredResponse:
    request_hash, status_code, body, headers = row
    kept = [(str(name), str(value)) for name, value in headers] if headers is not None else None
    return StoredResponse(request_hash, status_code, body, kept)
