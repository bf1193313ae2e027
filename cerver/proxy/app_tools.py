"""The app's own tools for CLI harnesses: an MCP server at ``/v2/proxy/mcp``, one run at a time.

An SDK harness offers the app's tools to its model itself. A CLI (Claude Code, Codex, Gemini
CLI) runs its own agent loop inside the sandbox, so the gateway serves the tools to it the way
those CLIs take extra tools: as an MCP server (streamable HTTP, stateless, JSON answers),
reached where the CLI already reaches the model proxy and authenticated by the same run token.

* ``tools/list`` answers the tools the app offered with the token's run (read from the
  transcript, so any replica can answer it).
* ``tools/call`` of one of them is *parked*: it gets no answer while the run lives. The CLI
  harness sees the call in the CLI's own output, records it as a call of the app's tool and
  stops the CLI, which ends the run with status ``requires_action`` and so the grant; the
  parked request then gets an error result that nobody reads. The app's result reaches the
  model in the next turn, which a fresh CLI process writes from the transcript.

The ``mcp`` SDK is imported when the first request arrives (``pip install 'cerver[mcp]'``),
never at start-up. It runs stateless, without DNS-rebinding checks: every request carries a
live run token, which a browser tricked into calling the sandbox's forwarder does not have.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from cerver.errors import CerverError, MissingDependency
from cerver.failures import Failure
from cerver.proxy.handler import token_of
from cerver.types import ProxyGrant
from harnesses.tools import ToolSpec

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

__all__ = ["MAX_PARKED_PER_RUN", "MCP_INSTALL", "AppToolsServer", "GrantAuthority", "ToolsOfRun"]

log = logging.getLogger("cerver.proxy")

MCP_INSTALL = "pip install 'cerver[mcp]'"
MAX_PARKED_PER_RUN = 16
"""Calls of one run parked at once on this process; more get an error result at once (a
sandbox holds the run token and could otherwise open them without end)."""

ToolsOfRun = Callable[[ProxyGrant], Awaitable[Sequence[ToolSpec]]]
"""The tools the app offered with a grant's run (empty when it offered none)."""

_GRANT_KEY = "cerver_grant"
_ENDED = (
    "The turn ended before this call was answered: the app runs its own tools, and its "
    "result comes with the next turn."
)


class GrantAuthority(Protocol):
    """What the server needs of the model proxy (:class:`cerver.proxy.ModelProxy` is one)."""

    async def authorize(self, token: str | None) -> ProxyGrant: ...

    async def until_ended(self, grant: ProxyGrant) -> None: ...


class AppToolsServer:
    """An ASGI app: the MCP server of the app's tools for the runs of one gateway process.

    Args:
        proxy: resolves run tokens and says when a run's grant ends.
        tools_of: the tools the app offered with a run.
    """

    def __init__(self, proxy: GrantAuthority, tools_of: ToolsOfRun) -> None:
        self._proxy = proxy
        self._tools_of = tools_of
        self._manager: StreamableHTTPSessionManager | None = None
        self._starting = asyncio.Lock()
        self._stop = asyncio.Event()
        self._serving: asyncio.Task[None] | None = None
        self._parked: dict[str, int] = {}  # run token -> its calls waiting here

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            grant = await self._proxy.authorize(token_of(request))
            manager = await self._started()
        except CerverError as exc:
            body = Failure.from_error(exc).to_json()
            await JSONResponse(body, status_code=exc.status_code)(scope, receive, send)
            return
        scope.setdefault("state", {})[_GRANT_KEY] = grant
        await manager.handle_request(scope, receive, send)

    @staticmethod
    def ensure_available() -> None:
        """Raise :class:`MissingDependency` (naming the install) when the ``mcp`` SDK is
        missing; a turn offering the app's tools to a CLI is then refused before it starts."""
        if importlib.util.find_spec("mcp") is None:
            raise _mcp_missing()

    async def aclose(self) -> None:
        """Stop the MCP session manager (parked calls end with the error result)."""
        self._stop.set()
        if self._serving is not None:
            await self._serving
        self._serving = self._manager = None

    async def _started(self) -> StreamableHTTPSessionManager:
        """The MCP session manager, started on first use in a task of its own (its task
        group must be entered and left by one task).

        Raises:
            MissingDependency: the ``mcp`` package is not installed.
        """
        async with self._starting:
            if self._manager is None:
                manager = _manager(self._list_tools, self._call_tool)
                ready = asyncio.Event()
                self._stop = asyncio.Event()
                serving = asyncio.create_task(self._serve(manager, ready))
                readied = asyncio.create_task(ready.wait())
                await asyncio.wait({serving, readied}, return_when=asyncio.FIRST_COMPLETED)
                readied.cancel()
                if serving.done():  # it failed to start: say why, start afresh next time
                    serving.result()
                    raise RuntimeError("The MCP session manager stopped as it started.")
                self._serving, self._manager = serving, manager
            return self._manager

    async def _serve(self, manager: StreamableHTTPSessionManager, ready: asyncio.Event) -> None:
        async with manager.run():
            ready.set()
            await self._stop.wait()

    async def _list_tools(self, ctx: Any, params: Any) -> Any:
        from mcp import types

        del params
        tools = await self._tools_of(_grant(ctx))
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=tool.name,
                    description=tool.description or None,
                    input_schema=dict(tool.parameters) or {"type": "object"},
                )
                for tool in tools
            ]
        )

    async def _call_tool(self, ctx: Any, params: Any) -> Any:
        from mcp import types

        grant = _grant(ctx)
        offered = {tool.name for tool in await self._tools_of(grant)}
        parked = self._parked.get(grant.token, 0)
        if params.name not in offered:
            text = f"No tool {params.name!r} here: the app offered {sorted(offered)}."
        elif parked >= MAX_PARKED_PER_RUN:
            text = f"Too many calls of the app's tools wait already ({parked}): make fewer."
        else:
            log.info("run %s: call of the app's tool %r parked", grant.run_id, params.name)
            self._parked[grant.token] = parked + 1
            try:
                await self._proxy.until_ended(grant)
            finally:
                if (left := self._parked.pop(grant.token) - 1) > 0:
                    self._parked[grant.token] = left
            text = _ENDED
        return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


def _grant(ctx: Any) -> ProxyGrant:
    grant = ctx.request.scope["state"][_GRANT_KEY]
    assert isinstance(grant, ProxyGrant)
    return grant


def _mcp_missing() -> MissingDependency:
    return MissingDependency(
        f"The app's tools for CLI harnesses need the MCP SDK: run `{MCP_INSTALL}`.",
        context={"install": MCP_INSTALL},
    )


def _manager(list_tools: Any, call_tool: Any) -> StreamableHTTPSessionManager:
    try:
        from mcp.server.lowlevel import Server
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
        from mcp.server.transport_security import TransportSecuritySettings
    except ImportError as exc:
        raise _mcp_missing() from exc
    server: Server[Any] = Server(
        "cerver-app-tools", on_list_tools=list_tools, on_call_tool=call_tool
    )
    return StreamableHTTPSessionManager(
        server,
        json_response=True,
        stateless=True,
        security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
