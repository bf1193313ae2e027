"""The TCP pipe that ``bench.streams`` measures as the floor of a Python relay passes every byte
both ways, whatever arrives before its upstream connection is up, and closes what it opened."""

from __future__ import annotations

import asyncio

import anthropic

from bench import _canned_upstream, _tcp_pipe
from bench._lean_http import LeanConnection
from tests.e2e.conftest import free_port


async def _listening(url: str) -> None:
    connection = LeanConnection(url)
    for _ in range(100):
        try:
            await asyncio.wait_for(connection.request("GET", "/_mock/health"), 5)
            break
        except OSError:
            await asyncio.sleep(0.02)
    await connection.aclose()


async def test_a_streamed_answer_crosses_the_pipe_whole() -> None:
    upstream_port, pipe_port = free_port(), free_port()
    upstream = asyncio.create_task(_canned_upstream.serve(upstream_port, deltas=20, gap_ms=1))
    pipe = asyncio.create_task(_tcp_pipe.serve(f"http://127.0.0.1:{upstream_port}", pipe_port))
    try:
        await _listening(f"http://127.0.0.1:{upstream_port}")
        await _listening(f"http://127.0.0.1:{pipe_port}")
        clients = [
            anthropic.AsyncAnthropic(
                base_url=f"http://127.0.0.1:{port}", api_key="test", max_retries=0, timeout=5
            )
            for port in (upstream_port, pipe_port)
        ]
        question = {"role": "user", "content": "hi"}
        answers = []
        for client in clients:
            async with client.messages.stream(
                model="claude-sonnet-4-6", max_tokens=64, messages=[question]
            ) as stream:
                deltas = [text async for text in stream.text_stream]
                answers.append((deltas, await stream.get_final_message()))
            await client.close()
    finally:
        pipe.cancel()
        upstream.cancel()

    (direct, direct_message), (piped, piped_message) = answers
    assert len(piped) == len(direct) >= 20
    assert piped == direct
    assert piped_message.content[0].text == direct_message.content[0].text


async def test_a_client_that_leaves_closes_its_upstream_connection() -> None:
    upstream_port, pipe_port = free_port(), free_port()
    opened: list[asyncio.StreamWriter] = []
    closed = asyncio.Event()

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened.append(writer)
        while await reader.read(1024):
            writer.write(b"echo")
        closed.set()

    server = await asyncio.start_server(upstream, "127.0.0.1", upstream_port)
    pipe = asyncio.create_task(_tcp_pipe.serve(f"http://127.0.0.1:{upstream_port}", pipe_port))
    try:
        for _ in range(100):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", pipe_port)
                break
            except OSError:
                await asyncio.sleep(0.02)
        writer.write(b"sent before the upstream was connected")
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"echo"
        writer.close()
        await asyncio.wait_for(closed.wait(), 5)
    finally:
        pipe.cancel()
        server.close()
    assert len(opened) == 1
