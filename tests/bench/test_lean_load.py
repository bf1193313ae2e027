"""The benchmarks' lean load generator and canned upstream speak real HTTP and the real
Anthropic protocol: the SDK reads the canned answers, the lean client reads any server's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anthropic
import pytest

from bench._canned_upstream import ANSWER, serve
from bench._lean_http import LeanConnection, ResponseError
from tests.e2e.conftest import free_port


@pytest.fixture
async def canned() -> AsyncIterator[str]:
    port = free_port()
    server = asyncio.create_task(serve(port))
    url = f"http://127.0.0.1:{port}"
    connection = LeanConnection(url)
    for _ in range(100):  # until it listens
        try:
            await connection.request("GET", "/_mock/health")
            break
        except OSError:
            await asyncio.sleep(0.02)
    await connection.aclose()
    yield url
    server.cancel()


async def test_the_sdk_reads_the_canned_answer_streamed_and_whole(canned: str) -> None:
    client = anthropic.AsyncAnthropic(base_url=canned, api_key="test", max_retries=0)
    question = {"role": "user", "content": "hi"}
    async with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=64, messages=[question]
    ) as stream:
        streamed = await stream.get_final_message()
    whole = await client.messages.create(
        model="claude-sonnet-4-6", max_tokens=64, messages=[question]
    )
    await client.close()

    assert streamed.content[0].text == whole.content[0].text == ANSWER
    assert streamed.usage.output_tokens == whole.usage.output_tokens > 0


async def test_the_lean_client_keeps_its_connection_and_refuses_errors(canned: str) -> None:
    connection = LeanConnection(canned)
    assert await connection.request("GET", "/_mock/health") == b"ok"
    assert await connection.request("GET", "/_mock/health") == b"ok"  # the same connection
    with pytest.raises(ResponseError, match="404"):
        await connection.request("GET", "/elsewhere")
    await connection.aclose()


async def test_the_lean_client_reads_a_chunked_body() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n"
        )
        await writer.drain()

    server = await asyncio.start_server(chunked, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connection = LeanConnection(f"http://127.0.0.1:{port}")
    try:
        body = await connection.request("POST", "/", {"a": 1}, {"x-api-key": "k"})
    finally:
        await connection.aclose()
        server.close()
    assert body == b"hello, world"
