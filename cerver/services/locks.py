"""The per-session turn lock: one writer per session, across gateway processes.

The lock is a lease on the session row (see ``SessionStore.try_lock``); waiters in this process
are woken as soon as a holder in this process releases, and poll with backoff for holders in
other processes. The holder renews the lease in the background until it releases.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cerver.errors import SessionBusy
from cerver.events import EventHub
from cerver.store import LockGrant, SessionRecord, SessionWriter, Store

__all__ = ["SessionLocks"]


class SessionLocks:
    def __init__(self, store: Store, hub: EventHub, *, lease_seconds: float = 30.0) -> None:
        self._store = store
        self._hub = hub
        self._lease = lease_seconds
        self._released: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    @asynccontextmanager
    async def hold(
        self, session: SessionRecord, run_id: str, *, wait: bool = True, timeout: float = 600.0
    ) -> AsyncIterator[SessionWriter]:
        """Hold the session's turn lock and yield its :class:`SessionWriter`.

        Raises:
            SessionBusy: the session is busy and ``wait`` is false, or it stayed busy for
                ``timeout`` seconds.
        """
        grant = await self._acquire(session.id, run_id, wait=wait, timeout=timeout)
        writer = SessionWriter(
            self._store.db,
            self._hub,
            session_id=session.id,
            account_id=session.account_id,
            user=session.user,
            grant=grant,
        )
        renewer = asyncio.create_task(self._renew(session.id, run_id))
        try:
            yield writer
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            try:
                await asyncio.shield(writer.flush())
            finally:
                await asyncio.shield(self._store.sessions.unlock(session.id, run_id))
                self._released[session.id].set()
                self._released.pop(session.id, None)

    async def _acquire(
        self, session_id: str, run_id: str, *, wait: bool, timeout: float
    ) -> LockGrant:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.01
        while True:
            grant = await self._store.sessions.try_lock(session_id, run_id, self._lease)
            if grant is not None:
                return grant
            remaining = deadline - loop.time()
            if not wait or remaining <= 0:
                raise SessionBusy(
                    f"Session {session_id!r} is running another turn. Retry later, or send "
                    '"multitask": "enqueue" to wait for it.',
                    context={"session_id": session_id},
                )
            released = self._released[session_id]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(released.wait(), min(delay, remaining))
            delay = min(delay * 2, 0.25)

    async def _renew(self, session_id: str, run_id: str) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            await self._store.sessions.renew_lock(session_id, run_id, self._lease)
            await self._store.runs.renew(run_id, self._lease)
