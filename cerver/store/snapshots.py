"""Workspace snapshots of paused sessions, kept in the database so any gateway process can
resume them."""

from __future__ import annotations

import sqlalchemy as sa

from cerver.store.database import Database
from cerver.store.schema import snapshots, utcnow

__all__ = ["SnapshotStore"]


class SnapshotStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, session_id: str, archive: bytes, provider: str | None) -> None:
        """Store (or replace) the session's snapshot."""

        def put(conn: sa.Connection) -> None:
            conn.execute(snapshots.delete().where(snapshots.c.session_id == session_id))
            conn.execute(
                snapshots.insert().values(
                    session_id=session_id, archive=archive, provider=provider, created_at=utcnow()
                )
            )

        await self._db.write(put)

    async def get(self, session_id: str) -> bytes | None:
        query = sa.select(snapshots.c.archive).where(snapshots.c.session_id == session_id)
        return await self._db.read(lambda conn: conn.execute(query).scalar())

    async def delete(self, session_id: str) -> None:
        query = snapshots.delete().where(snapshots.c.session_id == session_id)
        await self._db.write(lambda conn: conn.execute(query))
