"""``cerver serve``'s server: uvicorn, with a drain before it shuts down.

On the first SIGTERM (or Ctrl-C) the gateway starts draining at once: ``/readyz`` answers 503
so a load balancer sends new requests elsewhere, new turns and fan-outs are refused (503
``shutting_down``), and the running ones get ``shutdown_grace_seconds`` to finish. What is
still running then is stopped and recorded ``interrupted`` (partial output kept). Only then
does uvicorn shut down, allowing open connections (a live ``/events`` tail) a short
:data:`CONNECTIONS_CLOSE_S` before cutting them. The process exits within the grace plus a
few seconds. A second signal skips the rest of the drain (uvicorn's own handling).
"""

from __future__ import annotations

import asyncio
import signal
import socket
from types import FrameType
from typing import Final

import uvicorn

from cerver.gateway import Gateway

__all__ = ["CONNECTIONS_CLOSE_S", "DrainingServer"]

CONNECTIONS_CLOSE_S: Final = 1.5
"""After the drain, how long open connections may take to finish before they are cut."""


class DrainingServer(uvicorn.Server):
    """A uvicorn server that drains ``gateway`` (for ``grace`` seconds) before shutting down.

    Build its config with ``timeout_graceful_shutdown=CONNECTIONS_CLOSE_S``.
    """

    def __init__(self, config: uvicorn.Config, gateway: Gateway, grace: float) -> None:
        super().__init__(config)
        self.gateway = gateway
        self.grace = grace
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        first = self._loop is not None and self._draining is None and not self.should_exit
        if not first or sig not in (signal.SIGTERM, signal.SIGINT):
            super().handle_exit(sig, frame)
            return
        assert self._loop is not None
        self._captured_signals.append(sig)
        # Readiness turns 503 now, before the loop even runs the drain.
        self.gateway.runs.draining = True
        self._loop.call_soon_threadsafe(self._begin_drain)

    def _begin_drain(self) -> None:
        self._draining = asyncio.ensure_future(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await self.gateway.drain(self.grace)
        finally:
            self.should_exit = True
