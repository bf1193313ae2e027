"""A relay's uplink to the gateway's model proxy, for the CLI harnesses in its sandboxes.

A relay sandbox has no network (bubblewrap, loopback only). A CLI in it reaches its model the
way a CLI in a local sandbox does (:mod:`compute._proxy_bridge`): through a unix socket bound
read-only into the sandbox. Here the socket belongs to the relay process, which forwards each
request under ``/v2/proxy/`` to the gateway's public URL (the one the gateway gave when it
created the sandbox) and streams the answer back. Nothing else is served: the sandbox reaches
the gateway's model proxy and no other host, and the run's token is still the only key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Final

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

__all__ = ["PROXY_PREFIX", "Uplinks"]

PROXY_PREFIX: Final = "/v2/proxy"
_HOP_BY_HOP: Final = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "host", "content-length", "upgrade"}
)
_START_TIMEOUT_S: Final = 10.0


def _uplink_app(target: str, client: httpx.AsyncClient) -> Starlette:
    base = target.rstrip("/")

    async def forward(request: Request) -> Response:
        path = request.path_params["path"]
        url = httpx.URL(f"{base}{PROXY_PREFIX}/{path}", query=request.url.query.encode())
        if not url.path.startswith(f"{PROXY_PREFIX}/"):  # "..", even percent-encoded
            return Response(
                "cerver relay: only the gateway's model proxy (/v2/proxy/…) is reachable.",
                status_code=404,
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = client.build_request(
            request.method, url, headers=headers, content=await request.body()
        )
        try:
            response = await client.send(upstream, stream=True)
        except httpx.TransportError as exc:
            return Response(
                f"cerver relay: the gateway's model proxy at {base} is unreachable: {exc!r}",
                status_code=502,
            )
        kept = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
        return StreamingResponse(
            _body(response),
            status_code=response.status_code,
            headers=kept,
            background=BackgroundTask(response.aclose),
        )

    route = Route(f"{PROXY_PREFIX}/{{path:path}}", forward, methods=["GET", "POST"])
    return Starlette(routes=[route])


async def _body(response: httpx.Response) -> AsyncIterator[bytes]:
    with contextlib.suppress(httpx.TransportError):
        async for chunk in response.aiter_raw():
            yield chunk


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the relay's own server handles signals
        yield


class Uplinks:
    """One uplink socket per gateway URL, in one directory that every sandbox sees.

    Args:
        directory: where the sockets go (short: a unix socket path must stay under ~100
            bytes); default a fresh directory under the system temp directory.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path(tempfile.gettempdir()) / (
            f"cerver-uplink-{secrets.token_hex(4)}"
        )
        self._servers: dict[str, tuple[_Server, asyncio.Task[None]]] = {}
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0))
        self._lock = asyncio.Lock()

    def socket_for(self, target: str) -> Path:
        digest = hashlib.sha256(target.encode()).hexdigest()[:12]
        return self.directory / f"{digest}.sock"

    async def ensure(self, target: str) -> Path:
        """The socket forwarding to ``target``'s model proxy, started if needed.

        Raises:
            OSError: the socket could not be served.
        """
        async with self._lock:
            socket_path = self.socket_for(target)
            if target in self._servers and socket_path.exists():
                return socket_path
            self.directory.mkdir(mode=0o711, parents=True, exist_ok=True)
            socket_path.unlink(missing_ok=True)
            config = uvicorn.Config(
                _uplink_app(target, self._client),
                uds=str(socket_path),
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
            server = _Server(config)
            task = asyncio.create_task(server.serve())
            async with asyncio.timeout(_START_TIMEOUT_S):
                while not server.started:
                    if task.done():
                        task.result()
                        raise OSError(f"The uplink on {socket_path} stopped at start.")
                    await asyncio.sleep(0.01)
            os.chmod(socket_path, 0o666)
            self._servers[target] = (server, task)
            return socket_path

    async def aclose(self) -> None:
        for server, task in self._servers.values():
            server.should_exit = True
            with contextlib.suppress(Exception):
                await task
        self._servers.clear()
        await self._client.aclose()
