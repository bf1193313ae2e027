"""The sandbox-facing proxy listener: the proxy route alone, on a unix socket.

Local sandboxes have no network of their own; the socket is bind-mounted into them (see
:mod:`compute._proxy_bridge`), and this listener answers nothing but
``/v2/proxy/{provider}/{path}`` and the app's tools (``/v2/proxy/mcp``): the rest of the
gateway's API is not served on it, so a sandbox cannot reach it even with a stolen key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cerver.errors import CerverError
from cerver.failures import Failure
from cerver.proxy.handler import PROXY_PREFIX, ProxyBackend, handle
from harnesses.tools import APP_TOOLS_MCP_PATH

__all__ = ["ProxyListener", "proxy_app"]

log = logging.getLogger("cerver.proxy")

_START_TIMEOUT_S = 10.0


def proxy_app(proxy: ProxyBackend) -> Starlette:
    """A Starlette app serving only the proxy route of ``proxy``."""

    async def endpoint(request: Request) -> Response:
        params = request.path_params
        return await handle(proxy, request, params["provider"], params["path"])

    async def cerver_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, CerverError)
        return JSONResponse(Failure.from_error(exc).to_json(), status_code=exc.status_code)

    routes = [
        Route(APP_TOOLS_MCP_PATH, proxy.app_tools, methods=["GET", "POST", "DELETE"]),
        Route(f"{PROXY_PREFIX}/{{provider}}/{{path:path}}", endpoint, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={CerverError: cerver_error})


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the process's main server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ProxyListener:
    """Serves an ASGI app on a unix socket in the background of the running event loop.

    Args:
        app: the ASGI app (from :func:`proxy_app`).
        socket_path: where to listen; its directory must exist. The socket is made
            connectable by the sandbox's user (mode 0666): the token is the access control.
    """

    def __init__(self, app: Starlette, socket_path: Path) -> None:
        self.socket_path = socket_path
        config = uvicorn.Config(
            app,
            uds=str(socket_path),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start listening; returns once the socket accepts connections.

        Raises:
            OSError: the socket could not be bound.
        """
        self.socket_path.unlink(missing_ok=True)
        self._task = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(_START_TIMEOUT_S):
            while not self._server.started:
                if self._task.done():
                    self._task.result()  # re-raise why it stopped
                    raise OSError(f"The proxy listener on {self.socket_path} stopped at start.")
                await asyncio.sleep(0.01)
        os.chmod(self.socket_path, 0o666)

    async def stop(self) -> None:
        """Stop listening and remove the socket. Idempotent."""
        if self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await self._task
            self._task = None
        self.socket_path.unlink(missing_ok=True)
