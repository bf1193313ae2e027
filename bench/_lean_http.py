"""A lean HTTP/1.1 client for load generation: one keep-alive connection, nothing else.

The load generator shares the machine with the server it measures. httpx spends about a
millisecond of CPU per request on a closed loop (pools, models, hooks), which on a 2-core
machine takes a good part of the core a second gateway worker would use. This client writes a
request's bytes and reads the status, the headers and a ``Content-Length`` or chunked body:
what a benchmark needs to know a request succeeded (or when each piece of a stream arrived),
at a fraction of the cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import orjson

__all__ = ["LeanConnection", "ResponseError"]


class ResponseError(RuntimeError):
    """The server answered with an error status; the message holds the start of its body."""


class LeanConnection:
    """One keep-alive connection to ``url`` (``http://host:port``), opened on first use.

    Requests on one connection go one after the other (HTTP/1.1 without pipelining).
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._host_header = f"Host: {parts.netloc}\r\nConnection: keep-alive\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, json: object = None, headers: dict[str, str] | None = None
    ) -> bytes:
        """Send one request (``json`` as its body, if any) and return its 2xx answer's body.

        Raises:
            ResponseError: the status was not 2xx.
        """
        return b"".join([piece async for piece in self.stream(method, path, json, headers)])

    async def stream(
        self, method: str, path: str, json: object = None, headers: dict[str, str] | None = None
    ) -> AsyncIterator[bytes]:
        """Send one request and yield its 2xx answer's body in pieces, as they arrive.

        Raises:
            ResponseError: the status was not 2xx.
        """
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        reader = self._reader
        assert reader is not None
        body = b"" if json is None else orjson.dumps(json)
        head = f"{method} {path} HTTP/1.1\r\n{self._host_header}Content-Length: {len(body)}\r\n"
        if json is not None:
            head += "Content-Type: application/json\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self._writer.write(head.encode() + b"\r\n" + body)
        status, length = _parse_head(await reader.readuntil(b"\r\n\r\n"))
        pieces = _chunks(reader) if length is None else _counted(reader, length)
        if not 200 <= status < 300:
            answer = b"".join([piece async for piece in pieces])
            raise ResponseError(f"{method} {path}: {status} {answer[:300]!r}")
        async for piece in pieces:
            yield piece

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = self._reader = None


def _parse_head(head: bytes) -> tuple[int, int | None]:
    """The status and the body's length (``None``: chunked) of a response head."""
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    length: int | None = 0
    for line in header_lines:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value.lower():
            length = None
    return int(status_line.split(" ", 2)[1]), length


async def _counted(reader: asyncio.StreamReader, length: int) -> AsyncIterator[bytes]:
    while length > 0:
        piece = await reader.read(min(length, 65536))
        if not piece:
            raise asyncio.IncompleteReadError(b"", length)
        length -= len(piece)
        yield piece


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are sent here
            return
        yield await reader.readexactly(size)
        await reader.readexactly(2)
