"""Learned provider profiles: what this gateway observed of each provider, as EWMAs.

Each observation folds into the stored value with weight :data:`ALPHA` in one UPDATE (or
INSERT for the first one), so concurrent gateway processes never lose each other's samples to
a read-modify-write race.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from cerver.store.database import Database
from cerver.store.schema import provider_profiles, utcnow

__all__ = ["ALPHA", "LearnedProfile", "ProfileStore"]

ALPHA = 0.3
"""Weight of the newest observation in each exponentially weighted average."""


class LearnedProfile(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    provider: str
    startup_ms: float | None
    exec_ms: float | None
    reliability: float | None
    provisions: int
    execs: int
    failures: int
    updated_at: datetime


def _ewma(column: sa.Column[Any], value: float) -> sa.ColumnElement[Any]:
    return sa.case((column.is_(None), value), else_=column * (1 - ALPHA) + value * ALPHA)


class ProfileStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> dict[str, LearnedProfile]:
        rows = await self._db.read(lambda conn: conn.execute(provider_profiles.select()).all())
        return {row.provider: LearnedProfile.model_validate(row) for row in rows}

    async def observe(
        self,
        provider: str,
        *,
        startup_ms: float | None = None,
        exec_ms: float | None = None,
        ok: bool = True,
    ) -> None:
        """Fold one provisioning (``startup_ms``), exec (``exec_ms``) or failure into the
        provider's profile."""
        t = provider_profiles.c
        values: dict[str, Any] = {
            "updated_at": utcnow(),
            "reliability": _ewma(t.reliability, 1.0 if ok else 0.0),
        }
        if startup_ms is not None:
            values["startup_ms"] = _ewma(t.startup_ms, startup_ms)
            values["provisions"] = t.provisions + 1
        if exec_ms is not None:
            values["exec_ms"] = _ewma(t.exec_ms, exec_ms)
            values["execs"] = t.execs + 1
        if not ok:
            values["failures"] = t.failures + 1
        first = {
            "provider": provider,
            "startup_ms": startup_ms,
            "exec_ms": exec_ms,
            "reliability": 1.0 if ok else 0.0,
            "provisions": int(startup_ms is not None),
            "execs": int(exec_ms is not None),
            "failures": int(not ok),
            "updated_at": utcnow(),
        }

        def upsert(conn: sa.Connection) -> None:
            update = provider_profiles.update().where(t.provider == provider).values(**values)
            if conn.execute(update).rowcount:
                return
            try:
                with conn.begin_nested():
                    conn.execute(provider_profiles.insert().values(**first))
            except sa.exc.IntegrityError:  # another process inserted it first
                conn.execute(update)

        await self._db.write(upsert)
