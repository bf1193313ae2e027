"""Run records (one turn or one exec) with leases, so a crashed process's runs are reclaimed.

The statements that start and finish a run are built here and executed by the caller's
transaction (a turn writes them with its transcript through ``SessionWriter.defer``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from cerver.errors import NotFound
from cerver.store.database import Database
from cerver.store.records import RunRecord
from cerver.store.schema import runs, sessions, utcnow

__all__ = ["RunStore", "finish_run", "start_run"]


def start_run(run_id: str, session_id: str, kind: str, ttl: float, **values: Any) -> sa.Insert:
    now = utcnow()
    return runs.insert().values(
        id=run_id,
        session_id=session_id,
        kind=kind,
        status="running",
        started_at=now,
        lease_expires_at=now + timedelta(seconds=ttl),
        **values,
    )


def finish_run(run_id: str, status: str, **values: Any) -> sa.Update:
    return (
        runs.update()
        .where(runs.c.id == run_id)
        .values(status=status, ended_at=utcnow(), lease_expires_at=None, **values)
    )


class RunStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def start(
        self, run_id: str, session_id: str, kind: str, ttl: float, **values: Any
    ) -> None:
        statement = start_run(run_id, session_id, kind, ttl, **values)
        await self._db.write(lambda conn: conn.execute(statement))

    async def finish(self, run_id: str, status: str, **values: Any) -> None:
        statement = finish_run(run_id, status, **values)
        await self._db.write(lambda conn: conn.execute(statement))

    async def renew(self, run_id: str, ttl: float) -> None:
        statement = (
            runs.update()
            .where(runs.c.id == run_id, runs.c.status == "running")
            .values(lease_expires_at=utcnow() + timedelta(seconds=ttl))
        )
        await self._db.write(lambda conn: conn.execute(statement))

    async def get(self, session_id: str, run_id: str) -> RunRecord:
        query = runs.select().where(runs.c.id == run_id, runs.c.session_id == session_id)
        row = await self._db.read(lambda conn: conn.execute(query).first())
        if row is None:
            raise NotFound(f"Run {run_id!r} not found.", context={"run_id": run_id})
        return RunRecord.model_validate(row)

    async def counts(self, session_id: str) -> tuple[int, int]:
        """(all runs, runs that failed or were interrupted) of a session."""
        query = sa.select(
            sa.func.count(),
            sa.func.count().filter(runs.c.status.in_(["failed", "interrupted"])),
        ).where(runs.c.session_id == session_id)
        total, failed = await self._db.read(lambda conn: conn.execute(query).one())
        return total, failed

    async def reclaim_expired(self) -> int:
        """Mark runs whose lease ran out as ``interrupted`` and free their sessions.

        Called at start-up: a run whose process died stops renewing its lease.
        """
        return await self._db.write(_reclaim)


def _reclaim(conn: sa.Connection) -> int:
    now = utcnow()
    expired = (
        conn.execute(
            sa.select(runs.c.id).where(runs.c.status == "running", runs.c.lease_expires_at < now)
        )
        .scalars()
        .all()
    )
    if not expired:
        return 0
    conn.execute(
        runs.update()
        .where(runs.c.id.in_(expired))
        .values(status="interrupted", ended_at=now, error="The gateway process running it stopped.")
    )
    conn.execute(
        sessions.update()
        .where(sessions.c.lock_run_id.in_(expired))
        .values(lock_run_id=None, lock_expires_at=None, status="ready")
    )
    return len(expired)
