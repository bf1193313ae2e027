"""A lock holder's events published in id order, some only once their rows are committed.

Events go to live subscribers as they are emitted, before they are logged (a stream of deltas
never waits on the database). An event that tells of a row, a message with its ``seq``, waits
instead for the commit of the batch that writes that row, so no subscriber is ever told of a
``seq`` the store may not hold; every event emitted after it waits behind it, so subscribers
still see ids in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cerver.store.records import StoredEvent

if TYPE_CHECKING:
    from cerver.events import EventHub

__all__ = ["Listener", "Publisher"]

#: The emitter's own listener of an event, called with the hub's subscribers.
Listener = Callable[[StoredEvent], None]


@dataclass(slots=True)
class _Held:
    """An event published once batch ``needs`` has committed (and every event before it)."""

    event: StoredEvent
    to: Listener | None
    needs: int


class Publisher:
    """Publishes one writer's events; batches are numbered 1, 2, … in the order they are
    taken for writing (and committed: a writer's writes are serialized)."""

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        self._held: list[_Held] = []

    def publish(self, event: StoredEvent, to: Listener | None, *, needs: int = 0) -> None:
        """Publish ``event`` now, or once batch ``needs`` has committed (0: needs no commit,
        but waits behind an event that does)."""
        if needs or self._held:
            self._held.append(_Held(event, to, needs))
        else:
            self._send(event, to)

    def committed(self, batch: int) -> None:
        """Batch ``batch`` committed: publish the held events it allows, in order."""
        done = 0
        for held in self._held:
            if held.needs > batch:
                break
            self._send(held.event, held.to)
            done += 1
        del self._held[:done]

    def not_committed(self, batch: int, retry: int) -> None:
        """Batch ``batch`` failed and its rows were put back: its events wait for ``retry``."""
        for held in self._held:
            if held.needs == batch:
                held.needs = retry

    def abandon(self) -> None:
        """The rows still held for were never written (the release failed): drop their events,
        and publish those that only waited behind them."""
        for held in self._held:
            if held.needs == 0:
                self._send(held.event, held.to)
        self._held.clear()

    def _send(self, event: StoredEvent, to: Listener | None) -> None:
        self._hub.publish(event)
        if to is not None:
            to(event)
