"""Runs as a resource, and this process's part in ending them.

Every gateway process has one :class:`RunService`. It knows the turns and fan-outs running in
*this* process, so a cancel that reaches this replica acts at once, and from
:meth:`RunService.start` until :meth:`RunService.aclose` a background task:

1. every ``cancel_poll_seconds``, reads the cancel requests other replicas stored for the
   work running here (``runs`` / ``fanouts.cancel_requested_at``) and acts on them;
2. every third of a lease, ends the runs and fan-outs whose lease ran out, as
   ``interrupted``: their process died. Whichever replica looks first does it (the store's
   statements are conditional); the sessions are freed and their event logs get the run's
   terminal event (:func:`cerver.store.runs.interrupt_run`).

:meth:`RunService.drain` is the first half of a graceful shutdown: new work is refused, the
running work gets a grace period, then what is left is stopped and recorded ``interrupted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Literal, Protocol

from cerver.errors import NotFound, ShuttingDown
from cerver.events import EventHub
from cerver.store import RunRecord, Store
from cerver.store.schema import utcnow

__all__ = ["CancelReason", "Cancellable", "RunService"]

log = logging.getLogger("cerver.runs")

CancelReason = Literal["cancelled", "interrupted"]
"""Why work is stopped: ``cancelled`` (someone asked) or ``interrupted`` (a shutdown)."""

_STOP_WAIT_S = 2.0
_GRANT_RETENTION = timedelta(days=1)
"""How long stopped work may take to record itself (one transaction, a killed process)."""


class Cancellable(Protocol):
    """A turn or fan-out running in this process (``TurnHandle``, ``FanoutHandle``)."""

    @property
    def session_id(self) -> str: ...

    def cancel(self, reason: CancelReason) -> None:
        """Stop the work; it records itself with status ``reason``. Idempotent."""

    async def wait(self) -> None:
        """Return once the work has ended and recorded itself (never raises)."""


class RunService:
    """Lists, reads and cancels runs; reaps the runs of dead processes (see module doc).

    Args:
        store: the shared store.
        hub: this process's live event hub (reaped runs' terminal events are published).
        lease_seconds: the run lease; expired runs are looked for every third of it.
        cancel_poll_seconds: how often cancel requests from other replicas are read.
        cancel_wait_seconds: how long ``cancel`` waits for the run to end before answering.
    """

    def __init__(
        self,
        store: Store,
        hub: EventHub,
        *,
        lease_seconds: float = 30.0,
        cancel_poll_seconds: float = 1.0,
        cancel_wait_seconds: float = 10.0,
    ) -> None:
        self._store = store
        self._hub = hub
        self._lease_seconds = lease_seconds
        self._poll_seconds = max(0.05, min(cancel_poll_seconds, lease_seconds / 3))
        self._cancel_wait = cancel_wait_seconds
        self._turns: dict[str, Cancellable] = {}
        self._fanouts: dict[str, Cancellable] = {}
        self._task: asyncio.Task[None] | None = None
        #: True once :meth:`drain` began: no new turns or fan-outs, ``/readyz`` answers 503.
        self.draining = False

    # -- the work of this process --------------------------------------------------------

    def ensure_accepting(self) -> None:
        """Raises ShuttingDown once this process is draining."""
        if self.draining:
            raise ShuttingDown(
                "This gateway process is shutting down and starts no new turns; retry the "
                "request (another replica, or this one restarted, will take it).",
            )

    def track_turn(self, run_id: str, work: Cancellable) -> None:
        self._turns[run_id] = work

    def untrack_turn(self, run_id: str) -> None:
        self._turns.pop(run_id, None)

    def track_fanout(self, fanout_id: str, work: Cancellable) -> None:
        self._fanouts[fanout_id] = work

    def untrack_fanout(self, fanout_id: str) -> None:
        self._fanouts.pop(fanout_id, None)

    # -- the resource --------------------------------------------------------------------

    async def list(
        self, session_id: str, *, status: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        return await self._store.runs.list(session_id, status=status, limit=limit)

    async def get(self, session_id: str, run_id: str) -> RunRecord:
        return await self._store.runs.get(session_id, run_id)

    async def cancel(self, session_id: str, run_id: str) -> RunRecord:
        """Cancel a run of ``session_id`` and return it once it ended (or after
        ``cancel_wait_seconds``, still ``running`` with ``cancel_requested_at`` set).

        A run that already ended is returned as it is. The request is stored, so the replica
        running the turn acts on it within ``cancel_poll_seconds``; here it acts at once.

        Raises:
            NotFound: no such run in this session.
        """
        local = self._turns.get(run_id)
        if local is not None and local.session_id != session_id:
            local = None  # another session's run: the id was guessed, not owned
        flagged = await self._store.runs.request_cancel(session_id, run_id)
        if local is not None:
            local.cancel("cancelled")
            await self._wait(local)
        elif flagged:
            await self._wait_for_row(session_id, run_id)
        try:
            return await self._store.runs.get(session_id, run_id)
        except NotFound:
            if local is None:
                raise
            # A turn still queued behind another one: it ended before it had a run record.
            now = utcnow()
            return RunRecord(
                id=run_id,
                session_id=session_id,
                kind="turn",
                status="cancelled",
                harness=None,
                model=None,
                provider=None,
                error="Cancelled while waiting for the session's running turn.",
                latency_ms=None,
                started_at=now,
                ended_at=now,
                cancel_requested_at=now,
            )

    async def cancel_session(self, session_id: str) -> None:
        """Cancel every turn of ``session_id`` (running here, or on another replica) and wait
        for them to end; ``close`` and ``DELETE`` use this instead of waiting for the turn."""
        flagged = await self._store.runs.request_cancel(session_id)
        local = {i: w for i, w in self._turns.items() if w.session_id == session_id}
        for work in local.values():
            work.cancel("cancelled")
        remote = [run_id for run_id in flagged if run_id not in local]
        await asyncio.gather(
            *(self._wait(w) for w in local.values()),
            *(self._wait_for_row(session_id, r) for r in remote),
        )

    async def cancel_fanout(self, fanout_id: str) -> None:
        """Cancel a fan-out the caller already found to be its own; returns once it ended
        here, or once the request is stored for the replica running it."""
        await self._store.fanouts.request_cancel(fanout_id)
        local = self._fanouts.get(fanout_id)
        if local is not None:
            local.cancel("cancelled")
            await self._wait(local)

    async def _wait(self, work: Cancellable) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(work.wait()), self._cancel_wait)

    async def _wait_for_row(self, session_id: str, run_id: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._cancel_wait
        delay = 0.05
        while loop.time() < deadline:
            if (await self._store.runs.get(session_id, run_id)).status != "running":
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the background task (cancel requests, reaping)."""
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name="cerver-runs")

    async def drain(self, grace: float) -> None:
        """Refuse new work, give running work ``grace`` seconds, then stop it as
        ``interrupted`` and wait (briefly) for it to record itself."""
        self.draining = True
        work = [*self._fanouts.values(), *self._turns.values()]
        if not work:
            return
        log.warning("Draining: %d run(s) get %.3g s to finish.", len(work), grace)
        waiting = [asyncio.ensure_future(w.wait()) for w in work]
        _, pending = await asyncio.wait(waiting, timeout=grace)
        if pending:
            log.warning("Interrupting %d run(s) still running after the grace.", len(pending))
            for item in [*self._fanouts.values(), *self._turns.values()]:
                item.cancel("interrupted")
            await asyncio.wait(pending, timeout=_STOP_WAIT_S)
        for future in waiting:
            future.cancel()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def reap(self) -> int:
        """End the runs and fan-outs whose lease ran out; returns how many were ended."""
        # A run of this process is alive (if late to renew): only other processes' are reaped.
        written = await self._store.runs.reclaim_expired(alive=list(self._turns))
        for event in written:
            self._hub.publish(event)
        runs = sum(1 for e in written if e.event == "turn.completed")
        fanouts = await self._store.fanouts.reclaim_expired()
        # Expired model-proxy grants are refused already; their rows go after a day.
        await self._store.grants.purge(older_than=utcnow() - _GRANT_RETENTION)
        if runs or fanouts:
            log.warning(
                "Marked %d run(s) and %d fan-out(s) of a stopped gateway process as interrupted.",
                runs,
                fanouts,
            )
        return runs + fanouts

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        next_reap = loop.time() + self._lease_seconds / 3
        while True:
            await asyncio.sleep(self._poll_seconds)
            try:
                await self._act_on_cancel_requests()
                if loop.time() >= next_reap:
                    next_reap = loop.time() + self._lease_seconds / 3
                    await self.reap()
            except Exception:  # a transient store error: the next tick tries again
                log.warning("Run supervision failed; retrying.", exc_info=True)

    async def _act_on_cancel_requests(self) -> None:
        if self._turns:
            for request in await self._store.runs.cancel_requests(list(self._turns)):
                if (work := self._turns.get(request.id)) is not None:
                    work.cancel("cancelled")
        if self._fanouts:
            for fanout_id in await self._store.fanouts.cancel_requests(list(self._fanouts)):
                if (work := self._fanouts.get(fanout_id)) is not None:
                    work.cancel("cancelled")
