"""Run records (one turn or one exec) with leases, so a crashed process's runs are reclaimed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from cerver.errors import NotFound
from cerver.store.database import Database
from cerver.store.records import RunRecord
from cerver.store.schema import runs, sessions, utcnow

__all__ = ["RunStore"]


class RunStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def start(
        self, run_id: str, session_id: str, kind: str, ttl: float, **values: Any
    ) -> None:
        now = utcnow()
        async with self._db.write() as conn:
            await conn.execute(
                runs.insert().values(
                    id=run_id,
                    session_id=session_id,
                    kind=kind,
                    status="running",
                    started_at=now,
                    lease_expires_at=now + timedelta(seconds=ttl),
                    **values,
                )
            )

    async def renew(self, run_id: str, ttl: float) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status == "running")
                .values(lease_expires_at=utcnow() + timedelta(seconds=ttl))
            )

    async def finish(self, run_id: str, status: str, **values: Any) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(status=status, ended_at=utcnow(), lease_expires_at=None, **values)
            )

    async def get(self, session_id: str, run_id: str) -> RunRecord:
        query = runs.select().where(runs.c.id == run_id, runs.c.session_id == session_id)
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise NotFound(f"Run {run_id!r} not found.", context={"run_id": run_id})
        return RunRecord.model_validate(row)

    async def reclaim_expired(self) -> int:
        """Mark runs whose lease ran out as ``interrupted`` and free their sessions.

        Called at start-up: a run whose process died stops renewing its lease.
        """
        now = utcnow()
        async with self._db.write() as conn:
            expired = (
                await conn.execute(
                    sa.select(runs.c.id, runs.c.session_id).where(
                        runs.c.status == "running", runs.c.lease_expires_at < now
                    )
                )
            ).all()
            if not expired:
                return 0
            ids = [r.id for r in expired]
            await conn.execute(
                runs.update()
                .where(runs.c.id.in_(ids))
                .values(
                    status="interrupted",
                    ended_at=now,
                    error="The gateway process running it stopped.",
                )
            )
            await conn.execute(
                sessions.update()
                .where(sessions.c.lock_run_id.in_(ids))
                .values(lock_run_id=None, lock_expires_at=None, status="ready")
            )
        return len(ids)
