"""Server-sent events as pre-encoded bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from starlette.responses import StreamingResponse

from cerver.store import StoredEvent

__all__ = ["encode_event", "sse_response", "wants_stream"]


def encode_event(event: StoredEvent) -> bytes:
    if event.id is None:
        return f"event: {event.event}\ndata: {event.data}\n\n".encode()
    return f"id: {event.id}\nevent: {event.event}\ndata: {event.data}\n\n".encode()


def wants_stream(accept: str | None, stream_flag: bool) -> bool:
    return stream_flag or bool(accept and "text/event-stream" in accept)


def sse_response(body: AsyncIterator[bytes], headers: Mapping[str, str]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers},
    )
