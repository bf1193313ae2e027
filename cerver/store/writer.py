"""The single writer of one session's transcript, event log and ledger while it holds the lock.

Numbering is gapless and needs no extra round trip: the lock grant hands over the session's
``next_seq`` / ``next_event_id``, the writer numbers rows in memory, and every flush writes the
rows together with the advanced counters in one transaction. Events are published to live
subscribers at once and written in batches (at each transcript append, or when
:meth:`maybe_flush` finds them older than ``flush_interval``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from cerver.store.database import Database
from cerver.store.records import StoredEvent
from cerver.store.schema import entries, events, ledger, sessions, utcnow
from cerver.store.sessions import LockGrant
from cerver.types import Entry, Usage

if TYPE_CHECKING:
    from cerver.events import EventHub

__all__ = ["SessionWriter"]


class SessionWriter:
    def __init__(
        self,
        db: Database,
        hub: EventHub,
        *,
        session_id: str,
        account_id: str,
        user: str | None,
        grant: LockGrant,
        flush_interval: float = 0.25,
    ) -> None:
        self._db = db
        self._hub = hub
        self.session_id = session_id
        self._account_id = account_id
        self._user = user
        self._next_seq = grant.next_seq
        self._next_event_id = grant.next_event_id
        self._pending_events: list[dict[str, Any]] = []
        self._pending_ledger: list[dict[str, Any]] = []
        self._oldest_pending = 0.0
        self._flush_interval = flush_interval

    def emit(self, event: str, data: Any) -> StoredEvent:
        """Number an event, publish it to live subscribers and queue it for the log."""
        stored = StoredEvent(
            session_id=self.session_id,
            id=self._next_event_id,
            event=event,
            data=orjson.dumps(data).decode(),
        )
        self._next_event_id += 1
        if not self._pending_events:
            self._oldest_pending = time.monotonic()
        self._pending_events.append({**stored.model_dump(), "created_at": utcnow()})
        self._hub.publish(stored)
        return stored

    def charge(
        self,
        *,
        kind: str,
        usage: Usage,
        run_id: str | None,
        harness: str | None = None,
        model: str | None = None,
        provider: str | None = None,
        latency_ms: float | None = None,
    ) -> None:
        """Queue a ledger row (written with the next flush)."""
        self._pending_ledger.append(
            {
                "account_id": self._account_id,
                "session_id": self.session_id,
                "user": self._user,
                "run_id": run_id,
                "kind": kind,
                "harness": harness,
                "model": model,
                "provider": provider,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cost_usd": usage.cost_usd,
                "latency_ms": latency_ms,
                "created_at": utcnow(),
            }
        )

    async def append(self, entry: Entry, **session_values: Any) -> Entry:
        """Persist ``entry`` (numbered next) with everything queued, in one transaction.

        ``session_values`` update the session row in the same transaction (e.g. a harness
        switch records its entry and the new harness atomically).
        """
        now = utcnow()
        stored = entry.model_copy(update={"seq": self._next_seq, "created_at": now})
        self._next_seq += 1
        usage = stored.usage
        row = {
            "session_id": self.session_id,
            "seq": stored.seq,
            "role": stored.role,
            "kind": stored.kind,
            "content": stored.content,
            "parts": [p.model_dump() for p in stored.parts],
            "harness": stored.harness,
            "model": stored.model,
            "provider": stored.provider,
            "run_id": stored.run_id,
            "input_tokens": usage.input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None,
            "cost_usd": usage.cost_usd if usage else None,
            "latency_ms": stored.latency_ms,
            "status": stored.status,
            "metadata": stored.metadata,
            "created_at": now,
        }
        await self._write(entry_row=row, session_values=session_values)
        return stored

    async def maybe_flush(self) -> None:
        if self._pending_events and time.monotonic() - self._oldest_pending >= self._flush_interval:
            await self.flush()

    async def flush(self, **session_values: Any) -> None:
        """Write queued events and ledger rows (and ``session_values``) now."""
        if self._pending_events or self._pending_ledger or session_values:
            await self._write(entry_row=None, session_values=session_values)

    async def _write(
        self, *, entry_row: dict[str, Any] | None, session_values: dict[str, Any]
    ) -> None:
        pending_events, self._pending_events = self._pending_events, []
        pending_ledger, self._pending_ledger = self._pending_ledger, []
        try:
            async with self._db.write() as conn:
                if entry_row is not None:
                    await conn.execute(entries.insert(), [entry_row])
                if pending_events:
                    await conn.execute(events.insert(), pending_events)
                if pending_ledger:
                    await conn.execute(ledger.insert(), pending_ledger)
                await conn.execute(
                    sa.update(sessions)
                    .where(sessions.c.id == self.session_id)
                    .values(
                        next_seq=self._next_seq,
                        next_event_id=self._next_event_id,
                        updated_at=utcnow(),
                        **session_values,
                    )
                )
        except BaseException:
            # Keep the queued rows so a later flush can still write them.
            self._pending_events = pending_events + self._pending_events
            self._pending_ledger = pending_ledger + self._pending_ledger
            raise
