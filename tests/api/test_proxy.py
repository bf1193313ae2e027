"""The model proxy ``/v2/proxy/{provider}/…``: run tokens, forwarding, streaming, metering."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cerver.errors import UpstreamError
from cerver.gateway import Gateway
from cerver.providers import Endpoint
from cerver.proxy import ProxyForwarder, ProxyGrant
from cerver.testing.mock_upstream import MockUpstream
from cerver.types import Usage

Metered = list[tuple[str, str, Usage]]


@pytest.fixture
def metered() -> Metered:
    return []


@pytest.fixture
def grant(gateway: Gateway, metered: Metered) -> Iterator[ProxyGrant]:
    def on_usage(model: str, provider: str, usage: Usage, latency_ms: float) -> None:
        assert latency_ms >= 0
        metered.append((model, provider, usage))

    issued = gateway.proxy.grants.issue(
        run_id="run_1", session_id="sess_1", harness="claude-code", on_usage=on_usage
    )
    yield issued
    gateway.proxy.revoke(issued)


def anthropic_body(stream: bool) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "stream": stream,
        "messages": [{"role": "user", "content": "hello proxy"}],
    }


async def test_anthropic_stream_passes_through_and_is_metered(
    http: httpx.AsyncClient, grant: ProxyGrant, metered: Metered, mock_upstream: MockUpstream
) -> None:
    async with http.stream(
        "POST",
        "/v2/proxy/anthropic/v1/messages?beta=true",
        json=anthropic_body(stream=True),
        headers={"x-api-key": grant.token, "anthropic-version": "2023-06-01", "Authorization": ""},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-cerver-run-id"] == "run_1"
        body = b"".join([chunk async for chunk in response.aiter_raw()]).decode()
    assert "event: message_start" in body and "event: message_stop" in body
    logged = mock_upstream.requests[-1]
    assert (logged["path"], logged["query"]) == ("/v1/messages", "beta=true")
    assert logged["headers"]["anthropic-version"] == "2023-06-01"
    [(model, provider, usage)] = metered
    assert (model, provider) == ("claude-sonnet-4-6", "anthropic")
    assert usage.input_tokens > 0 and usage.output_tokens > 0


async def test_openai_responses_with_bearer_token(
    http: httpx.AsyncClient, grant: ProxyGrant, metered: Metered, mock_upstream: MockUpstream
) -> None:
    response = await http.post(
        "/v2/proxy/openai/responses",
        json={"model": "gpt-5.5", "input": "hello proxy"},
        headers={"Authorization": f"Bearer {grant.token}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "response"
    assert mock_upstream.requests[-1]["path"] == "/v1/responses"
    [(model, provider, usage)] = metered
    assert (model, provider) == ("gpt-5.5", "openai")
    assert usage.output_tokens > 0


async def test_upstream_errors_pass_through_unchanged(
    http: httpx.AsyncClient, grant: ProxyGrant, mock_upstream: MockUpstream
) -> None:
    mock_upstream.script({"error": {"status": 429, "message": "slow down"}})
    response = await http.post(
        "/v2/proxy/anthropic/v1/messages",
        json=anthropic_body(stream=False),
        headers={"x-api-key": grant.token},
    )
    assert response.status_code == 429
    assert response.json()["error"]["message"] == "slow down"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": "cpx_not-a-live-token"},
        {"Authorization": "Bearer ck_test_admin_key_0123456789abcdef"},  # an account key
    ],
    ids=["none", "unknown", "account-key"],
)
async def test_requests_without_a_live_run_token_are_refused(
    http: httpx.AsyncClient, headers: dict[str, str], mock_upstream: MockUpstream
) -> None:
    headers = {"Authorization": "", **headers}  # drop the fixture's admin key unless given
    response = await http.post(
        "/v2/proxy/anthropic/v1/messages", json=anthropic_body(False), headers=headers
    )
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert mock_upstream.requests == []


async def test_a_revoked_token_is_refused(
    http: httpx.AsyncClient, gateway: Gateway, grant: ProxyGrant
) -> None:
    gateway.proxy.revoke(grant)
    response = await http.post(
        "/v2/proxy/openai/responses", json={}, headers={"Authorization": f"Bearer {grant.token}"}
    )
    assert response.status_code == 401


async def test_unknown_provider(http: httpx.AsyncClient, grant: ProxyGrant) -> None:
    response = await http.post("/v2/proxy/mistral/v1/x", headers={"x-api-key": grant.token})
    assert response.status_code == 404
    assert "anthropic, gemini, openai" in response.json()["detail"]


GEMINI_PATH = "/v2/proxy/gemini/v1beta/models/gemini-2.5-pro"
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hello proxy"}]}]}


async def test_gemini_stream_with_goog_api_key_is_metered(
    http: httpx.AsyncClient, grant: ProxyGrant, metered: Metered, mock_upstream: MockUpstream
) -> None:
    async with http.stream(
        "POST",
        f"{GEMINI_PATH}:streamGenerateContent?alt=sse",
        json=GEMINI_BODY,
        headers={"x-goog-api-key": grant.token, "Authorization": ""},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = b"".join([chunk async for chunk in response.aiter_raw()]).decode()
    assert '"finishReason":"STOP"' in body
    logged = mock_upstream.requests[-1]
    assert (logged["path"], logged["query"]) == (
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
        "alt=sse",
    )
    [(model, provider, usage)] = metered
    assert (model, provider) == ("gemini-2.5-pro", "gemini")
    assert usage.input_tokens > 0 and usage.output_tokens > 0


async def test_gemini_token_in_the_query_is_not_forwarded(
    http: httpx.AsyncClient, grant: ProxyGrant, metered: Metered, mock_upstream: MockUpstream
) -> None:
    response = await http.post(
        f"{GEMINI_PATH}:generateContent?key={grant.token}&x=1",
        json=GEMINI_BODY,
        headers={"Authorization": ""},
    )
    assert response.status_code == 200, response.text
    assert response.json()["usageMetadata"]["totalTokenCount"] > 0
    logged = mock_upstream.requests[-1]
    assert logged["query"] == "x=1"  # the run token stays behind
    assert logged["headers"]["x-goog-api-key"] == "<redacted>"  # the gateway's key went
    assert len(metered) == 1


async def test_sandbox_listener_serves_the_proxy_and_nothing_else(
    gateway: Gateway, metered: Metered
) -> None:
    grant = await gateway.proxy.grant(
        run_id="run_2",
        session_id="sess_2",
        harness="codex",
        on_usage=lambda *args: metered.append(args[:3]),
    )
    assert grant.socket_path is not None
    transport = httpx.AsyncHTTPTransport(uds=grant.socket_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as unix:
        ok = await unix.post(
            "/v2/proxy/openai/responses",
            json={"model": "gpt-5.5", "input": "hi"},
            headers={"Authorization": f"Bearer {grant.token}"},
        )
        assert ok.status_code == 200
        for path in ("/healthz", "/v2/sessions", "/docs"):
            assert (await unix.get(path)).status_code == 404
    assert len(metered) == 1
    gateway.proxy.revoke(grant)


async def test_forwarder_swaps_the_token_for_the_real_key() -> None:
    seen: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.dumps({"model": "m", "usage": {"input_tokens": 3}}).encode()
        return httpx.Response(200, stream=httpx.ByteStream(body))

    keys = {
        "anthropic": Endpoint("anthropic", "http://up.test", "sk-ant-real"),
        "openai": Endpoint("openai", None, "sk-real"),
        "gemini": Endpoint("gemini", None, "goog-real"),
    }
    forwarder = ProxyForwarder(
        lambda provider, _account: keys[provider], transport=httpx.MockTransport(upstream)
    )
    metered: Metered = []
    for provider, path in (
        ("anthropic", "v1/messages"),
        ("openai", "responses"),
        ("gemini", "v1beta/models/g:generateContent"),
    ):
        response = await forwarder.forward(
            provider,
            path,
            method="POST",
            query="",
            headers={
                "x-api-key": "cpx_token",
                "x-goog-api-key": "cpx_token",
                "authorization": "Bearer cpx_token",
                "cookie": "a=b",
                "anthropic-version": "2023-06-01",
                "content-type": "application/json",
            },
            body=b"{}",
            on_usage=lambda m, p, u, _: metered.append((m, p, u)),
        )
        async for _ in response.body:
            pass
    await forwarder.aclose()
    anthropic, openai, gemini = seen
    assert str(anthropic.url) == "http://up.test/v1/messages"
    assert anthropic.headers["x-api-key"] == "sk-ant-real"
    assert "authorization" not in anthropic.headers and "cookie" not in anthropic.headers
    assert str(openai.url) == "https://api.openai.com/v1/responses"
    assert openai.headers["authorization"] == "Bearer sk-real"
    assert "x-api-key" not in openai.headers
    assert str(gemini.url) == (
        "https://generativelanguage.googleapis.com/v1beta/models/g:generateContent"
    )
    assert gemini.headers["x-goog-api-key"] == "goog-real"
    assert "authorization" not in gemini.headers and "x-api-key" not in gemini.headers
    assert [(m, p, u.input_tokens) for m, p, u in metered] == [
        ("m", "anthropic", 3),
        ("m", "openai", 3),
        ("m", "gemini", 3),
    ]


async def test_unreachable_upstream_is_an_upstream_error() -> None:
    forwarder = ProxyForwarder(lambda p, _: Endpoint(p, "http://127.0.0.1:9", "k"))
    with pytest.raises(UpstreamError) as caught:
        await forwarder.forward(
            "openai",
            "responses",
            method="POST",
            query="",
            headers={},
            body=b"",
            on_usage=lambda *_: None,
        )
    assert caught.value.retryable
    await forwarder.aclose()
