"""Reading a session's transcript and event log (writes go through SessionWriter)."""

from __future__ import annotations

import sqlalchemy as sa

from cerver.store.database import Database
from cerver.store.records import StoredEvent, entry_from_row
from cerver.store.schema import entries, events
from cerver.types import Entry

__all__ = ["TranscriptStore"]


class TranscriptStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def entries(
        self, session_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[Entry]:
        query = (
            entries.select()
            .where(entries.c.session_id == session_id, entries.c.seq > after_seq)
            .order_by(entries.c.seq)
        )
        if limit is not None:
            query = query.limit(limit)
        async with self._db.read() as conn:
            return [entry_from_row(r) for r in (await conn.execute(query)).all()]

    async def tail(self, session_id: str, count: int) -> list[Entry]:
        """The last ``count`` entries, oldest first."""
        query = (
            entries.select()
            .where(entries.c.session_id == session_id)
            .order_by(entries.c.seq.desc())
            .limit(count)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [entry_from_row(r) for r in reversed(rows)]

    async def events(
        self, session_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[StoredEvent]:
        query = (
            sa.select(events)
            .where(events.c.session_id == session_id, events.c.id > after_id)
            .order_by(events.c.id)
            .limit(limit)
        )
        async with self._db.read() as conn:
            return [StoredEvent.model_validate(r) for r in (await conn.execute(query)).all()]
