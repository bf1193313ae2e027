"""The per-session turn lock: one writer per session, across gateway processes.

The lock is a lease on the session row (``SessionStore.try_lock``). Waiters in this process
are woken as soon as a holder in this process releases, and poll with backoff for holders in
other processes. The holder renews the lease in the background until it releases; the release
is written in the same transaction as the holder's last rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import sqlalchemy as sa

from cerver.errors import SessionBusy
from cerver.events import EventHub
from cerver.store import SessionRecord, SessionWriter, Store
from cerver.types import Entry

__all__ = ["SessionLocks"]

log = logging.getLogger("cerver.locks")


class SessionLocks:
    def __init__(self, store: Store, hub: EventHub, *, lease_seconds: float = 30.0) -> None:
        self._store = store
        self._hub = hub
        self.lease_seconds = lease_seconds
        self._released: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    @asynccontextmanager
    async def hold(
        self,
        session_id: str,
        run_id: str,
        *,
        wait: bool = True,
        timeout: float = 600.0,
        with_transcript: bool = False,
        opening: Callable[[SessionWriter], None] | None = None,
    ) -> AsyncIterator[SessionWriter]:
        """Hold the session's turn lock and yield the :class:`SessionWriter` for ``run_id``.

        The writer's ``session`` is the row as the lock found it, and its ``transcript`` the
        entries at that moment when ``with_transcript`` is set (read in the lock's own
        transaction). On exit everything the writer queued is written and the lock released,
        in one transaction, even on cancellation.

        ``opening`` is given the new writer inside the lock's transaction, on the store's
        worker thread: what it queues (:meth:`SessionWriter.queue`, ``defer``,
        ``update_session``) is committed with the lock, and what it raises (a refusal: the
        session closed meanwhile) rolls the lock back too and propagates. It must not
        ``emit`` (no event loop on that thread): emit its events once the lock is held.

        Raises:
            SessionBusy: the session is busy and ``wait`` is false, or it stayed busy for
                ``timeout`` seconds.
        """
        opened: list[SessionWriter] = []

        def open_in_lock(conn: sa.Connection, session: SessionRecord, entries: list[Entry]) -> None:
            assert opening is not None
            writer = self._writer(session, run_id, entries)
            opening(writer)
            writer.write_queued_in(conn)
            opened[:] = [writer]

        session, transcript = await self._acquire(
            session_id,
            run_id,
            wait=wait,
            timeout=timeout,
            with_transcript=with_transcript,
            then=open_in_lock if opening is not None else None,
        )
        if opened:
            writer = opened[0]
            writer.lock_committed()
        else:
            writer = self._writer(session, run_id, transcript)
        holder = asyncio.current_task()
        assert holder is not None
        renewer = asyncio.create_task(self._renew(session_id, run_id, holder))
        try:
            yield writer
        finally:
            renewer.cancel()
            try:
                await asyncio.shield(writer.release())
            finally:
                self._released.pop(session_id, asyncio.Event()).set()

    def _writer(
        self, session: SessionRecord, run_id: str, transcript: list[Entry]
    ) -> SessionWriter:
        return SessionWriter(
            self._store.db,
            self._hub,
            session,
            run_id,
            transcript=transcript,
            transcripts=self._store.sessions.transcript_cache,
        )

    async def _acquire(
        self,
        session_id: str,
        run_id: str,
        *,
        wait: bool,
        timeout: float,
        with_transcript: bool,
        then: Callable[[sa.Connection, SessionRecord, list[Entry]], None] | None,
    ) -> tuple[SessionRecord, list[Entry]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.01
        while True:
            locked = await self._store.sessions.try_lock(
                session_id, run_id, self.lease_seconds, with_transcript=with_transcript, then=then
            )
            if locked is not None:
                return locked
            remaining = deadline - loop.time()
            if not wait or remaining <= 0:
                raise SessionBusy(
                    f"Session {session_id!r} is running another turn. Retry later, or send "
                    '"multitask": "enqueue" to wait for it.',
                    context={"session_id": session_id},
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released[session_id].wait(), min(delay, remaining))
            delay = min(delay * 2, 0.25)

    async def _renew(self, session_id: str, run_id: str, holder: asyncio.Task[object]) -> None:
        """Renew the lease every third of its length until cancelled.

        A failed renewal is retried at the next tick (the lease has two more to spare); a lease
        found taken over cancels the holder, whose writes the writer refuses anyway.
        """
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                held = await self._store.sessions.renew_lock(session_id, run_id, self.lease_seconds)
                await self._store.runs.renew(run_id, self.lease_seconds)
            except Exception:
                log.warning("Could not renew the lock of session %s; retrying.", session_id)
                continue
            if not held:
                log.error("Run %s lost session %s's lock; cancelling it.", run_id, session_id)
                holder.cancel()
                return
