"""Timing and failures: delays, stalls, slow chunks, dropped connections."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from cerver.testing.mock_upstream import MockUpstream, Reply, UpstreamFailure

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def http(upstream: MockUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=upstream.openai_base_url) as client:
        yield client


async def test_delay_before_the_response(upstream: MockUpstream, http: httpx.AsyncClient) -> None:
    upstream.script(Reply(text="late", delay_ms=200))
    started = time.perf_counter()
    response = await http.post("/chat/completions", json=CHAT)
    assert time.perf_counter() - started >= 0.2
    assert response.json()["choices"][0]["message"]["content"] == "late"


async def test_delayed_error(upstream: MockUpstream, http: httpx.AsyncClient) -> None:
    upstream.script(Reply(error=UpstreamFailure(status=500), delay_ms=150))
    started = time.perf_counter()
    response = await http.post("/chat/completions", json=CHAT)
    assert time.perf_counter() - started >= 0.15
    assert response.status_code == 500


async def test_stall_after_headers(upstream: MockUpstream, http: httpx.AsyncClient) -> None:
    upstream.script(Reply(text="slow", stall_ms=300))
    started = time.perf_counter()
    async with http.stream("POST", "/chat/completions", json={**CHAT, "stream": True}) as response:
        headers_after = time.perf_counter() - started
        body = await response.aread()
        body_after = time.perf_counter() - started
    assert headers_after < 0.25
    assert body_after >= 0.3
    assert body.endswith(b"data: [DONE]\n\n")


async def test_chunk_delay_spaces_events(upstream: MockUpstream, http: httpx.AsyncClient) -> None:
    upstream.script(Reply(text="a b c", chunk_delay_ms=50))
    arrivals = []
    started = time.perf_counter()
    async with http.stream("POST", "/chat/completions", json={**CHAT, "stream": True}) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                arrivals.append(time.perf_counter() - started)
    # role chunk, 3 text chunks, finish chunk, [DONE]: 5 gaps of 50 ms.
    assert len(arrivals) == 6
    assert arrivals[-1] - arrivals[0] >= 0.25


@pytest.mark.parametrize("chunks", [0, 1])
async def test_json_body_dropped(
    upstream: MockUpstream, oai: openai.AsyncOpenAI, chunks: int
) -> None:
    upstream.script(Reply(text="never whole", fail_after_chunks=chunks))
    with pytest.raises(openai.APIConnectionError):
        await oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])


async def test_json_body_complete_when_failure_comes_too_late(
    upstream: MockUpstream, oai: openai.AsyncOpenAI
) -> None:
    upstream.script(Reply(text="whole", fail_after_chunks=2))
    completion = await oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == "whole"


async def test_drops_are_not_logged_as_errors(
    upstream: MockUpstream, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.script(Reply(text="x y z", fail_after_chunks=1))
    with (
        caplog.at_level(logging.DEBUG, logger="uvicorn.error"),
        pytest.raises(httpx.RemoteProtocolError),
    ):
        await http.post("/chat/completions", json={**CHAT, "stream": True})
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_stalled_reply_ends_with_its_client() -> None:
    """A client that gives up cancels the stall, so the server stops without waiting."""
    with MockUpstream() as upstream:
        upstream.script(Reply(text="never", stall_ms=60_000))
        async with openai.AsyncOpenAI(
            base_url=upstream.openai_base_url, api_key="x", max_retries=0, timeout=0.3
        ) as client:
            with pytest.raises(openai.APITimeoutError):
                await client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "hi"}]
                )
        started = time.perf_counter()
    # Without the disconnect watch, uvicorn would wait out its 1 s graceful timeout.
    assert time.perf_counter() - started < 0.9
