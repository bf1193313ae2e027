"""Model-proxy run grants in the database, so that every gateway replica can serve them.

A grant is stored by the SHA-256 of its token, never the token itself: a database dump does
not hand out live tokens. A stored grant is *live* while it is not revoked, not past its
``expires_at`` (wall clock, UTC) and its run has not ended (a run row with a status other
than ``running`` kills it, whichever replica recorded the end). The replica that issued a
grant revokes it when the run ends; the run check covers a replica that died first.

Usage of a request served by a replica that did not issue the grant is written here as a
ledger row of the grant's run (:meth:`GrantStore.charge`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from cerver.store.database import Database
from cerver.store.schema import ledger, proxy_grants, runs, sessions, utcnow
from cerver.types import Usage

__all__ = ["GrantStore", "StoredGrant", "token_hash"]


def token_hash(token: str) -> str:
    """The stored form of a token (hex SHA-256): tokens are 256-bit random, so no salt."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredGrant:
    """A live grant as the store holds it (no token: only its hash is stored)."""

    token_hash: str
    run_id: str
    session_id: str
    account_id: str | None
    harness: str
    expires_at: datetime


class GrantStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(
        self,
        token: str,
        *,
        run_id: str,
        session_id: str,
        account_id: str | None,
        harness: str,
        ttl_s: float,
    ) -> None:
        """Store a new grant for ``token`` (hashed), live for ``ttl_s`` seconds."""
        now = utcnow()
        query = proxy_grants.insert().values(
            token_hash=token_hash(token),
            run_id=run_id,
            session_id=session_id,
            account_id=account_id,
            harness=harness,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
        await self._db.write(lambda conn: conn.execute(query))

    async def live(self, token: str) -> StoredGrant | None:
        """The grant behind ``token`` if it is live (see the module docstring), else None."""
        g, r = proxy_grants.c, runs.c
        query = (
            sa.select(g.token_hash, g.run_id, g.session_id, g.account_id, g.harness, g.expires_at)
            .select_from(proxy_grants.outerjoin(runs, r.id == g.run_id))
            .where(
                g.token_hash == token_hash(token),
                g.revoked_at.is_(None),
                g.expires_at > utcnow(),
                sa.or_(r.status.is_(None), r.status == "running"),
            )
        )
        row = await self._db.read(lambda conn: conn.execute(query).first())
        return StoredGrant(*row) if row is not None else None

    async def revoke(self, token: str) -> None:
        """Refuse ``token`` from now on, on every replica. Idempotent."""
        query = (
            proxy_grants.update()
            .where(proxy_grants.c.token_hash == token_hash(token))
            .where(proxy_grants.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        await self._db.write(lambda conn: conn.execute(query))

    async def charge(
        self,
        grant: StoredGrant,
        *,
        usage: Usage,
        model: str,
        provider: str,
        latency_ms: float,
    ) -> None:
        """Write one proxied call of ``grant``'s run to the ledger (as the run's own turn
        would: kind ``llm``, the session's account and end user)."""

        def write(conn: sa.Connection) -> None:
            owner = conn.execute(
                sa.select(sessions.c.account_id, sessions.c.user).where(
                    sessions.c.id == grant.session_id
                )
            ).first()
            if owner is None:  # the session was deleted meanwhile: nothing to bill
                return
            conn.execute(
                ledger.insert().values(
                    account_id=owner.account_id,
                    session_id=grant.session_id,
                    user=owner.user,
                    run_id=grant.run_id,
                    kind="llm",
                    harness=grant.harness,
                    model=model,
                    provider=provider,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cost_usd=usage.cost_usd,
                    cost_reason=usage.cost_reason,
                    cost_source=usage.cost_source,
                    latency_ms=latency_ms,
                    created_at=utcnow(),
                )
            )

        await self._db.write(write)

    async def purge(self, *, older_than: datetime) -> int:
        """Delete grants that expired before ``older_than``; returns how many."""
        query = proxy_grants.delete().where(proxy_grants.c.expires_at < older_than)
        return await self._db.write(lambda conn: conn.execute(query).rowcount)
