"""Run records (one turn or one exec) with leases, so a crashed process's runs are reclaimed.

The statements that start and finish a run are built here and executed by the caller's
transaction (a turn writes them with its transcript through ``SessionWriter.defer``).

A run's lease is renewed by the process running it. When the lease runs out, that process is
gone (or stuck past its lease): :func:`interrupt_run` ends the run as ``interrupted`` and, when
it still holds its session's turn lock, frees the session and closes the run's story in the
session's own log (an ``error`` entry, and ``error`` + ``turn.completed`` events), numbered
from the session row in the same transaction. Every statement is conditional, so when several
gateway processes notice the same expired run only one of them acts.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from cerver.errors import NotFound, RunInterrupted
from cerver.failures import Failure
from cerver.store.database import Database
from cerver.store.records import RunRecord, StoredEvent
from cerver.store.schema import entries, events, runs, sessions, utcnow
from cerver.types import Usage

__all__ = [
    "INTERRUPTED_REASON",
    "CancelRequest",
    "Prepared",
    "RunStore",
    "finish_run",
    "finishing_run",
    "interrupt_run",
    "start_run",
    "starting_run",
]

INTERRUPTED_REASON = (
    "The gateway process running this turn stopped (its lease expired); the turn was "
    "interrupted. Send the turn again to continue."
)


#: A statement built once and the parameters of one execution of it (``conn.execute(*it)``).
Prepared = tuple[sa.Executable, dict[str, Any]]
_INSERT_RUN = runs.insert()


def start_run(run_id: str, session_id: str, kind: str, ttl: float, **values: Any) -> sa.Insert:
    return runs.insert().values(**_started(run_id, session_id, kind, ttl, values))


def starting_run(run_id: str, session_id: str, kind: str, ttl: float, **values: Any) -> Prepared:
    """:func:`start_run` as a statement built once and its parameters (a turn's hot path)."""
    return _INSERT_RUN, _started(run_id, session_id, kind, ttl, values)


def _started(
    run_id: str, session_id: str, kind: str, ttl: float, values: dict[str, Any]
) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": run_id,
        "session_id": session_id,
        "kind": kind,
        "status": "running",
        "started_at": now,
        "lease_expires_at": now + timedelta(seconds=ttl),
        **values,
    }


def finish_run(run_id: str, status: str, **values: Any) -> sa.Update:
    # Only a running run is finished: one already ended (reaped as interrupted by another
    # process) keeps the status it was given first.
    return (
        runs.update()
        .where(runs.c.id == run_id, runs.c.status == "running")
        .values(status=status, ended_at=utcnow(), lease_expires_at=None, **values)
    )


def finishing_run(run_id: str, status: str, **values: Any) -> Prepared:
    """:func:`finish_run` as a statement built once (per set of columns) and its parameters."""
    values = {"status": status, "ended_at": utcnow(), "lease_expires_at": None, **values}
    params = {f"v_{key}": value for key, value in values.items()}
    params["w_id"] = run_id
    return _finish_statement(tuple(sorted(values))), params


@functools.lru_cache(maxsize=64)
def _finish_statement(keys: tuple[str, ...]) -> sa.Update:
    return (
        runs.update()
        .where(runs.c.id == sa.bindparam("w_id"), runs.c.status == "running")
        .values(**{key: sa.bindparam(f"v_{key}") for key in keys})
    )


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """A run or fan-out some process was asked to cancel."""

    id: str
    requested_at: datetime


class RunStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def start(
        self, run_id: str, session_id: str, kind: str, ttl: float, **values: Any
    ) -> None:
        statement = start_run(run_id, session_id, kind, ttl, **values)
        await self._db.write(lambda conn: conn.execute(statement))

    async def record_refused(
        self, run_id: str, session_id: str, *, error: str, **values: Any
    ) -> None:
        """Record a turn refused before it began (it wrote nothing) as a ``failed`` run, for
        a client that will look it up later. A no-op when the run already has its row."""
        now = utcnow()
        statement = runs.insert().values(
            id=run_id,
            session_id=session_id,
            kind="turn",
            status="failed",
            error=error,
            started_at=now,
            ended_at=now,
            **values,
        )
        # An existing row: the turn did begin, and its own row tells how it ended.
        with contextlib.suppress(sa.exc.IntegrityError):
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
        """The run ``run_id`` of ``session_id``. Raises NotFound."""
        query = runs.select().where(runs.c.id == run_id, runs.c.session_id == session_id)
        row = await self._db.read(lambda conn: conn.execute(query).first())
        if row is None:
            raise NotFound(
                f"Run {run_id!r} not found in session {session_id!r}. List the session's runs "
                "with GET /v2/sessions/{id}/runs.",
                context={"run_id": run_id, "session_id": session_id},
            )
        return RunRecord.from_row(row)

    async def list(
        self, session_id: str, *, status: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        """The session's runs, newest first."""
        query = runs.select().where(runs.c.session_id == session_id)
        if status is not None:
            query = query.where(runs.c.status == status)
        query = query.order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(limit)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [RunRecord.from_row(r) for r in rows]

    async def request_cancel(self, session_id: str, run_id: str | None = None) -> list[str]:
        """Flag the session's running run (``run_id``, or any) for cancellation.

        Returns the ids flagged: the process running each one sees the flag at its next poll.
        """
        c = runs.c
        query = runs.update().where(c.session_id == session_id, c.status == "running")
        if run_id is not None:
            query = query.where(c.id == run_id)
        query = query.values(cancel_requested_at=sa.func.coalesce(c.cancel_requested_at, utcnow()))
        flagged = runs.select().with_only_columns(c.id)
        flagged = flagged.where(c.session_id == session_id, c.status == "running")
        if run_id is not None:
            flagged = flagged.where(c.id == run_id)

        def write(conn: sa.Connection) -> list[str]:
            conn.execute(query)
            return list(conn.execute(flagged).scalars().all())

        return await self._db.write(write)

    async def cancel_requests(self, run_ids: list[str]) -> list[CancelRequest]:
        """Which of ``run_ids`` (runs of this process) were asked to cancel."""
        if not run_ids:
            return []
        query = sa.select(runs.c.id, runs.c.cancel_requested_at).where(
            runs.c.id.in_(run_ids), runs.c.cancel_requested_at.is_not(None)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [CancelRequest(r.id, r.cancel_requested_at) for r in rows]

    async def counts(self, session_id: str) -> tuple[int, int]:
        """(all runs, runs that failed or were interrupted) of a session."""
        query = sa.select(
            sa.func.count(),
            sa.func.count().filter(runs.c.status.in_(["failed", "interrupted"])),
        ).where(runs.c.session_id == session_id)
        total, failed = await self._db.read(lambda conn: conn.execute(query).one())
        return total, failed

    async def reclaim_expired(self, *, alive: Collection[str] = ()) -> list[StoredEvent]:
        """End every run whose lease ran out as ``interrupted`` (see :func:`interrupt_run`).

        Run by every gateway process in the background (and at start-up): a run whose process
        died stops renewing its lease. ``alive`` are runs the caller itself is running (late
        to renew, not dead). Returns the events written, for live subscribers.
        """
        return await self._db.write(lambda conn: _reclaim(conn, alive))


def _reclaim(conn: sa.Connection, alive: Collection[str]) -> list[StoredEvent]:
    now = utcnow()
    query = sa.select(runs.c.id, runs.c.session_id).where(
        runs.c.status == "running", runs.c.lease_expires_at < now
    )
    if alive:
        query = query.where(runs.c.id.not_in(list(alive)))
    expired = conn.execute(query).all()
    written: list[StoredEvent] = []
    for run_id, session_id in expired:
        written += interrupt_run(conn, run_id, session_id, expired_before=now)
    return written


def interrupt_run(
    conn: sa.Connection,
    run_id: str,
    session_id: str,
    *,
    expired_before: datetime | None = None,
    reason: str = INTERRUPTED_REASON,
) -> list[StoredEvent]:
    """End ``run_id`` as ``interrupted`` if it is still running; returns the events written.

    If the run still holds its session's turn lock, the lock is released, the session made
    ``ready``, and an ``error`` entry plus ``error`` and ``turn.completed`` events (status
    ``interrupted``) are appended, numbered from the session row, so ``/events`` tails see
    the run end. Conditional on the run's status (and, with ``expired_before``, on its lease
    having run out before then): of several processes doing this at once, exactly one acts.
    """
    now = utcnow()
    take = runs.update().where(runs.c.id == run_id, runs.c.status == "running")
    if expired_before is not None:
        take = take.where(runs.c.lease_expires_at < expired_before)
    took = conn.execute(
        take.values(status="interrupted", ended_at=now, lease_expires_at=None, error=reason)
    )
    if took.rowcount != 1:
        return []
    c = sessions.c
    freed = conn.execute(
        sessions.update()
        .where(c.id == session_id, c.lock_run_id == run_id)
        .values(
            lock_run_id=None,
            lock_expires_at=None,
            status=sa.case((c.status == "running", "ready"), else_=c.status),
            next_seq=c.next_seq + 1,
            next_event_id=c.next_event_id + 2,
            updated_at=now,
        )
    )
    if freed.rowcount != 1:
        return []  # another run holds the session now: its log is not ours to write
    next_seq, next_event_id = conn.execute(
        sa.select(c.next_seq, c.next_event_id).where(c.id == session_id)
    ).one()
    run = conn.execute(runs.select().where(runs.c.id == run_id)).one()
    error = Failure.from_error(RunInterrupted(reason)).to_json()
    seq = next_seq - 1
    conn.execute(
        entries.insert().values(
            session_id=session_id,
            seq=seq,
            role="event",
            kind="error",
            content=reason,
            parts=[],
            harness=run.harness,
            model=run.model,
            provider=run.provider,
            run_id=run_id,
            status="complete",
            metadata={"code": "interrupted", "retryable": True},
            created_at=now,
        )
    )
    completed = {
        "run_id": run_id,
        "status": "interrupted",
        "message": None,
        "usage": Usage().model_dump(),
        "latency_ms": (now - _aware(run.started_at)).total_seconds() * 1000,
        "harness": run.harness,
        "model": run.model,
        "answered_model": None,
        "error": error,
    }
    written = [
        StoredEvent(
            session_id=session_id,
            id=next_event_id - 2,
            event="error",
            data=orjson.dumps({**error, "seq": seq}).decode(),
        ),
        StoredEvent(
            session_id=session_id,
            id=next_event_id - 1,
            event="turn.completed",
            data=orjson.dumps(completed).decode(),
        ),
    ]
    conn.execute(events.insert(), [{**asdict(e), "created_at": now} for e in written])
    return written


def _aware(value: datetime) -> datetime:
    # Rows read inside a transaction come back through the column type (UTC-aware).
    return value if value.tzinfo is not None else value.replace(tzinfo=utcnow().tzinfo)
