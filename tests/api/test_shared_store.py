"""Two gateways sharing one PostgreSQL store behave as one: the multi-process deployment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cerver.api import create_app
from cerver.client import AsyncClient
from cerver.gateway import Gateway
from cerver.testing.mock_upstream import MockUpstream, Reply
from tests.conftest import ADMIN_KEY, make_settings

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
]


@pytest.fixture
async def postgres_url(database_url: str) -> str:
    return database_url


@pytest.fixture
async def two_gateways(
    tmp_path: Path, postgres_url: str, mock_upstream: MockUpstream
) -> AsyncIterator[tuple[AsyncClient, AsyncClient]]:
    gateways = [
        Gateway(make_settings(tmp_path / name, postgres_url, mock_upstream)) for name in "ab"
    ]
    for gateway in gateways:
        await gateway.start()
    clients = [
        AsyncClient("http://t", ADMIN_KEY, transport=httpx.ASGITransport(app=create_app(g)))
        for g in gateways
    ]
    try:
        yield clients[0], clients[1]
    finally:
        for client in clients:
            await client.aclose()
        for gateway in gateways:
            await gateway.stop()


async def test_main_flow_on_postgres(two_gateways, mock_upstream: MockUpstream) -> None:
    a, b = two_gateways
    sid = (await a.create_session(user="pg-user", harness="anthropic", compute=None))["session_id"]
    await a.run_llm(sid, "hello from gateway a")
    second = await b.run_llm(sid, "and from b", harness="openai", model="gpt-5")
    assert "hello from gateway a" in second["message"]["content"]
    listed = await b.list_sessions(user="pg-user")
    assert [s["session_id"] for s in listed["sessions"]] == [sid]
    entries = (await a.messages(sid))["messages"]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))


async def test_turns_on_one_session_never_interleave_across_gateways(
    two_gateways, mock_upstream: MockUpstream
) -> None:
    a, b = two_gateways
    sid = (await a.create_session(user="u", compute=None))["session_id"]
    mock_upstream.script(*[Reply(text=f"answer {i}", delay_ms=50) for i in range(6)])
    turns = [(a if i % 2 else b).run_llm(sid, f"question {i}") for i in range(6)]
    results = await asyncio.gather(*turns)
    assert all(r["status"] == "completed" for r in results)
    entries = (await a.messages(sid))["messages"]
    assert [e["seq"] for e in entries] == list(range(1, 13))
    # Each user message is followed by its own answer: the lock held across processes.
    roles = [e["role"] for e in entries]
    assert roles == ["user", "assistant"] * 6
    runs = [(entries[i]["run_id"], entries[i + 1]["run_id"]) for i in range(0, 12, 2)]
    assert all(user_run == answer_run for user_run, answer_run in runs)
