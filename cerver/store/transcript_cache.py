"""The transcripts this process has read, so taking a turn's lock reads only what is new.

Transcript entries are append-only with a gapless ``seq`` per session, and a session id is
never reused, so a prefix read once stays true for good: the next turn on the session only
needs the rows numbered after it, not the whole conversation. The rows a turn of this process
writes are added once committed (:meth:`TranscriptCache.append_committed`), so the next turn's
lock usually reads none. Entries written by another gateway process are picked up by reading,
because the lock transaction compares the cached prefix with the row's ``next_seq``.

Bounded (least recently used sessions are dropped), so memory stays flat however many
sessions a gateway serves; a dropped session is simply read whole once more.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from cerver.types import Entry

__all__ = ["TranscriptCache"]


class TranscriptCache:
    def __init__(self, *, max_sessions: int = 1024, max_entries: int = 200_000) -> None:
        self._max_sessions = max_sessions
        self._max_entries = max_entries
        self._entries = 0
        self._cached: OrderedDict[str, tuple[Entry, ...]] = OrderedDict()
        # Store transactions run on worker threads; two sessions' locks may be taken at once.
        self._guard = threading.Lock()

    def last_seq(self, session_id: str) -> int:
        """The ``seq`` of the last cached entry of ``session_id`` (0 when none is cached)."""
        with self._guard:
            return _last_seq(self._cached.get(session_id, ()))

    def extend(self, session_id: str, newer: Sequence[Entry]) -> list[Entry]:
        """The whole transcript: the cached prefix followed by ``newer`` (rows after it).

        Returns a new list, so a caller appending to it never changes the cache.
        """
        with self._guard:
            whole = self._cached.pop(session_id, ()) + tuple(newer)
            self._keep(session_id, whole, len(newer))
        return list(whole)

    def append_committed(self, session_id: str, written: Sequence[Entry]) -> None:
        """Add entries this process has just committed, so that the next turn's lock need not
        read them back. Kept only when they directly follow the cached prefix (nothing cached
        counts as a prefix ending at 0); otherwise the next lock reads them, as it would have.
        """
        if not written:
            return
        with self._guard:
            cached = self._cached.get(session_id, ())
            if _last_seq(cached) != (written[0].seq or 0) - 1:
                return
            self._cached.pop(session_id, None)
            self._keep(session_id, cached + tuple(written), len(written))

    def _keep(self, session_id: str, whole: tuple[Entry, ...], added: int) -> None:
        """Cache ``whole`` as the most recently used (``added`` of its entries are new), then
        drop the least recently used sessions past the bounds. Called under the guard."""
        self._entries += added
        if whole:
            self._cached[session_id] = whole
        while self._cached and (
            len(self._cached) > self._max_sessions or self._entries > self._max_entries
        ):
            _, dropped = self._cached.popitem(last=False)
            self._entries -= len(dropped)

    def forget(self, session_id: str) -> None:
        """Drop ``session_id`` (its session was deleted)."""
        with self._guard:
            self._entries -= len(self._cached.pop(session_id, ()))


def _last_seq(cached: tuple[Entry, ...]) -> int:
    return (cached[-1].seq or 0) if cached else 0
