"""The listening sockets ``cerver serve --workers N`` hands its workers."""

from __future__ import annotations

import asyncio
import socket

import pytest

from cerver.cli.workers import listening_sockets
from tests.e2e.conftest import free_port


async def test_each_worker_socket_serves_connections_without_nagle_delay() -> None:
    """asyncio sets TCP_NODELAY only on connections of a socket created as TCP; without it a
    worker's answers waited for the client's delayed ACK (about 40 ms each)."""
    port = free_port()
    sockets = listening_sockets("127.0.0.1", port, 2)
    accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()
    servers = [
        await asyncio.start_server(lambda _r, w: accepted.put_nowait(w), sock=sock)
        for sock in sockets
    ]
    try:
        _, client = await asyncio.open_connection("127.0.0.1", port)
        served = await asyncio.wait_for(accepted.get(), 5)
        option = served.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert option != 0
        client.close()
        served.close()
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()


def test_a_port_in_use_is_refused() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            listening_sockets("127.0.0.1", taken.getsockname()[1], 2)
