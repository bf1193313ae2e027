"""The usage ledger: one row per model call or compute charge, for metrics and billing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from cerver.store.database import Database
from cerver.store.schema import fanout_variants, fanouts, ledger

__all__ = [
    "USAGE_GROUPS",
    "LedgerStore",
    "SessionCost",
    "Spend",
    "UnpricedCalls",
    "UsageGroup",
]

UsageGroup = Literal["user", "model", "harness", "provider", "day", "session"]
USAGE_GROUPS: tuple[str, ...] = ("user", "model", "harness", "provider", "day", "session")
# The ledger column each group reads (``day`` is computed from ``created_at``).
_GROUP_COLUMNS = {
    "user": ledger.c.user,
    "model": ledger.c.model,
    "harness": ledger.c.harness,
    "provider": ledger.c.provider,
    "session": ledger.c.session_id,
}


@dataclass(frozen=True, slots=True)
class UnpricedCalls:
    """Calls of one model that no price source could price when they were recorded."""

    model: str  # the row's ``kind`` when it names no model
    provider: str | None
    calls: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Spend:
    """What a session or an end user spent.

    Attributes:
        usd: the sum over priced calls; with ``unpriced`` calls, only a lower bound.
        unpriced: the calls whose cost was unknown, per model and provider, with their tokens
            (so they can be priced again once the model's rates are known).
    """

    usd: float = 0.0
    unpriced: tuple[UnpricedCalls, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionCost:
    """A session's priced spend and how many of its calls had no price (a lower bound then)."""

    usd: float
    unpriced_calls: int = 0


class LedgerStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def run_totals(
        self, run_id: str, kind: str = "llm"
    ) -> tuple[int, int, int, float | None]:
        """``(calls, input_tokens, output_tokens, cost_usd)`` of one run's rows of ``kind``;
        the cost is ``None`` (unknown) when any of them is unpriced."""
        c = ledger.c
        query = sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(c.input_tokens), 0),
            sa.func.coalesce(sa.func.sum(c.output_tokens), 0),
            sa.func.coalesce(sa.func.sum(c.cost_usd), 0.0),
            sa.func.count(c.cost_usd),
        ).where(c.run_id == run_id, c.kind == kind)
        row = await self._db.read(lambda conn: conn.execute(query).one())
        calls, priced = int(row[0]), int(row[4])
        return calls, int(row[1]), int(row[2]), float(row[3]) if priced == calls else None

    async def session_totals(self, session_id: str) -> list[dict[str, Any]]:
        """Tokens and cost per (kind, harness, model) for one session."""
        c = ledger.c
        query = (
            sa.select(
                c.kind,
                c.harness,
                c.model,
                sa.func.count().label("calls"),
                sa.func.sum(c.input_tokens).label("input_tokens"),
                sa.func.sum(c.output_tokens).label("output_tokens"),
                sa.func.sum(c.cost_usd).label("cost_usd"),
                sa.func.count(c.cost_usd).label("priced_calls"),
            )
            .where(c.session_id == session_id)
            .group_by(c.kind, c.harness, c.model)
            .order_by(c.kind, c.harness, c.model)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [dict(r._mapping) for r in rows]

    async def spent(
        self, account_id: str, *, session_id: str | None = None, user: str | None = None
    ) -> Spend:
        """What one session or one end user spent (see :class:`Spend`)."""
        c = ledger.c
        where = [c.account_id == account_id]
        if session_id is not None:
            where.append(c.session_id == session_id)
        if user is not None:
            where.append(c.user == user)
        return await self._spend(where)

    async def spent_by_session(
        self, account_id: str, session_ids: Sequence[str]
    ) -> dict[str, SessionCost]:
        """What each of ``session_ids`` spent, in one query (a page of the sessions table).

        Sessions without a ledger row are absent from the result.
        """
        if not session_ids:
            return {}
        c = ledger.c
        query = (
            sa.select(
                c.session_id,
                sa.func.coalesce(sa.func.sum(c.cost_usd), 0.0).label("usd"),
                sa.func.sum(sa.case((c.cost_usd.is_(None), 1), else_=0)).label("unpriced"),
            )
            .where(c.account_id == account_id, c.session_id.in_(list(session_ids)))
            .group_by(c.session_id)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return {r.session_id: SessionCost(float(r.usd), int(r.unpriced or 0)) for r in rows}

    async def spent_with_fanouts(self, account_id: str, session_id: str) -> Spend:
        """What a session and the variant child sessions of its fan-outs spent.

        A fan-out's variants run (and are charged) in child sessions; they count against the
        parent's ``max_cost_usd``. One level: the parent's own fan-outs.
        """
        c = ledger.c
        children = (
            sa.select(fanout_variants.c.session_id)
            .join(fanouts, fanouts.c.id == fanout_variants.c.fanout_id)
            .where(
                fanouts.c.parent_session_id == session_id,
                fanout_variants.c.session_id.is_not(None),
            )
        )
        return await self._spend(
            [
                c.account_id == account_id,
                sa.or_(c.session_id == session_id, c.session_id.in_(children)),
            ]
        )

    async def _spend(self, where: list[Any]) -> Spend:
        # One row per model and provider: the priced sum, and the calls without a price with
        # their tokens.
        c = ledger.c
        name = sa.func.coalesce(c.model, c.kind)
        unpriced = c.cost_usd.is_(None)

        def unpriced_sum(column: Any) -> Any:
            return sa.func.coalesce(sa.func.sum(sa.case((unpriced, column), else_=0)), 0)

        query = (
            sa.select(
                name.label("name"),
                c.provider,
                sa.func.coalesce(sa.func.sum(c.cost_usd), 0.0).label("usd"),
                (sa.func.count() - sa.func.count(c.cost_usd)).label("calls"),
                unpriced_sum(c.input_tokens).label("input_tokens"),
                unpriced_sum(c.output_tokens).label("output_tokens"),
            )
            .where(*where)
            .group_by(name, c.provider)
            .order_by(name, c.provider)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return Spend(
            usd=float(sum(row.usd for row in rows)),
            unpriced=tuple(
                UnpricedCalls(
                    row.name, row.provider, row.calls, int(row.input_tokens), int(row.output_tokens)
                )
                for row in rows
                if row.calls
            ),
        )

    async def mean_turn_cost(self, session_id: str) -> float:
        """The mean priced LLM cost of this session's runs so far (0 without any)."""
        c = ledger.c
        per_run = (
            sa.select(sa.func.sum(c.cost_usd).label("cost"))
            .where(c.session_id == session_id, c.kind == "llm", c.run_id.is_not(None))
            .group_by(c.run_id)
            .subquery()
        )
        query = sa.select(sa.func.coalesce(sa.func.avg(per_run.c.cost), 0.0))
        return float(await self._db.read(lambda conn: conn.execute(query).scalar_one()))

    async def usage(
        self,
        account_id: str,
        group_by: UsageGroup,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        user: str | None = None,
    ) -> list[dict[str, Any]]:
        """Spend and tokens per ``group_by`` value, biggest spend first.

        Each row: ``key``, ``calls``, ``input_tokens``, ``output_tokens``, ``cost_usd``
        (priced calls only, ``None`` when none was priced) and ``unpriced_calls``.
        ``since`` is inclusive, ``until`` exclusive.
        """
        c = ledger.c
        key = sa.func.date(c.created_at) if group_by == "day" else _GROUP_COLUMNS[group_by]
        cost = sa.func.sum(c.cost_usd)
        query = (
            sa.select(
                key.label("key"),
                sa.func.count().label("calls"),
                sa.func.coalesce(sa.func.sum(c.input_tokens), 0).label("input_tokens"),
                sa.func.coalesce(sa.func.sum(c.output_tokens), 0).label("output_tokens"),
                cost.label("cost_usd"),
                (sa.func.count() - sa.func.count(c.cost_usd)).label("unpriced_calls"),
            )
            .where(c.account_id == account_id)
            .group_by(key)
            .order_by(sa.func.coalesce(cost, 0.0).desc(), key)
        )
        if since is not None:
            query = query.where(c.created_at >= since)
        if until is not None:
            query = query.where(c.created_at < until)
        if user is not None:
            query = query.where(c.user == user)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [{**row._mapping, "key": None if row.key is None else str(row.key)} for row in rows]
