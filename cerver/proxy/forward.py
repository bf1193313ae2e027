"""Forwarding one proxied request to its provider with the real key, streaming both ways.

The request body is read whole (the gateway's body limit applies); the response streams back
chunk by chunk as the upstream sends it, never buffered, while a :class:`UsageMeter` reads
its token counts. When the body ends (or the client goes away) the usage is priced
(:func:`cerver.pricing.price`: a cost, or ``cost_usd=None`` with a ``cost_reason``) and
reported once through the grant's callback, so a CLI harness's calls count against budgets.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

import httpx

from cerver.errors import NotConfigured, NotFound, UnknownPlugin, UpstreamError
from cerver.pricing import price
from cerver.providers import Endpoint, ProviderRegistry, providers
from cerver.proxy.grants import UsageCallback
from cerver.proxy.metering import UsageMeter

__all__ = ["EndpointResolver", "ProviderRoute", "ProxyForwarder", "ProxyResponse"]

# What a client may tell the upstream; everything else (its credentials, cookies, hop-by-hop
# headers, the host) stays behind.
_FORWARDED_REQUEST: Final = frozenset(
    {
        "accept",
        "anthropic-beta",
        "anthropic-version",
        "content-type",
        "openai-beta",
        "openai-organization",
        "openai-project",
        "user-agent",
        "x-goog-api-client",
        "x-stainless-helper-method",
    }
)
_DROPPED_RESPONSE: Final = frozenset(
    {"connection", "content-length", "keep-alive", "transfer-encoding", "set-cookie", "server"}
)
_TIMEOUT: Final = httpx.Timeout(300.0, connect=10.0)


@dataclass(frozen=True, slots=True)
class ProviderRoute:
    """Where one provider's requests go and the header that presents its key."""

    base_url: str
    key_header: tuple[str, str] = field(repr=False)


EndpointResolver = Callable[[str, "str | None"], "Endpoint | Awaitable[Endpoint]"]
"""``resolve(provider, account_id)`` → the provider's endpoint for that account (its own key,
else the gateway's); raises :class:`~cerver.errors.NotConfigured` without a key."""


@dataclass(slots=True)
class ProxyResponse:
    """The upstream's status and headers, and its body as it arrives."""

    status_code: int
    headers: dict[str, str]
    body: AsyncIterator[bytes]


class ProxyForwarder:
    """One pooled HTTP client per provider, forwarding requests with the run's account's
    key or the gateway's.

    Args:
        resolve: see :data:`EndpointResolver` (sync or async).
        transport: an httpx transport for the upstream clients (tests use
            ``httpx.MockTransport``); the default opens real connections.
        registry: the providers the proxy speaks for: every registered model provider, at
            its default base URL and with its key header unless the endpoint says otherwise.
    """

    def __init__(
        self,
        resolve: EndpointResolver,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        registry: ProviderRegistry = providers,
    ) -> None:
        self._resolve = resolve
        self._transport = transport
        self._registry = registry
        self._clients: dict[str, httpx.AsyncClient] = {}

    async def route(self, provider: str, account_id: str | None = None) -> ProviderRoute:
        """The upstream of ``provider`` for ``account_id``'s runs.

        Raises:
            NotFound: the proxy does not speak for that provider (the message names those
                it does).
            NotConfigured: no key for it, neither the account's nor the gateway's.
        """
        try:
            declared = self._registry.model(provider)
        except UnknownPlugin as exc:
            raise NotFound(
                f"The model proxy has no provider {provider!r}: {exc.message}",
                context={"provider": provider, "known": exc.context.get("known", [])},
            ) from exc
        endpoint = self._resolve(declared.name, account_id)
        if inspect.isawaitable(endpoint):
            endpoint = await endpoint
        if endpoint.api_key is None:
            raise NotConfigured(
                f"No API key for {provider!r} on this gateway: set {declared.key_env}.",
                context={"provider": provider, "variable": declared.key_env},
            )
        base = (endpoint.base_url or declared.default_base_url).rstrip("/")
        return ProviderRoute(base, declared.auth_header(endpoint.api_key))

    async def forward(
        self,
        provider: str,
        path: str,
        *,
        method: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        on_usage: UsageCallback,
        account_id: str | None = None,
    ) -> ProxyResponse:
        """Send the request upstream and return its response, body still streaming.

        Raises:
            NotFound, NotConfigured: see :meth:`route`.
            UpstreamError: the upstream could not be reached (retryable).
        """
        route = await self.route(provider, account_id)
        client = self._client(provider)
        url = f"{route.base_url}/{path.lstrip('/')}" + (f"?{query}" if query else "")
        outgoing = {k: v for k, v in headers.items() if k.lower() in _FORWARDED_REQUEST}
        name, value = route.key_header
        outgoing[name] = value
        outgoing["accept-encoding"] = "identity"  # the meter reads the body as it passes
        request = client.build_request(method, url, headers=outgoing, content=body)
        started = time.perf_counter()
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise UpstreamError(
                f"The model proxy could not reach the {provider} upstream: {exc!r}",
                context={"provider": provider},
                retryable=True,
            ) from exc
        streaming = "text/event-stream" in response.headers.get("content-type", "")
        meter = UsageMeter(streaming=streaming)
        response_headers = {
            k: v for k, v in response.headers.items() if k.lower() not in _DROPPED_RESPONSE
        }
        return ProxyResponse(
            response.status_code,
            response_headers,
            _relay(response, meter, provider, started, on_usage),
        )

    def _client(self, provider: str) -> httpx.AsyncClient:
        if provider not in self._clients:
            self._clients[provider] = httpx.AsyncClient(
                timeout=_TIMEOUT, trust_env=False, transport=self._transport
            )
        return self._clients[provider]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


async def _relay(
    response: httpx.Response,
    meter: UsageMeter,
    provider: str,
    started: float,
    on_usage: UsageCallback,
) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_raw():
            meter.feed(chunk)
            yield chunk
    except httpx.TransportError:
        return  # the upstream broke the stream: the client sees it end early
    finally:
        await response.aclose()
        usage = meter.result()
        if usage is not None:
            latency_ms = (time.perf_counter() - started) * 1000
            model = meter.model or "unknown"
            on_usage(model, provider, price(model, provider, usage), latency_ms)
