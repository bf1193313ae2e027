"""The single writer of one session's transcript, event log and ledger while it holds the lock.

Numbering is gapless and costs no extra round trip: the lock hands over the session row with
its ``next_seq`` / ``next_event_id``, the writer numbers rows in memory, and every flush writes
the rows together with the advanced counters in one transaction. Events are published to live
subscribers at once and written in batches: with each transcript append, when
:meth:`maybe_flush` finds them older than ``flush_interval`` (in the background, so a stream of
deltas never waits on the database), and on :meth:`release`; consecutive deltas go into one
row (:mod:`cerver.store.event_rows`). Writes are serialized, so the counters on the session
row only ever move forward.

An event that tells of a row (a message with its ``seq``) may be emitted ``after_commit``: it is
numbered and queued at once but published only when the write holding that row has committed,
and every event emitted after it waits behind it, so subscribers see events in id order and
never a ``seq`` the store may not hold. With :meth:`write_soon` a turn queues its last message
and goes on: the message is written at the next tick of the event loop in the background, or,
when the turn ends first, with the release, in the release's one transaction.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from cerver.errors import SessionBusy
from cerver.store.compiled import execute
from cerver.store.database import Database
from cerver.store.event_rows import queue_event, seal
from cerver.store.publishing import Listener, Publisher
from cerver.store.records import SessionRecord, StoredEvent, entry_from_row
from cerver.store.schema import entries, events, ledger, sessions, utcnow
from cerver.store.sessions import unlock_statement
from cerver.store.storable import storable
from cerver.types import Entry, Usage

if TYPE_CHECKING:
    from cerver.events import EventHub
    from cerver.store.transcript_cache import TranscriptCache

__all__ = ["SessionWriter"]

log = logging.getLogger("cerver.store")


class SessionWriter:
    """Writes for one lock holder (``run_id``) of one session.

    Everything queued (events, ledger rows, deferred statements, session values) is written
    with the next :meth:`append`, :meth:`flush` or :meth:`release`, in one transaction.
    """

    def __init__(
        self,
        db: Database,
        hub: EventHub,
        session: SessionRecord,
        run_id: str,
        *,
        transcript: list[Entry] | None = None,
        transcripts: TranscriptCache | None = None,
        flush_interval: float = 1.0,
    ) -> None:
        # flush_interval: how old the oldest queued event may get before a background write.
        # At 0.25 s the per-session flushes of 100 streams were a fifth of the gateway's CPU;
        # a reader that reconnects mid-turn waits at most this long for the newest deltas.
        # transcripts: the process's transcript cache, given the entries this writer commits.
        self._db = db
        self._transcripts = transcripts
        #: Entry rows written in the lock's own transaction, cached once it commits.
        self._in_lock: list[dict[str, Any]] = []
        #: The transcript as the lock found it (if the lock holder asked for it).
        self.transcript = transcript or []
        self.session = session
        self.session_id = session.id
        self.run_id = run_id
        self._next_seq = session.next_seq
        self._next_event_id = session.next_event_id
        self._entries: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._ledger: list[dict[str, Any]] = []
        self._statements: list[_Statement] = []
        self._session_values: dict[str, Any] = {}
        self._oldest_event = 0.0
        self._flush_interval = flush_interval
        self._write_lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None
        self._flush_wanted = False
        self._releasing = False
        #: Batches taken for writing so far (the next one is ``_taken + 1``).
        self._taken = 0
        self._publisher = Publisher(hub)

    def emit(
        self,
        event: str,
        data: Any,
        *,
        to: Listener | None = None,
        after_commit: bool = False,
    ) -> StoredEvent:
        """Number an event, queue it for the log and publish it to live subscribers (and to
        ``to``, the emitter's own listener).

        With ``after_commit`` it is published only once everything queued so far (the row it
        tells of) is committed; an event emitted while an earlier one is held waits behind it.
        """
        stored = StoredEvent(
            self.session_id, self._next_event_id, event, orjson.dumps(data).decode()
        )
        self._next_event_id += 1
        if not self._events:
            self._oldest_event = time.monotonic()
        queue_event(self._events, stored)
        self._publisher.publish(stored, to, needs=self._taken + 1 if after_commit else 0)
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
        """Queue a ledger row."""
        self._ledger.append(
            {
                "account_id": self.session.account_id,
                "session_id": self.session_id,
                "user": self.session.user,
                "run_id": run_id,
                "kind": kind,
                "harness": harness,
                "model": model,
                "provider": provider,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cost_usd": usage.cost_usd,
                "cost_reason": usage.cost_reason,
                "cost_source": usage.cost_source,
                "latency_ms": latency_ms,
                "created_at": utcnow(),
            }
        )

    def defer(self, statement: sa.Executable, parameters: dict[str, Any] | None = None) -> None:
        """Queue a statement (e.g. a run record) for the next transaction, with its
        ``parameters`` when it is built once (:data:`~cerver.store.runs.Prepared`)."""
        self._statements.append((statement, parameters))

    def update_session(self, **values: Any) -> None:
        """Queue values for the session row."""
        self._session_values.update(values)

    async def append(self, entry: Entry) -> Entry:
        """Persist ``entry`` (numbered next) with everything queued; returns it numbered."""
        [stored] = await self.append_many([entry])
        return stored

    async def append_many(self, new_entries: list[Entry]) -> list[Entry]:
        """Persist ``new_entries`` (numbered next, in order) with everything queued, in one
        transaction; returns them numbered. Used to copy a transcript into a new branch.

        If the write fails the entries stay queued (their numbers taken), so the next write
        or the release persists them and ``seq`` stays gapless.
        """
        stored = self.queue(new_entries)
        await self._write(release=False)
        return stored

    def queue(self, new_entries: list[Entry]) -> list[Entry]:
        """Number ``new_entries`` (next, in order) and queue them for the next write, which
        persists them; returns them numbered. Safe to call from the store's worker thread
        (it touches no event loop): :meth:`SessionLocks.hold`'s ``opening`` uses it."""
        now = utcnow()
        stored = []
        for entry in new_entries:
            stored.append(entry.model_copy(update={"seq": self._next_seq, "created_at": now}))
            self._next_seq += 1
        self._entries.extend(_entry_row(self.session_id, e) for e in stored)
        return stored

    def write_queued_in(self, conn: sa.Connection) -> None:
        """Write everything queued in ``conn``'s transaction (the lock's own, so that taking
        the lock and a turn's first rows cost one transaction). Once that transaction
        commits, call :meth:`lock_committed`; if it does not, this writer must be dropped: its
        rows are not put back."""
        batch, session_update = self._take_batch(release=False)
        batch.execute(conn, session_update, self.session_id)
        self._in_lock = batch.entry_rows

    def lock_committed(self) -> None:
        """The lock's transaction committed: what :meth:`write_queued_in` wrote is stored."""
        self._cache(self._in_lock)
        self._in_lock = []

    def maybe_flush(self) -> None:
        """Start writing the queued events in the background once the oldest is
        ``flush_interval`` old. Never waits for the database; a failed background write puts
        its rows back, and the next write (at the latest :meth:`release`) persists them."""
        if self._background is not None and self._background.done():
            self._background = None  # its failure, if any, was logged by _log_failure
        if (
            self._background is None
            and self._events
            and time.monotonic() - self._oldest_event >= self._flush_interval
        ):
            self._flush_wanted = True
            self._background = asyncio.create_task(self._write_wanted())
            self._background.add_done_callback(_log_failure)

    def write_soon(self) -> None:
        """Write what is queued in the background, starting at the next tick of the event
        loop; returns at once. Rows queued meanwhile go with it: when the lock holder
        releases before the background write began, the release writes them all in its one
        transaction and the background write finds nothing left. A failed background write
        puts its rows back for the next write, as :meth:`maybe_flush`'s does.

        Raises:
            Exception: what the last background write raised, once (its rows are still
                queued): the holder learns at its next message that the store failed, as it
                would have from :meth:`append`.
        """
        background = self._background
        if background is not None and background.done():
            self._background = None
            if not background.cancelled() and (failure := background.exception()) is not None:
                raise failure
        self._flush_wanted = True
        if self._background is None:
            self._background = asyncio.create_task(self._write_wanted())
            self._background.add_done_callback(_log_failure)

    async def _write_wanted(self) -> None:
        while self._flush_wanted and not self._releasing:
            self._flush_wanted = False
            await self.flush()

    async def flush(self) -> None:
        """Write everything queued now."""
        async with self._write_lock:  # after a write in flight, whose rows may be put back
            queued = (self._entries, self._events, self._ledger, self._statements)
            if any(queued) or self._session_values:
                await self._write_queued(release=False)

    def release(self) -> asyncio.Task[None]:
        """Write everything queued and release the session's lock, in one transaction;
        returns the task doing it (await it).

        From the call on, a background write (:meth:`write_soon`) that has not begun yet
        writes nothing: the release writes its rows in its own transaction, so a turn whose
        last message was queued just before it ends costs one transaction, not two.

        If that fails, the events held for a commit that never came are dropped (their rows
        were not written), and those that waited only behind them are published."""
        self._releasing = True
        return asyncio.ensure_future(self._release())

    async def _release(self) -> None:
        try:
            await self._write(release=True)
        except BaseException:
            self._publisher.abandon()
            raise

    async def _write(self, *, release: bool) -> None:
        """Write the queue in one transaction, guarded by the lock.

        The session row is updated first and only where this run still holds the lock, so a
        holder whose lease was taken over writes nothing (:class:`SessionBusy`). A cancelled
        caller waits for the transaction to finish (it cannot be stopped half-way); what was
        queued is put back only if the transaction did not commit.
        """
        async with self._write_lock:
            await self._write_queued(release=release)

    def _take_batch(self, *, release: bool) -> tuple[_Batch, _Statement]:
        """Everything queued, emptied out of the queue, and the session row's update."""
        batch = _Batch(
            self._entries, seal(self._events), self._ledger, self._statements, self._session_values
        )
        self._entries, self._events, self._ledger, self._statements = [], [], [], []
        self._session_values = {}
        self._taken += 1
        values = {
            **batch.session_values,
            "next_seq": self._next_seq,
            "next_event_id": self._next_event_id,
            "updated_at": utcnow(),
        }
        if any(isinstance(v, sa.ColumnElement) for v in values.values()):  # an expression
            if release:
                statement: sa.Executable = unlock_statement(self.session_id, self.run_id, **values)
            else:
                statement = (
                    sessions.update()
                    .where(sessions.c.id == self.session_id, sessions.c.lock_run_id == self.run_id)
                    .values(**values)
                )
            return batch, (statement, None)
        params = {f"v_{key}": value for key, value in values.items()}
        params.update(w_id=self.session_id, w_run_id=self.run_id)
        return batch, (_session_update(tuple(sorted(values)), release), params)

    async def _write_queued(self, *, release: bool) -> None:
        batch, session_update = self._take_batch(release=release)
        number = self._taken
        write = asyncio.ensure_future(
            self._db.write(lambda conn: batch.execute(conn, session_update, self.session_id))
        )
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            await asyncio.wait([write])
            if write.cancelled() or write.exception() is not None:
                self._requeue(batch, number)
            else:
                self._committed(batch, number)
            raise
        except BaseException:
            self._requeue(batch, number)
            raise
        self._committed(batch, number)

    def _committed(self, batch: _Batch, number: int) -> None:
        """Batch ``number`` committed: its entries are cached and the events held for it
        published."""
        self._cache(batch.entry_rows)
        self._publisher.committed(number)

    def _cache(self, entry_rows: list[dict[str, Any]]) -> None:
        """Committed entry rows go into the transcript cache as a read would return them, so
        the next turn's lock need not read them back."""
        if self._transcripts is not None and entry_rows:
            written = [entry_from_row(SimpleNamespace(**row)) for row in entry_rows]
            self._transcripts.append_committed(self.session_id, written)

    def _requeue(self, batch: _Batch, number: int) -> None:
        self._publisher.not_committed(number, retry=self._taken + 1)
        self._entries = batch.entry_rows + self._entries
        self._events = batch.events + self._events
        self._ledger = batch.ledger + self._ledger
        self._statements = batch.statements + self._statements
        self._session_values = {**batch.session_values, **self._session_values}


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("A background flush failed (its rows stay queued): %r", exc)


#: A statement and its parameters (``None``: its values are in the statement).
_Statement = tuple[sa.Executable, dict[str, Any] | None]
# Built once, so their cache keys are computed once: run with each batch's rows.
_INSERT_ENTRIES = entries.insert()
_INSERT_EVENTS = events.insert()
_INSERT_LEDGER = ledger.insert()


@functools.lru_cache(maxsize=256)
def _session_update(keys: tuple[str, ...], release: bool) -> sa.Update:
    """The session row's guarded update of the columns ``keys`` (and the lock's release), built
    once per set of columns: its values are parameters ``v_<column>``, the session and the
    holder ``w_id`` and ``w_run_id``."""
    c = sessions.c
    values: dict[str, Any] = {key: sa.bindparam(f"v_{key}") for key in keys}
    if release:
        values.update(lock_run_id=None, lock_expires_at=None)
    return (
        sessions.update()
        .where(c.id == sa.bindparam("w_id"), c.lock_run_id == sa.bindparam("w_run_id"))
        .values(**values)
    )


@dataclass(slots=True)
class _Batch:
    entry_rows: list[dict[str, Any]]
    events: list[dict[str, Any]]
    ledger: list[dict[str, Any]]
    statements: list[_Statement]
    session_values: dict[str, Any]

    def execute(self, conn: sa.Connection, session_update: _Statement, session_id: str) -> None:
        if execute(conn, *session_update) != 1:
            raise SessionBusy(
                f"This run no longer holds session {session_id!r}'s lock (its lease expired "
                "and another run took it); nothing was written.",
                context={"session_id": session_id},
            )
        for statement in self.statements:
            execute(conn, *statement)
        if self.entry_rows:
            execute(conn, _INSERT_ENTRIES, self.entry_rows)
        if self.events:
            execute(conn, _INSERT_EVENTS, self.events)
        if self.ledger:
            execute(conn, _INSERT_LEDGER, self.ledger)


def _entry_row(session_id: str, entry: Entry) -> dict[str, Any]:
    # Model and tool output may hold a NUL or a lone surrogate: stored as U+FFFD (storable).
    usage = entry.usage
    return {
        "session_id": session_id,
        "seq": entry.seq,
        "role": entry.role,
        "kind": entry.kind,
        "content": storable(entry.content),
        "parts": storable([p.model_dump() for p in entry.parts]),
        "harness": entry.harness,
        "model": entry.model,
        "provider": entry.provider,
        "run_id": entry.run_id,
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": usage.output_tokens if usage else None,
        "cost_usd": usage.cost_usd if usage else None,
        "cost_reason": usage.cost_reason if usage else None,
        "cost_source": usage.cost_source if usage else None,
        "latency_ms": entry.latency_ms,
        "status": entry.status,
        "metadata": storable(entry.metadata),
        "created_at": entry.created_at,
    }
