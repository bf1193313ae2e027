"""How events are laid out in the ``events`` table: one row per event, except series of deltas.

A streamed turn emits a ``text_delta`` event per chunk of model text, 50 a second or more per
stream; at one row each, writing them took 30 % of the gateway's CPU with 150 streams
(``bench/streams.py``). So consecutive events named in :data:`SERIES_EVENTS`, queued
for the same write, are stored as one *series row*: ``id`` is the first event's id, ``last_id``
the last one's, ``data`` each event's data in id order joined by ``"\\n"`` (an event's data is
compact JSON, which never holds a raw newline). Every other row is one event, ``last_id``
``NULL``. Each event keeps its own id, so ``Last-Event-ID`` can point into a series, and a reader
gets the events back one by one (:func:`events_of`).

So what is persisted per delta is nothing more than its text in its series' row, written with
the session's next flush (at most about a second later, or with the turn's end); messages,
tool calls and results are still rows of their own, written as they complete.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cerver.store.records import StoredEvent
from cerver.store.schema import utcnow

__all__ = ["SERIES_EVENTS", "events_of", "queue_event", "seal"]

SERIES_EVENTS = frozenset({"text_delta"})
"""Events stored as series: the ones that come many a second and matter as a sequence."""

_SEPARATOR = "\n"


def queue_event(rows: list[dict[str, Any]], event: StoredEvent) -> None:
    """Queue ``event`` for the log: append its row to ``rows``, or extend the last row when
    both belong in one series.

    A series being built holds its data as a list until :func:`seal`; rows put back after a
    failed write are sealed, so a series never spans two writes' worth of events.
    """
    if event.event in SERIES_EVENTS:
        last = rows[-1] if rows else None
        if last is not None and last["event"] == event.event and type(last["data"]) is list:
            last["data"].append(event.data)
            last["last_id"] = event.id
            return
        data: str | list[str] = [event.data]
    else:
        data = event.data
    rows.append(
        {
            "session_id": event.session_id,
            "id": event.id,
            "last_id": None,
            "event": event.event,
            "data": data,
            "created_at": utcnow(),
        }
    )


def seal(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The queued ``rows`` ready to insert (each series' data joined); returns ``rows``."""
    for row in rows:
        if type(row["data"]) is list:
            row["data"] = _SEPARATOR.join(row["data"])
    return rows


def events_of(rows: Iterable[Any], *, after_id: int = 0) -> list[StoredEvent]:
    """The events the ``events`` rows hold, in order, skipping ids up to ``after_id`` (a
    series row may begin before it)."""
    events: list[StoredEvent] = []
    for row in rows:
        if row.last_id is None:
            if row.id > after_id:
                events.append(StoredEvent(row.session_id, row.id, row.event, row.data))
            continue
        ids = range(row.id, row.last_id + 1)
        for event_id, data in zip(ids, row.data.split(_SEPARATOR), strict=True):
            if event_id > after_id:
                events.append(StoredEvent(row.session_id, event_id, row.event, data))
    return events
