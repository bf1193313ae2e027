"""Reading token counts from provider responses, however the network splits them."""

from __future__ import annotations

import json

import pytest

from cerver.proxy import UsageMeter

ANTHROPIC_SSE = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"model":"claude-x","usage":'
    b'{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"hi"}}\n\n'
    b"event: message_delta\n"
    b'data: {"type":"message_delta","usage":{"output_tokens":7}}\n\n'
)

RESPONSES_SSE = (
    b'data: {"type":"response.created","response":{"model":"gpt-x","usage":null}}\n\n'
    b'data: {"type":"response.completed","response":{"model":"gpt-x",'
    b'"usage":{"input_tokens":20,"output_tokens":4}}}\n\n'
)

GEMINI_SSE = (
    b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"hi"}]}}],'
    b'"modelVersion":"gemini-x"}\r\n\r\n'
    b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"!"}]},'
    b'"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":12,'
    b'"candidatesTokenCount":3,"thoughtsTokenCount":2,"totalTokenCount":17},'
    b'"modelVersion":"gemini-x"}\r\n\r\n'
)


@pytest.mark.parametrize("size", [1, 7, 64, 10_000])
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (ANTHROPIC_SSE, ("claude-x", 15, 7)),
        (RESPONSES_SSE, ("gpt-x", 20, 4)),
        (GEMINI_SSE, ("gemini-x", 12, 5)),
    ],
    ids=["anthropic", "responses", "gemini"],
)
def test_streams_in_any_chunking(body: bytes, expected: tuple, size: int) -> None:
    meter = UsageMeter(streaming=True)
    for start in range(0, len(body), size):
        meter.feed(body[start : start + size])
    usage = meter.result()
    assert usage is not None
    assert (meter.model, usage.input_tokens, usage.output_tokens) == expected


def test_json_bodies() -> None:
    chat = {"model": "gpt-c", "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    meter = UsageMeter(streaming=False)
    raw = json.dumps(chat).encode()
    meter.feed(raw[:5])
    meter.feed(raw[5:])
    usage = meter.result()
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (3, 2)


def test_no_usage_is_none() -> None:
    meter = UsageMeter(streaming=True)
    meter.feed(b"data: [DONE]\n\ndata: {not json}\n\n")
    assert meter.result() is None


async def test_proxied_usage_is_priced_or_says_why_not() -> None:
    import httpx

    from cerver.providers import Endpoint
    from cerver.proxy import ProxyForwarder
    from cerver.types import Usage

    models = iter(["claude-haiku-4-5", "no-such-model"])

    def upstream(request: httpx.Request) -> httpx.Response:
        usage = {"input_tokens": 1000, "output_tokens": 0}
        body = json.dumps({"model": next(models), "usage": usage}).encode()
        return httpx.Response(200, stream=httpx.ByteStream(body))

    forwarder = ProxyForwarder(
        lambda p, _: Endpoint(p, "http://up.test", "sk-real"),
        transport=httpx.MockTransport(upstream),
    )
    metered: list[tuple[str, Usage]] = []
    for _ in range(2):
        response = await forwarder.forward(
            "anthropic",
            "v1/messages",
            method="POST",
            query="",
            headers={"content-type": "application/json"},
            body=b"{}",
            on_usage=lambda m, _p, u, _ms: metered.append((m, u)),
        )
        async for _ in response.body:
            pass
    await forwarder.aclose()
    (priced_model, priced), (unknown_model, unknown) = metered
    assert priced_model == "claude-haiku-4-5"
    assert priced.cost_usd == pytest.approx(0.001)  # $1 per million input tokens
    assert unknown_model == "no-such-model"
    assert unknown.cost_usd is None and "has no known price" in (unknown.cost_reason or "")
