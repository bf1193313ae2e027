"""Fan-out rows: the fan-out, its variants (each persisted as it finishes), its verdict."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from cerver.errors import NotFound, error_class
from cerver.failures import Failure
from cerver.store.database import Database
from cerver.store.schema import fanout_variants, fanouts, utcnow
from cerver.store.storable import storable

__all__ = ["FanoutRecord", "FanoutStore", "VariantRecord"]


class VariantRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    fanout_id: str
    position: int
    session_id: str | None
    run_id: str | None
    harness: str
    model: str
    provider: str | None
    compute: str | None
    status: str
    output: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    latency_ms: float | None
    error: dict[str, Any] | None
    started_at: datetime | None
    ended_at: datetime | None


class FanoutRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    account_id: str
    parent_session_id: str
    status: str
    input: str
    judge: dict[str, Any] | None
    keep: str
    max_concurrency: int
    verdict: dict[str, Any] | None
    winner_variant_id: str | None
    picked_by: str | None
    kept_message_seq: int | None
    judge_input_tokens: int | None
    judge_output_tokens: int | None
    judge_cost_usd: float | None
    judge_latency_ms: float | None
    wall_ms: float | None
    error: str | None
    created_at: datetime
    completed_at: datetime | None
    cancel_requested_at: datetime | None = None
    variants: list[VariantRecord] = []

    def variant(self, variant_id: str) -> VariantRecord:
        """The variant ``variant_id`` of this fan-out. Raises NotFound."""
        for variant in self.variants:
            if variant.id == variant_id:
                return variant
        raise NotFound(
            f"Variant {variant_id!r} is not part of fan-out {self.id!r}; its variants are "
            f"{', '.join(v.id for v in self.variants)}.",
            context={"fanout_id": self.id, "variant_id": variant_id},
        )


class FanoutStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, values: dict[str, Any], variants: list[dict[str, Any]]) -> None:
        """Insert a fan-out and its (pending) variants in one transaction."""
        row = {"created_at": utcnow(), **values}

        def insert(conn: sa.Connection) -> None:
            conn.execute(fanouts.insert().values(**row))
            conn.execute(fanout_variants.insert(), variants)

        await self._db.write(insert)

    async def get(self, account_id: str, fanout_id: str) -> FanoutRecord:
        """The fan-out with its variants in request order, if ``account_id`` owns it.

        Raises:
            NotFound: no such fan-out, or another account's (identical answers).
        """
        query = fanouts.select().where(
            fanouts.c.id == fanout_id, fanouts.c.account_id == account_id
        )
        variants = (
            fanout_variants.select()
            .where(fanout_variants.c.fanout_id == fanout_id)
            .order_by(fanout_variants.c.position)
        )

        def read(conn: sa.Connection) -> tuple[Any, list[Any]]:
            return conn.execute(query).first(), list(conn.execute(variants).all())

        row, variant_rows = await self._db.read(read)
        if row is None:
            raise NotFound(f"Fan-out {fanout_id!r} not found.", context={"fanout_id": fanout_id})
        record = FanoutRecord.model_validate(row)
        record.variants = [VariantRecord.model_validate(v) for v in variant_rows]
        return record

    async def update(self, fanout_id: str, **values: Any) -> None:
        query = fanouts.update().where(fanouts.c.id == fanout_id).values(**values)
        await self._db.write(lambda conn: conn.execute(query))

    async def update_variant(self, variant_id: str, **values: Any) -> None:
        # A variant's output is model text: stored with NULs and lone surrogates replaced.
        values = storable(values)
        query = fanout_variants.update().where(fanout_variants.c.id == variant_id)
        await self._db.write(lambda conn: conn.execute(query.values(**values)))

    async def renew(self, fanout_id: str, lease_seconds: float) -> None:
        """Extend the lease of a running fan-out (its process is alive)."""
        expires = utcnow() + timedelta(seconds=lease_seconds)
        query = (
            fanouts.update()
            .where(fanouts.c.id == fanout_id, fanouts.c.status == "running")
            .values(lease_expires_at=expires)
        )
        await self._db.write(lambda conn: conn.execute(query))

    async def finish(self, fanout_id: str, status: str, error: str, **values: Any) -> None:
        """End a fan-out that did not complete (``cancelled``): it and its unfinished
        (``pending``/``running``) variants get ``status``."""

        def write(conn: sa.Connection) -> None:
            _finish(conn, [fanout_id], status, error, **values)

        await self._db.write(write)

    async def request_cancel(self, fanout_id: str) -> bool:
        """Flag a running fan-out for cancellation; False when it is not running.

        The process running it sees the flag at its next poll (any replica may set it).
        """
        c = fanouts.c
        query = (
            fanouts.update()
            .where(c.id == fanout_id, c.status == "running")
            .values(cancel_requested_at=sa.func.coalesce(c.cancel_requested_at, utcnow()))
        )
        return await self._db.write(lambda conn: conn.execute(query).rowcount == 1)

    async def cancel_requests(self, fanout_ids: list[str]) -> list[str]:
        """Which of ``fanout_ids`` (fan-outs of this process) were asked to cancel."""
        if not fanout_ids:
            return []
        query = sa.select(fanouts.c.id).where(
            fanouts.c.id.in_(fanout_ids), fanouts.c.cancel_requested_at.is_not(None)
        )
        return list(await self._db.read(lambda conn: conn.execute(query).scalars().all()))

    async def reclaim_expired(self) -> int:
        """Mark fan-outs whose lease ran out as ``interrupted`` (with their unfinished
        variants), so they can be picked from or read as over.

        Called by every gateway process's reaper, in the background and at start-up. The
        process running a fan-out renews its lease
        (``lease_expires_at``) while it runs; one that died (a crash, a kill) stops renewing
        it, so only fan-outs of a stopped process are reclaimed, never those of another live
        gateway sharing the store. A gateway that stops cleanly marks its own ``cancelled``.
        """

        def reclaim(conn: sa.Connection) -> int:
            now = utcnow()
            expired = list(
                conn.execute(
                    sa.select(fanouts.c.id).where(
                        fanouts.c.status == "running",
                        sa.or_(
                            fanouts.c.lease_expires_at.is_(None),
                            fanouts.c.lease_expires_at < now,
                        ),
                    )
                )
                .scalars()
                .all()
            )
            if not expired:
                return 0
            return _finish(conn, expired, "interrupted", "The gateway process running it stopped.")

        return await self._db.write(reclaim)


def complete_fanout(fanout_id: str, **values: Any) -> sa.Update:
    """The statement that marks a fan-out completed with its verdict, kept entry and cost
    (for :meth:`SessionWriter.defer`, in the transaction that writes the parent's entries)."""
    return (
        fanouts.update()
        .where(fanouts.c.id == fanout_id)
        .values(status="completed", completed_at=utcnow(), **values)
    )


def record_pick(fanout_id: str, variant_id: str, kept_message_seq: int | None) -> sa.Update:
    """The statement that records a person's pick of ``variant_id`` and the entry it kept."""
    return (
        fanouts.update()
        .where(fanouts.c.id == fanout_id)
        .values(winner_variant_id=variant_id, picked_by="human", kept_message_seq=kept_message_seq)
    )


def _finish(
    conn: sa.Connection, fanout_ids: list[str], status: str, error: str, **values: Any
) -> int:
    """End the running fan-outs among ``fanout_ids``; returns how many this call ended
    (conditional on ``running``, so two processes never both end one)."""
    now = utcnow()
    # ``cancelled`` and ``interrupted`` are also the codes of the variants' failure.
    failure = Failure.from_error(error_class(status)(error)).to_json()
    ended = conn.execute(
        fanouts.update()
        .where(fanouts.c.id.in_(fanout_ids), fanouts.c.status == "running")
        .values(status=status, error=error, completed_at=now, **values)
    ).rowcount
    conn.execute(
        fanout_variants.update()
        .where(
            fanout_variants.c.fanout_id.in_(fanout_ids),
            fanout_variants.c.status.in_(("pending", "running")),
        )
        .values(status=status, error=failure, ended_at=now)
    )
    return ended
