"""Reading a session's event log: replay from the store, then follow live.

The log is written in batches (:class:`~cerver.store.writer.SessionWriter`) while live
subscribers of the :class:`~cerver.events.EventHub` get each event at once, so a reader that
wants everything in order replays the log past what it has, then takes live events while they
are contiguous, and goes back to the log on any gap (an event another process wrote, or one a
full subscriber queue dropped). Event ids are the session's own sequence, so "what it has" is
one number: the last id delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import orjson

from cerver.errors import NotFound
from cerver.events import EventHub
from cerver.store import Store, StoredEvent

__all__ = ["IDLE", "run_events", "tail"]

IDLE = None
"""Yielded by :func:`tail` when nothing happened for ``idle_seconds`` (time for a keep-alive)."""

_PAGE = 1000


async def tail(
    store: Store,
    hub: EventHub,
    session_id: str,
    *,
    after: int = 0,
    follow: bool = True,
    idle_seconds: float = 1.0,
) -> AsyncIterator[StoredEvent | None]:
    """The session's events with ids above ``after``, in id order, each exactly once.

    With ``follow=False`` it ends after the replay; otherwise it goes on until the consumer
    stops, yielding :data:`IDLE` after every ``idle_seconds`` without news (the log is also
    re-read then, for events written by other processes).
    """
    last = after
    with hub.subscribe(session_id) as live:
        while True:
            while page := await store.transcript.events(session_id, after_id=last, limit=_PAGE):
                for event in page:
                    last = event.id or last
                    yield event
                if len(page) < _PAGE:
                    break
            if not follow:
                return
            try:
                event = await asyncio.wait_for(live.get(), idle_seconds)
            except TimeoutError:
                yield IDLE
                continue
            while event is not None:
                if event.id is not None and event.id == last + 1:
                    last = event.id
                    yield event
                elif event.id is not None and event.id > last + 1:
                    break  # a gap: the log has what is missing
                event = live.get_nowait() if not live.empty() else None


async def run_events(
    store: Store,
    hub: EventHub,
    session_id: str,
    run_id: str,
    *,
    queued: Callable[[], bool] = lambda: False,
    idle_seconds: float = 1.0,
) -> AsyncIterator[StoredEvent]:
    """One turn's events, from its ``turn.started`` through its ``turn.completed``.

    What is logged is replayed, then the rest is followed live, so a reader attaching at any
    moment (before the turn started, mid-stream, after it ended) gets the same sequence. The
    stream also ends, once the log has nothing more, for a run that ended without a
    ``turn.completed`` (its lock was taken over) and for one that never started: not in the
    store and not ``queued()`` (refused while it waited for its session).
    """
    started, last = await store.transcript.run_start(session_id, run_id)
    after = started - 1 if started is not None else last
    inside = False
    ended = False
    async for event in tail(store, hub, session_id, after=after, idle_seconds=idle_seconds):
        if event is IDLE:
            if ended:
                return
            ended = await _has_ended(store, session_id, run_id, queued)
            continue
        if event.event in ("turn.started", "turn.completed"):
            ours = orjson.loads(event.data).get("run_id") == run_id
            if event.event == "turn.started":
                inside = inside or ours
            elif inside and ours:
                yield event
                return
        if inside:
            yield event


async def _has_ended(
    store: Store, session_id: str, run_id: str, queued: Callable[[], bool]
) -> bool:
    try:
        run = await store.runs.get(session_id, run_id)
    except NotFound:
        return not queued()  # waiting behind another turn, or refused before it began
    return run.status != "running"
