"""Reading a server-sent event stream: its lines in, its events out (the HTML standard's
``text/event-stream`` parsing, the fields Cerver and the providers use).

One decoder serves the gateway's own client and the SDK harnesses that read a provider's raw
stream, so both read the same way: ``event``, ``data`` (several lines joined by ``\\n``) and
``id`` fields; comment lines (``:``) and other fields ignored; an event is dispatched at its
blank line, and one without data is dropped.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import NamedTuple

__all__ = ["SentEvent", "read_events"]


class SentEvent(NamedTuple):
    """One event as sent: its name (``message`` when unnamed), its raw data and its id."""

    event: str
    data: str
    id: str | None


async def read_events(lines: AsyncIterable[str]) -> AsyncIterator[SentEvent]:
    """The events of a stream's ``lines`` (line breaks already removed), in order."""
    event, data, event_id = "message", [], None
    async for line in lines:
        if not line:
            if data:
                yield SentEvent(event, "\n".join(data), event_id)
            event, data, event_id = "message", [], None
            continue
        name, _, value = line.partition(":")
        if not name:  # a comment
            continue
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            event_id = value
