"""Upstream failures through the gateway: retries, fallback models, incomplete messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cerver.api import create_app
from cerver.client import AsyncClient
from cerver.gateway import Gateway
from cerver.store.schema import runs
from cerver.testing.mock_upstream import MockUpstream, Reply, UpstreamFailure
from tests.conftest import ADMIN_KEY, make_settings


@pytest.fixture
async def retrying(
    tmp_path: Path, sqlite_url: str, mock_upstream: MockUpstream
) -> AsyncIterator[tuple[Gateway, AsyncClient]]:
    """A gateway that retries (three attempts, no waiting) and a client for it."""
    settings = make_settings(
        tmp_path, sqlite_url, mock_upstream, upstream_max_attempts=3, upstream_retry_base_delay=0
    )
    gw = Gateway(settings)
    await gw.start()
    transport = httpx.ASGITransport(app=create_app(gw))
    try:
        async with AsyncClient("http://cerver.test", ADMIN_KEY, transport=transport) as c:
            yield gw, c
    finally:
        await gw.stop()


async def answered_model(gateway: Gateway, run_id: str) -> str | None:
    query = runs.select().where(runs.c.id == run_id)
    row = await gateway.store.db.read(lambda conn: conn.execute(query).one())
    return row.answered_model


async def test_429_and_500_are_retried_then_the_turn_succeeds(
    retrying: tuple[Gateway, AsyncClient], mock_upstream: MockUpstream
) -> None:
    gateway, client = retrying
    sid = (await client.create_session(compute=None))["session_id"]
    mock_upstream.script(
        Reply(error=UpstreamFailure(status=429, retry_after=0)),
        Reply(error=UpstreamFailure(status=500)),
        Reply(text="finally"),
    )
    result = await client.run_llm(sid, "hello")
    assert result["status"] == "completed" and result["message"]["content"] == "finally"
    assert len(mock_upstream.requests) == 3
    assert await answered_model(gateway, result["run_id"]) == "claude-sonnet-4-6"


async def test_fallback_models_answer_and_the_run_names_them(
    retrying: tuple[Gateway, AsyncClient], mock_upstream: MockUpstream
) -> None:
    gateway, client = retrying
    session = await client.create_session(
        compute=None, fallback_models=["claude-haiku-4-5", "claude-opus-4-6"]
    )
    assert session["fallback_models"] == ["claude-haiku-4-5", "claude-opus-4-6"]
    down = UpstreamFailure(status=529, type="overloaded_error")
    mock_upstream.script(
        *[Reply(error=down, model="claude-sonnet-4-6")] * 3,
        *[Reply(error=down, model="claude-haiku-4-5")] * 3,
        Reply(text="opus here", model="claude-opus-4-6"),
    )
    result = await client.run_llm(session["session_id"], "hello")
    assert result["message"]["model"] == "claude-opus-4-6"
    assert result["model"] == "claude-sonnet-4-6"  # what the turn asked for
    assert await answered_model(gateway, result["run_id"]) == "claude-opus-4-6"
    assert result["answered_model"] == "claude-opus-4-6"


async def test_a_4xx_is_not_retried(
    retrying: tuple[Gateway, AsyncClient], mock_upstream: MockUpstream
) -> None:
    _, client = retrying
    sid = (await client.create_session(compute=None, fallback_models=["claude-haiku-4-5"]))[
        "session_id"
    ]
    mock_upstream.script(Reply(error=UpstreamFailure(status=400, message="bad request")))
    events = [e async for e in client.stream_llm(sid, "hello")]
    assert [e.event for e in events][-2:] == ["usage", "turn.completed"]
    assert any(e.event == "error" for e in events)
    assert len(mock_upstream.requests) == 1


async def test_a_stream_failing_after_the_first_token_is_incomplete(
    retrying: tuple[Gateway, AsyncClient], mock_upstream: MockUpstream
) -> None:
    _, client = retrying
    sid = (await client.create_session(compute=None))["session_id"]
    mock_upstream.script(
        Reply(text="one two three four five six", fail_after_chunks=5, fail_with="disconnect")
    )
    events = [e async for e in client.stream_llm(sid, "hello")]
    names = [e.event for e in events]
    assert "text_delta" in names and "error" in names
    completed = events[-1].data
    assert completed["status"] == "failed"
    entries = (await client.messages(sid))["messages"]
    partial = [e for e in entries if e["role"] == "assistant"]
    assert [e["status"] for e in partial] == ["incomplete"]
    assert len(mock_upstream.requests) == 1  # text went out: never silently retried
