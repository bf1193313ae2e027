"""Delivery on a reply's schedule: delays, stalls, slow chunks and failures mid-body.

:class:`PacedResponse` is a Starlette response. Without pacing it sends its chunks at once;
with pacing it watches for the client's disconnect so that no wait outlives its client.
Dropping a connection mid-body has no ASGI message: the response raises
:class:`UpstreamDisconnect` after the last chunk it means to send, and the server closes the
connection (uvicorn does so for any exception once the headers are out). The log filter
installed by :func:`quiet_deliberate_disconnects` keeps these scripted drops out of the
server's error log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import anyio
from anyio import CancelScope
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cerver.testing.mock_upstream.script import Reply

__all__ = ["PacedResponse", "UpstreamDisconnect", "quiet_deliberate_disconnects"]


class UpstreamDisconnect(Exception):
    """A scripted mid-body failure: the connection is dropped on purpose."""


class PacedResponse(Response):
    """Send ``chunks`` as one HTTP response, following ``reply``'s timing and failure.

    Args:
        chunks: the body, pre-encoded (one SSE event per chunk when streaming).
        status_code: the HTTP status.
        headers: extra response headers.
        media_type: the ``content-type``.
        reply: the timing (``delay_ms``, ``stall_ms``, ``chunk_delay_ms``) and failure
            (``fail_after_chunks``, ``fail_with``); ``None`` sends everything at once.
        failure_chunk: what ``fail_with="error_event"`` sends in place of the rest; when
            ``None`` the connection is dropped instead.
    """

    def __init__(
        self,
        chunks: Sequence[bytes],
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str = "application/json",
        reply: Reply | None = None,
        failure_chunk: bytes | None = None,
    ) -> None:
        # Like StreamingResponse: no ``body`` attribute, so no content-length header.
        self.chunks = chunks
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.reply = reply
        self.failure_chunk = failure_chunk
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.reply is None or not self.reply.paced:
            await self._start(send)
            for chunk in self.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        drop = False
        async with anyio.create_task_group() as group:
            group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope)
            drop = await self._deliver(self.reply, send)
            group.cancel_scope.cancel()
        if drop:
            raise UpstreamDisconnect(f"dropped after {self.reply.fail_after_chunks} chunk(s)")

    async def _start(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )

    async def _deliver(self, reply: Reply, send: Send) -> bool:
        """Send what ``reply`` allows; True when the connection must then be dropped."""
        await _sleep_ms(reply.delay_ms)
        await self._start(send)
        limit = reply.fail_after_chunks
        failing = limit is not None and limit < len(self.chunks)
        for index, chunk in enumerate(self.chunks[:limit] if failing else self.chunks):
            if index:
                await _sleep_ms(reply.chunk_delay_ms)
            if index == reply.stall_after_chunks:
                await _sleep_ms(reply.stall_ms)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if failing:
            if reply.fail_with == "disconnect" or self.failure_chunk is None:
                return True
            await _sleep_ms(reply.chunk_delay_ms)
            await send(
                {"type": "http.response.body", "body": self.failure_chunk, "more_body": True}
            )
        await send({"type": "http.response.body", "body": b""})
        return False


async def _sleep_ms(milliseconds: float | None) -> None:
    if milliseconds:
        await anyio.sleep(milliseconds / 1000)


async def _cancel_on_disconnect(receive: Receive, scope: CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


class _SkipDeliberateDisconnects(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], UpstreamDisconnect))


def quiet_deliberate_disconnects() -> None:
    """Keep scripted drops out of uvicorn's error log (idempotent; other errors still log)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _SkipDeliberateDisconnects) for f in logger.filters):
        logger.addFilter(_SkipDeliberateDisconnects())
