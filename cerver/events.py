"""In-process fan-out of live session events to SSE subscribers.

The event log in the store is the source of truth (and the way events cross processes);
the hub only saves live subscribers in this process a database round trip.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from cerver.store.records import StoredEvent

__all__ = ["EventHub"]


class EventHub:
    def __init__(self, max_queue: int = 10_000) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[StoredEvent]]] = defaultdict(set)
        self._max_queue = max_queue

    def publish(self, event: StoredEvent) -> None:
        for queue in self._subscribers.get(event.session_id, ()):
            if queue.full():
                # A stalled reader loses live delivery, not data: it re-reads the log.
                queue.get_nowait()
            queue.put_nowait(event)

    @contextmanager
    def subscribe(self, session_id: str) -> Iterator[asyncio.Queue[StoredEvent]]:
        queue: asyncio.Queue[StoredEvent] = asyncio.Queue(self._max_queue)
        self._subscribers[session_id].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[session_id].discard(queue)
            if not self._subscribers[session_id]:
                del self._subscribers[session_id]
