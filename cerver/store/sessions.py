"""Session rows: create, read, filter, update, and the cross-process turn lock."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from cerver.errors import InvalidRequest, NotFound
from cerver.store.database import Database
from cerver.store.records import SessionRecord
from cerver.store.schema import sessions, utcnow

__all__ = ["LockGrant", "SessionFilters", "SessionStore"]


@dataclass(frozen=True, slots=True)
class SessionFilters:
    user: str | None = None
    status: str | None = None
    harness: str | None = None
    model: str | None = None
    provider: str | None = None
    parent_session_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    q: str | None = None


@dataclass(frozen=True, slots=True)
class LockGrant:
    """The counters handed to the new holder of a session's turn lock."""

    next_seq: int
    next_event_id: int


def _not_found(session_id: str) -> NotFound:
    # Identical for a missing session and another account's session (no existence leak).
    return NotFound(
        f"Session {session_id!r} not found. List your sessions with GET /v2/sessions.",
        context={"session_id": session_id},
    )


def _encode_cursor(row: SessionRecord) -> str:
    raw = f"{row.created_at.isoformat()}|{row.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, session_id = raw.split("|", 1)
        return datetime.fromisoformat(created), session_id
    except ValueError as exc:
        raise InvalidRequest(
            "Invalid cursor: pass the next_cursor value from a previous page unchanged.",
            context={"cursor": cursor},
        ) from exc


class SessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, values: dict[str, Any]) -> SessionRecord:
        now = utcnow()
        row = {"created_at": now, "updated_at": now, "metadata": {}, "harness_options": {}}
        row.update(values)
        async with self._db.write() as conn:
            await conn.execute(sessions.insert().values(**row))
        return await self.get(row["account_id"], row["id"])

    async def get(self, account_id: str, session_id: str) -> SessionRecord:
        """The session, if it belongs to ``account_id``. Raises NotFound otherwise."""
        query = sessions.select().where(
            sessions.c.id == session_id, sessions.c.account_id == account_id
        )
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise _not_found(session_id)
        return SessionRecord.model_validate(row)

    async def list(
        self, account_id: str, filters: SessionFilters, *, limit: int, cursor: str | None
    ) -> tuple[list[SessionRecord], str | None]:
        """Newest first, ``limit`` per page; returns the page and the next page's cursor."""
        c = sessions.c
        query = sessions.select().where(c.account_id == account_id)
        for name in ("user", "status", "harness", "model", "provider", "parent_session_id"):
            value = getattr(filters, name)
            if value is not None:
                query = query.where(c[name] == value)
        if filters.created_after:
            query = query.where(c.created_at > filters.created_after)
        if filters.created_before:
            query = query.where(c.created_at < filters.created_before)
        if filters.q:
            pattern = f"%{filters.q.lower()}%"
            query = query.where(
                sa.or_(
                    sa.func.lower(c.task).like(pattern), sa.func.lower(c.session_name).like(pattern)
                )
            )
        if cursor:
            created, session_id = _decode_cursor(cursor)
            query = query.where(
                sa.or_(c.created_at < created, sa.and_(c.created_at == created, c.id < session_id))
            )
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
        async with self._db.read() as conn:
            rows = [SessionRecord.model_validate(r) for r in (await conn.execute(query)).all()]
        next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
        return rows[:limit], next_cursor

    async def update(self, session_id: str, **values: Any) -> None:
        values.setdefault("updated_at", utcnow())
        async with self._db.write() as conn:
            await conn.execute(
                sessions.update().where(sessions.c.id == session_id).values(**values)
            )

    async def increment(self, session_id: str, **deltas: float) -> None:
        """Add to metric counters atomically (``exec_count=1, exec_total_ms=12.5``)."""
        c = sessions.c
        values: dict[str, Any] = {name: c[name] + delta for name, delta in deltas.items()}
        async with self._db.write() as conn:
            await conn.execute(sessions.update().where(c.id == session_id).values(**values))

    async def record_exec(
        self, session_id: str, duration_ms: float, *, stream_open_ms: float | None = None
    ) -> None:
        """Count one command (or one stream, when ``stream_open_ms`` is given) in one UPDATE."""
        c = sessions.c
        now = utcnow()
        values: dict[str, Any] = {
            "first_exec_at": sa.func.coalesce(c.first_exec_at, now),
            "compute_seconds": c.compute_seconds + duration_ms / 1000,
            "updated_at": now,
        }
        if stream_open_ms is None:
            values.update(
                exec_count=c.exec_count + 1,
                exec_total_ms=c.exec_total_ms + duration_ms,
                last_exec_ms=duration_ms,
            )
        else:
            values.update(
                stream_count=c.stream_count + 1,
                stream_open_total_ms=c.stream_open_total_ms + stream_open_ms,
            )
        async with self._db.write() as conn:
            await conn.execute(sessions.update().where(c.id == session_id).values(**values))

    async def delete(self, session_id: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(sessions.delete().where(sessions.c.id == session_id))

    # -- turn lock ------------------------------------------------------------------------

    async def try_lock(self, session_id: str, run_id: str, ttl: float) -> LockGrant | None:
        """Take the session's turn lock if it is free or its lease expired.

        Compare-and-set on the row, so it holds across gateway processes sharing a database.
        """
        c = sessions.c
        now = utcnow()
        query = (
            sessions.update()
            .where(
                c.id == session_id,
                sa.or_(c.lock_run_id.is_(None), c.lock_expires_at < now),
            )
            .values(lock_run_id=run_id, lock_expires_at=now + timedelta(seconds=ttl))
            .returning(c.next_seq, c.next_event_id)
        )
        async with self._db.write() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else LockGrant(row.next_seq, row.next_event_id)

    async def renew_lock(self, session_id: str, run_id: str, ttl: float) -> bool:
        c = sessions.c
        query = (
            sessions.update()
            .where(c.id == session_id, c.lock_run_id == run_id)
            .values(lock_expires_at=utcnow() + timedelta(seconds=ttl))
        )
        async with self._db.write() as conn:
            return (await conn.execute(query)).rowcount == 1

    async def unlock(self, session_id: str, run_id: str) -> None:
        c = sessions.c
        query = (
            sessions.update()
            .where(c.id == session_id, c.lock_run_id == run_id)
            .values(lock_run_id=None, lock_expires_at=None)
        )
        async with self._db.write() as conn:
            await conn.execute(query)
