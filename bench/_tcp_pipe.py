"""The floor of any Python relay on this machine: a TCP pipe that parses nothing.

Each client connection gets its own connection to the upstream; every piece read on one side
is written to the other, by two ``asyncio.Protocol``s on uvloop (when installed): per streamed
delta, one read from the upstream and one write to the client, and no Python beyond the two
callbacks. ``bench.streams`` measures its CPU per delta beside Cerver's and the bare relay's:
what the kernel and the event loop take before any HTTP, JSON or storage does.

    python -m bench._tcp_pipe UPSTREAM_URL PORT
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast
from urllib.parse import urlsplit


class _Side(asyncio.Protocol):
    """One end of the pipe: what it receives goes to ``peer``; when it closes, so does the
    peer. Bytes that arrive before the upstream is connected wait in ``pending``."""

    def __init__(self) -> None:
        self.transport: asyncio.WriteTransport | None = None
        self.peer: _Side | None = None
        self.pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transports do not subclass asyncio's, but a stream's can be written.
        self.transport = cast("asyncio.WriteTransport", transport)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
        else:
            self.pending.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


class _Client(_Side):
    """The client's end: it opens the upstream's end as it connects."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__()
        self._upstream = upstream

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, upstream = await loop.create_connection(_Side, *self._upstream)
        upstream.peer, self.peer = self, upstream
        if self.pending:
            assert upstream.transport is not None
            upstream.transport.write(b"".join(self.pending))
            self.pending.clear()


async def serve(upstream_url: str, port: int) -> None:
    parts = urlsplit(upstream_url)
    upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Client(upstream), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    try:
        import uvloop
    except ImportError:  # the gateway runs on it where it builds; so does the floor
        runner = asyncio.run
    else:
        runner = uvloop.run
    runner(serve(sys.argv[1], int(sys.argv[2])))


if __name__ == "__main__":
    main()
