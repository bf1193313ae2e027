"""The usage ledger: one row per model call or compute charge, for metrics and billing."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cerver.store.database import Database
from cerver.store.schema import ledger

__all__ = ["LedgerStore"]


class LedgerStore:
    def __init__(self, db: Database) -> None:
        self._db = db

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
