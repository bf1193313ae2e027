"""Registered computes: relay machines an account added with ``POST /v2/computes/register``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from cerver.errors import NotFound
from cerver.store.database import Database
from cerver.store.schema import computes, utcnow

__all__ = ["ComputeRecord", "ComputeStore"]


class ComputeRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    account_id: str
    label: str
    base_url: str
    token: str
    capabilities: dict[str, Any]
    created_at: datetime
    last_heartbeat_at: datetime | None


def _not_found(compute_id: str) -> NotFound:
    # Identical for a missing compute and another account's (no existence leak).
    return NotFound(
        f"Compute {compute_id!r} not found. List registered computes with GET /v2/computes, "
        "or register a relay with POST /v2/computes/register.",
        context={"compute_id": compute_id},
    )


class ComputeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, values: dict[str, Any]) -> ComputeRecord:
        row = {"created_at": utcnow(), "last_heartbeat_at": utcnow(), **values}

        def insert(conn: sa.Connection) -> Any:
            conn.execute(computes.insert().values(**row))
            return conn.execute(computes.select().where(computes.c.id == row["id"])).one()

        return ComputeRecord.model_validate(await self._db.write(insert))

    async def get(self, account_id: str | None, compute_id: str) -> ComputeRecord:
        """The compute (of ``account_id``, or of any account when None). Raises NotFound."""
        query = computes.select().where(computes.c.id == compute_id)
        if account_id is not None:
            query = query.where(computes.c.account_id == account_id)
        row = await self._db.read(lambda conn: conn.execute(query).first())
        if row is None:
            raise _not_found(compute_id)
        return ComputeRecord.model_validate(row)

    async def list(self, account_id: str) -> list[ComputeRecord]:
        query = (
            computes.select()
            .where(computes.c.account_id == account_id)
            .order_by(computes.c.created_at, computes.c.id)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [ComputeRecord.model_validate(row) for row in rows]

    async def heartbeat(self, account_id: str, compute_id: str, at: datetime) -> ComputeRecord:
        """Record a heartbeat. Raises NotFound."""
        update = (
            computes.update()
            .where(computes.c.id == compute_id, computes.c.account_id == account_id)
            .values(last_heartbeat_at=at)
        )
        count = await self._db.write(lambda conn: conn.execute(update).rowcount)
        if not count:
            raise _not_found(compute_id)
        return await self.get(account_id, compute_id)

    async def delete(self, account_id: str, compute_id: str) -> None:
        """Forget the compute. Raises NotFound."""
        delete = computes.delete().where(
            computes.c.id == compute_id, computes.c.account_id == account_id
        )
        if not await self._db.write(lambda conn: conn.execute(delete).rowcount):
            raise _not_found(compute_id)
