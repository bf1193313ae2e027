"""Reading a session's transcript and event log (writes go through SessionWriter)."""

from __future__ import annotations

import sqlalchemy as sa

from cerver.store.database import Database
from cerver.store.event_rows import events_of
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
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [entry_from_row(r) for r in rows]

    async def tail(self, session_id: str, count: int) -> list[Entry]:
        """The last ``count`` entries, oldest first."""
        query = (
            entries.select()
            .where(entries.c.session_id == session_id)
            .order_by(entries.c.seq.desc())
            .limit(count)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [entry_from_row(r) for r in reversed(rows)]

    async def events(
        self, session_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[StoredEvent]:
        """The logged events with ids above ``after_id``, in order, from at most ``limit``
        rows (a row holds one event or a series of deltas: see :mod:`cerver.store.event_rows`).
        An empty list means the log has nothing more."""
        # The row holding after_id + 1 may be a series that begins at or before after_id: the
        # scan starts at the last row beginning there, and skips it if it ends there too.
        last_begun = (
            sa.select(sa.func.max(events.c.id))
            .where(events.c.session_id == session_id, events.c.id <= after_id)
            .scalar_subquery()
        )
        query = (
            events.select()
            .where(
                events.c.session_id == session_id,
                events.c.id >= sa.func.coalesce(last_begun, after_id + 1),
                sa.func.coalesce(events.c.last_id, events.c.id) > after_id,
            )
            .order_by(events.c.id)
            .limit(limit)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return events_of(rows, after_id=after_id)

    async def run_start(self, session_id: str, run_id: str) -> tuple[int | None, int]:
        """Where a run's events begin in the log: ``(id of its turn.started or None, last id)``.

        The last logged id is read first, so when the run's ``turn.started`` is not logged
        yet it is certain to come after that id (the log is written in id order).
        """

        def read(conn: sa.Connection) -> tuple[int | None, int]:
            last = conn.execute(
                sa.select(sa.func.coalesce(events.c.last_id, events.c.id))
                .where(events.c.session_id == session_id)
                .order_by(events.c.id.desc())
                .limit(1)
            ).scalar()
            started = conn.execute(
                sa.select(events.c.id)
                .where(
                    events.c.session_id == session_id,
                    events.c.event == "turn.started",
                    events.c.data.contains(f'"run_id":"{run_id}"', autoescape=True),
                )
                .order_by(events.c.id)
                .limit(1)
            ).scalar()
            return started, last or 0

        return await self._db.read(read)
