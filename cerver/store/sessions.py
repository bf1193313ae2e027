"""Session rows: create, read, filter, update, and the cross-process turn lock."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from cerver.errors import InvalidRequest, NotFound
from cerver.store.database import Database
from cerver.store.records import SessionRecord, entry_from_row
from cerver.store.runs import interrupt_run
from cerver.store.schema import entries, sessions, utcnow
from cerver.store.transcript_cache import TranscriptCache
from cerver.types import Entry

__all__ = ["SessionFilters", "SessionStore", "delete_session", "unlock_statement"]


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


# Built once (their SQL compiled once per dialect, their cache keys computed once): the
# statements of every turn's hot path, run with parameters.
_GET = sessions.select().where(
    sessions.c.id == sa.bindparam("b_id"), sessions.c.account_id == sa.bindparam("b_account_id")
)
# The lock's common case, a free lock, taken and the row read back in one statement.
_TAKE_FREE = (
    sessions.update()
    .where(sessions.c.id == sa.bindparam("b_id"), sessions.c.lock_run_id.is_(None))
    .values(lock_run_id=sa.bindparam("b_run_id"), lock_expires_at=sa.bindparam("b_expires"))
    .returning(*sessions.c)
)

# The transcript's rows after the ones the lock's cache holds.
_READ_NEWER = (
    entries.select()
    .where(entries.c.session_id == sa.bindparam("b_id"), entries.c.seq > sa.bindparam("b_after"))
    .order_by(entries.c.seq)
)


class SessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._transcripts = TranscriptCache()

    @property
    def transcript_cache(self) -> TranscriptCache:
        """The transcripts this process caches (read by the turn lock; see its module)."""
        return self._transcripts

    async def create(self, values: dict[str, Any]) -> SessionRecord:
        now = utcnow()
        row = {"created_at": now, "updated_at": now, "metadata": {}, "harness_options": {}}
        row.update(values)
        query = sessions.select().where(sessions.c.id == row["id"])

        def insert(conn: sa.Connection) -> Any:
            conn.execute(sessions.insert().values(**row))
            return conn.execute(query).one()

        return SessionRecord.from_row(await self._db.write(insert))

    async def get(self, account_id: str, session_id: str) -> SessionRecord:
        """The session, if it belongs to ``account_id``. Raises NotFound otherwise."""
        params = {"b_id": session_id, "b_account_id": account_id}
        row = await self._db.read(lambda conn: conn.execute(_GET, params).first())
        if row is None:
            raise _not_found(session_id)
        return SessionRecord.from_row(row)

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
                    sa.func.lower(c.task).like(pattern),
                    sa.func.lower(c.session_name).like(pattern),
                )
            )
        if cursor:
            created, session_id = _decode_cursor(cursor)
            query = query.where(
                sa.or_(c.created_at < created, sa.and_(c.created_at == created, c.id < session_id))
            )
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        records = [SessionRecord.from_row(r) for r in rows]
        next_cursor = _encode_cursor(records[limit - 1]) if len(records) > limit else None
        return records[:limit], next_cursor

    async def count_by_status(self) -> dict[str, int]:
        """How many sessions each status holds, over all accounts (for ``/metrics``)."""
        query = sa.select(sessions.c.status, sa.func.count()).group_by(sessions.c.status)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return {status: count for status, count in rows}

    async def update(self, session_id: str, **values: Any) -> None:
        values.setdefault("updated_at", utcnow())
        query = sessions.update().where(sessions.c.id == session_id).values(**values)
        await self._db.write(lambda conn: conn.execute(query))

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
        query = sessions.update().where(c.id == session_id).values(**values)
        await self._db.write(lambda conn: conn.execute(query))

    async def delete(self, session_id: str) -> None:
        query = delete_session(session_id)
        await self._db.write(lambda conn: conn.execute(query))
        self.forget(session_id)

    def forget(self, session_id: str) -> None:
        """Drop what this process caches of a deleted session (its transcript)."""
        self._transcripts.forget(session_id)

    # -- turn lock ------------------------------------------------------------------------

    async def try_lock(
        self,
        session_id: str,
        run_id: str,
        ttl: float,
        *,
        with_transcript: bool = False,
        then: Callable[[sa.Connection, SessionRecord, list[Entry]], None] | None = None,
    ) -> tuple[SessionRecord, list[Entry]] | None:
        """Take the session's turn lock if it is free or its lease expired.

        A compare-and-set on the row, so it holds across gateway processes sharing a database.
        Returns the session as it is now (with the counters the new holder owns) and, if asked,
        its transcript (which only the holder can change while it holds the lock); ``None``
        when another run holds the lock.

        ``then`` runs in the same transaction once the lock is taken, with the session and
        transcript: the holder's first writes cost no transaction of their own. What it
        raises propagates, and the whole transaction, the lock included, is rolled back.

        Raises:
            NotFound: the session no longer exists (deleted while a turn waited for it).
        """
        now = utcnow()
        expires = now + timedelta(seconds=ttl)
        cache = self._transcripts
        take_free = {"b_id": session_id, "b_run_id": run_id, "b_expires": expires}

        def lock(conn: sa.Connection) -> tuple[SessionRecord, list[Entry]] | None:
            row = conn.execute(_TAKE_FREE, take_free).first()
            if row is None:  # held, or held by a run whose lease ran out, or deleted
                row = _take_over(conn, session_id, run_id, now, expires)
                if row is None:
                    return None
            session = SessionRecord.from_row(row)
            transcript: list[Entry] = []
            if with_transcript:
                # Only the rows the cache has not seen yet; none at all when it is up to date.
                after = cache.last_seq(session_id)
                newer = []
                if after < session.next_seq - 1:
                    rows = conn.execute(_READ_NEWER, {"b_id": session_id, "b_after": after})
                    newer = [entry_from_row(r) for r in rows.all()]
                transcript = cache.extend(session_id, newer)
            if then is not None:
                then(conn, session, transcript)
            return session, transcript

        return await self._db.write(lock)

    async def renew_lock(self, session_id: str, run_id: str, ttl: float) -> bool:
        c = sessions.c
        query = (
            sessions.update()
            .where(c.id == session_id, c.lock_run_id == run_id)
            .values(lock_expires_at=utcnow() + timedelta(seconds=ttl))
        )
        return await self._db.write(lambda conn: conn.execute(query).rowcount == 1)

    async def unlock(self, session_id: str, run_id: str) -> None:
        query = unlock_statement(session_id, run_id)
        await self._db.write(lambda conn: conn.execute(query))


def _take_over(
    conn: sa.Connection, session_id: str, run_id: str, now: datetime, expires: datetime
) -> sa.Row[Any] | None:
    """Take a lock whose holder's lease ran out: that run is ended first, so its end is
    recorded in the session's log even when no reaper got there first. Returns the session
    row, or ``None`` while the lock is held.

    Raises:
        NotFound: the session no longer exists.
    """
    c = sessions.c
    expired_holder = sa.select(c.lock_run_id).where(
        c.id == session_id, c.lock_run_id.is_not(None), c.lock_expires_at < now
    )
    if (dead := conn.execute(expired_holder).scalar()) is not None:
        interrupt_run(conn, dead, session_id)
    take = (
        sessions.update()
        .where(c.id == session_id, sa.or_(c.lock_run_id.is_(None), c.lock_expires_at < now))
        .values(lock_run_id=run_id, lock_expires_at=expires)
    )
    if conn.execute(take).rowcount != 1:
        if conn.execute(sa.select(c.id).where(c.id == session_id)).first() is None:
            raise NotFound(
                f"Session {session_id!r} not found: it was deleted before this turn could start.",
                context={"session_id": session_id},
            )
        return None
    return conn.execute(sessions.select().where(c.id == session_id)).one()


def delete_session(session_id: str) -> sa.Delete:
    """Delete a session; its transcript, events and runs go with it (ON DELETE CASCADE)."""
    return sessions.delete().where(sessions.c.id == session_id)


def unlock_statement(session_id: str, run_id: str, **values: Any) -> sa.Update:
    """Release the lock held by ``run_id`` (and set ``values`` on the session with it)."""
    c = sessions.c
    return (
        sessions.update()
        .where(c.id == session_id, c.lock_run_id == run_id)
        .values(lock_run_id=None, lock_expires_at=None, **values)
    )
