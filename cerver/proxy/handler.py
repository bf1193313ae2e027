"""The proxy's one endpoint, ``/v2/proxy/{provider}/{path}``, as a plain Starlette handler.

Both the gateway's API (``cerver.api.routes.proxy``) and the sandbox-facing listener
(:mod:`cerver.proxy.listener`) serve it, so a CLI sees the same behaviour either way.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Protocol
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp

from cerver.proxy.forward import ProxyForwarder
from cerver.proxy.grants import ProxyCall
from cerver.telemetry import metrics, tracing
from cerver.types import Usage

__all__ = ["PROXY_PREFIX", "ProxyBackend", "handle", "token_of"]


class ProxyBackend(Protocol):
    """What the handler needs of a proxy: the call behind a token, and its forwarder.

    :class:`cerver.proxy.service.ModelProxy` is one; the handler and the listener depend on
    this protocol, not on the service, so the service can build the listener without an
    import cycle.
    """

    forwarder: ProxyForwarder
    app_tools: ASGIApp
    """The MCP server of the app's tools (``harnesses.tools.APP_TOOLS_MCP_PATH``)."""

    async def begin(self, token: str | None) -> ProxyCall:
        """The request's call (see :meth:`cerver.proxy.service.ModelProxy.begin`)."""
        ...


PROXY_PREFIX = "/v2/proxy"
_QUERY_KEY = "key"


def token_of(request: Request) -> str | None:
    """The run token: ``x-api-key`` (Anthropic clients), ``x-goog-api-key`` or ``?key=``
    (Gemini clients), or ``Authorization: Bearer``."""
    for header in ("x-api-key", "x-goog-api-key"):
        if key := request.headers.get(header):
            return key
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get(_QUERY_KEY) or None


def _upstream_query(request: Request) -> str:
    """The query to forward: without ``key``, which holds the run token, never the real key."""
    if _QUERY_KEY not in request.query_params:
        return request.url.query
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != _QUERY_KEY]
    return urlencode(kept)


async def handle(
    proxy: ProxyBackend, request: Request, provider: str, path: str
) -> StreamingResponse:
    """Authenticate the run token, forward the request, stream the response back.

    Raises:
        AuthenticationFailed: missing, unknown, revoked or expired token (401).
        NotFound: an unknown provider (404).
        NotConfigured: the gateway has no key for the provider (503).
        UpstreamError: the upstream could not be reached (502).
    """
    try:
        call = await proxy.begin(token_of(request))
    except BaseException as exc:
        metrics.proxy_request(provider, getattr(exc, "status_code", "error"))
        raise
    # The model call's ``chat`` span lasts until the streamed body ends (not current: the
    # body is an async generator the server iterates).
    traced = contextlib.ExitStack()
    span = traced.enter_context(
        tracing.span(
            "chat",
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.system": provider,
                "gen_ai.conversation.id": call.grant.session_id,
                "cerver.harness": call.grant.harness,
                "cerver.run_id": call.grant.run_id,
            },
            client=True,
            current=False,
        )
    )

    def on_usage(model: str, provider_name: str, usage: Usage, latency_ms: float) -> None:
        if span.is_recording():
            span.update_name(f"chat {model}")  # type: ignore[union-attr]
            span.set_attributes(
                {
                    "gen_ai.request.model": model,
                    "gen_ai.response.model": model,
                    "gen_ai.usage.input_tokens": usage.input_tokens,
                    "gen_ai.usage.output_tokens": usage.output_tokens,
                }
            )
        call.on_usage(model, provider_name, usage, latency_ms)

    try:
        response = await proxy.forwarder.forward(
            provider,
            path,
            method=request.method,
            query=_upstream_query(request),
            headers=request.headers,
            body=await request.body(),
            on_usage=on_usage,
            account_id=call.grant.account_id,
        )
    except BaseException as exc:
        metrics.proxy_request(provider, getattr(exc, "status_code", "error"))
        traced.__exit__(type(exc), exc, exc.__traceback__)
        call.end()
        raise
    metrics.proxy_request(provider, response.status_code)
    if response.status_code >= 400:
        tracing.mark_error(span, str(response.status_code))
    response.headers["x-cerver-run-id"] = call.grant.run_id

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.body:
                yield chunk
        finally:
            # Closes the upstream response and reports the usage, also when the client left
            # before the end; then the run may be closed.
            await response.body.aclose()  # type: ignore[attr-defined]
            traced.close()
            call.end()

    return StreamingResponse(body(), status_code=response.status_code, headers=response.headers)
