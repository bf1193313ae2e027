"""Forwarding one proxied request to its provider with the real key, streaming both ways.

The request body is read whole (the gateway's body limit applies); the response streams back
chunk by chunk as the upstream sends it, never buffered, while a :class:`UsageMeter` reads
its token counts. When the body ends (or the client goes away) the usage is priced
(:func:`cerver.pricing.price`: a cost, or ``cost_usd=None`` with a ``cost_reason``) and
reported once through the grant's callback, so a CLI harness's calls count against budgets.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Final

import httpx

from cerver.errors import NotFound, UpstreamError
from cerver.pricing import price
from cerver.proxy.grants import UsageCallback
from cerver.proxy.metering import UsageMeter

__all__ = ["DEFAULT_BASE_URLS", "ProviderRoute", "ProxyForwarder", "ProxyResponse"]

DEFAULT_BASE_URLS: Final = {
    "anthropic": "https://api.anthropic.com",
    "openai": "https://api.openai.com/v1",
    "gemini": "https://generativelanguage.googleapis.com",
}
"""Each provider's base URL in its SDK's convention: Anthropic's and Gemini's without a
version (``/v1``, ``/v1beta``), OpenAI's with it. A proxied path is relative to that base,
so a CLI's base URL is simply ``…/v2/proxy/<provider>``."""

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
    """Where one provider's requests go and how its key is presented."""

    base_url: str
    api_key: str
    key_header: Callable[[str], tuple[str, str]]


def _anthropic_key(key: str) -> tuple[str, str]:
    return "x-api-key", key


def _bearer(key: str) -> tuple[str, str]:
    return "authorization", f"Bearer {key}"


def _google_key(key: str) -> tuple[str, str]:
    return "x-goog-api-key", key


_KEY_HEADERS: Final = {"anthropic": _anthropic_key, "openai": _bearer, "gemini": _google_key}


@dataclass(slots=True)
class ProxyResponse:
    """The upstream's status and headers, and its body as it arrives."""

    status_code: int
    headers: dict[str, str]
    body: AsyncIterator[bytes]


class ProxyForwarder:
    """One pooled HTTP client per provider, forwarding requests with the gateway's keys.

    Args:
        resolve: returns ``(base_url or None, api_key)`` for a provider, or raises
            :class:`~cerver.errors.NotConfigured` when the gateway has no key for it.
        transport: an httpx transport for the upstream clients (tests use
            ``httpx.MockTransport``); the default opens real connections.
    """

    def __init__(
        self,
        resolve: Callable[[str], tuple[str | None, str]],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._resolve = resolve
        self._transport = transport
        self._clients: dict[str, httpx.AsyncClient] = {}

    def route(self, provider: str) -> ProviderRoute:
        """The upstream of ``provider``.

        Raises:
            NotFound: the proxy does not speak for that provider.
            NotConfigured: the gateway has no key for it.
        """
        if provider not in _KEY_HEADERS:
            raise NotFound(
                f"The model proxy has no provider {provider!r}; use one of "
                f"{', '.join(sorted(_KEY_HEADERS))}.",
                context={"provider": provider},
            )
        base_url, api_key = self._resolve(provider)
        base = (base_url or DEFAULT_BASE_URLS[provider]).rstrip("/")
        return ProviderRoute(base, api_key, _KEY_HEADERS[provider])

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
    ) -> ProxyResponse:
        """Send the request upstream and return its response, body still streaming.

        Raises:
            NotFound, NotConfigured: see :meth:`route`.
            UpstreamError: the upstream could not be reached (retryable).
        """
        route = self.route(provider)
        client = self._client(provider)
        url = f"{route.base_url}/{path.lstrip('/')}" + (f"?{query}" if query else "")
        outgoing = {k: v for k, v in headers.items() if k.lower() in _FORWARDED_REQUEST}
        name, value = route.key_header(route.api_key)
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
