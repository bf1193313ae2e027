"""The ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cerver import __version__
from cerver.api.compat import anthropic_messages, openai_chat, openai_responses
from cerver.api.compat import models as compat_models
from cerver.api.contract import document_errors
from cerver.api.errors import install_error_handlers
from cerver.api.idempotency import IdempotencyMiddleware
from cerver.api.middleware import RequestGuard
from cerver.api.routes import (
    account,
    auth,
    branching,
    computes,
    credentials,
    events,
    execs,
    fanouts,
    gateway_compat,
    health,
    moves,
    prometheus,
    providers,
    proxy,
    runs,
    sandbox,
    sessions,
    stress_tests,
    tool_results,
    turns,
    usage,
)
from cerver.api.telemetry import RequestTelemetry
from cerver.console.pages import router as console_router
from cerver.gateway import Gateway
from cerver.settings import Settings
from harnesses.tools import APP_TOOLS_MCP_PATH

__all__ = ["create_app"]


def create_app(
    gateway: Gateway | None = None,
    *,
    settings: Settings | None = None,
    on_started: Callable[[Gateway], None] | None = None,
) -> FastAPI:
    """Build the app around ``gateway`` (or a new one from ``settings``/the environment).

    The gateway is started and stopped with the app's lifespan; ``on_started`` runs once it
    has started (the CLI prints its banner there).
    """
    gateway = gateway or Gateway(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        if on_started is not None:
            on_started(gateway)
        try:
            yield
        finally:
            await gateway.stop()

    app = FastAPI(
        title="Cerver",
        version=__version__,
        summary="Session gateway for AI apps",
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    install_error_handlers(app)
    document_errors(app)
    for module in (health, auth, sessions, turns, runs, tool_results, execs, events):
        app.include_router(module.router)
    for module in (providers, computes, moves, stress_tests, gateway_compat, sandbox):
        app.include_router(module.router)
    for module in (branching, fanouts):
        app.include_router(module.router)
    app.include_router(proxy.router)
    # The app's tools for CLI runs: an MCP server (ASGI) beside the model proxy.
    app.add_route(
        APP_TOOLS_MCP_PATH,
        gateway.proxy.app_tools,
        methods=["GET", "POST", "DELETE"],
        include_in_schema=False,
    )
    for module in (account, usage):
        app.include_router(module.router)
    app.include_router(credentials.router)
    # OpenAI- and Anthropic-compatible surfaces (/v1), translated onto sessions.
    for module in (openai_chat, openai_responses, anthropic_messages, compat_models):
        app.include_router(module.router)
    app.include_router(prometheus.router)
    app.include_router(console_router)
    # The last added runs first: the request guard (size, unstorable JSON) sees everything,
    # idempotency wraps the routes.
    app.add_middleware(IdempotencyMiddleware, gateway=gateway)
    app.add_middleware(RequestGuard, max_bytes=gateway.settings.max_body_bytes)
    app.add_middleware(RequestTelemetry)  # outermost: ids and the span cover everything
    return app
