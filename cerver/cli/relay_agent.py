"""Running ``cerver relay``: the relay server, plus (optionally) registering it with a gateway
and sending heartbeats so the gateway keeps routing to it.

The server itself is :func:`compute.relay_server.create_relay_app`; this module adds the
process lifecycle and the gateway side of the handshake, which needs the Cerver client.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from cerver.client import AsyncClient
from cerver.errors import CerverError
from compute.relay_server import create_relay_app

__all__ = ["Announce", "heartbeat_loop", "serve_relay"]

log = logging.getLogger("cerver.relay")


@dataclass(frozen=True, slots=True)
class Announce:
    """Register with ``gateway_url`` as ``label``, reachable at ``public_url``."""

    gateway_url: str
    api_key: str
    label: str
    public_url: str
    every_s: float = 30.0
    compute_id: str | None = None


async def heartbeat_loop(announce: Announce, token: str) -> None:
    """Register (unless ``compute_id`` is given), then heartbeat every ``every_s`` seconds.

    Gateway errors are logged and retried on the next beat; the relay keeps serving.
    """
    async with AsyncClient(announce.gateway_url, announce.api_key) as client:
        compute_id = announce.compute_id
        while True:
            try:
                if compute_id is None:
                    record = await client.register_compute(
                        announce.label, announce.public_url, token
                    )
                    compute_id = record["compute_id"]
                    log.warning("Registered with %s as %s", announce.gateway_url, compute_id)
                else:
                    await client.heartbeat(compute_id)
            except (CerverError, OSError) as exc:
                log.warning("Gateway %s: %s", announce.gateway_url, exc)
            await asyncio.sleep(announce.every_s)


def serve_relay(
    *,
    host: str,
    port: int,
    token: str,
    root: Path | None = None,
    announce: Announce | None = None,
    log_level: str = "warning",
) -> None:
    """Serve the relay until interrupted (SIGINT/SIGTERM)."""
    app = create_relay_app(token, root)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level))

    async def main() -> None:
        beats = asyncio.create_task(heartbeat_loop(announce, token)) if announce else None
        try:
            await server.serve()
        finally:
            if beats is not None:
                beats.cancel()

    asyncio.run(main())
