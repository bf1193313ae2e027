"""One failure, one value: the same upstream failure reads the same (code, message,
retryable) in the SSE ``error`` event, the turn's result, the transcript, the HTTP error body
and a fan-out variant's ``error``. Against the mock upstream (a test double)."""

from __future__ import annotations

import httpx
import pytest

from cerver.client import AsyncClient
from cerver.errors import UpstreamError
from cerver.testing.mock_upstream import MockUpstream, Reply, UpstreamFailure

# A 503: retryable, so that ``retryable`` is checked as true, not merely defaulted.
DOWN = UpstreamFailure(status=503, message="[mock upstream] the model is down")


def _same(error: dict) -> tuple[str, str, bool]:
    return error["code"], error["detail"], error["retryable"]


async def test_one_failure_reads_the_same_everywhere(
    client: AsyncClient, http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u", harness="anthropic", compute=None))["session_id"]

    mock_upstream.script(Reply(error=DOWN))
    events = [e async for e in client.stream_llm(sid, "hello")]
    streamed = next(e.data for e in events if e.event == "error")
    result = next(e.data for e in events if e.event == "turn.completed")
    assert result["status"] == "failed"

    mock_upstream.script(Reply(error=DOWN))
    answered = await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "hello"})
    assert answered.status_code == 502
    body = answered.json()
    assert body["context"]["session_id"] == sid and body["context"]["run_id"].startswith("run_")

    mock_upstream.script(Reply(error=DOWN))
    fanout = await client.fanout("hello", [{"harness": "anthropic"}], session_id=sid, keep="none")
    variant = fanout["variants"][0]
    assert variant["status"] == "failed"

    entry = next(e for e in (await client.messages(sid))["messages"] if e["kind"] == "error")

    expected = (
        "upstream_error",
        "Anthropic API error 503: [mock upstream] the model is down",
        True,
    )
    assert _same(streamed) == expected
    assert _same(result["error"]) == expected
    assert _same(body) == expected
    assert _same(variant["error"]) == expected
    assert (entry["metadata"]["code"], entry["content"], entry["metadata"]["retryable"]) == (
        expected
    )
    # The harness's context travels with it (the provider's status), in every form.
    for error in (streamed, result["error"], body, variant["error"], entry["metadata"]):
        assert error["context"]["status"] == 503


async def test_the_client_raises_the_class_of_the_code(
    client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u", compute=None))["session_id"]
    mock_upstream.script(Reply(error=DOWN))
    with pytest.raises(UpstreamError) as info:
        await client.run_llm(sid, "hello")
    assert info.value.retryable and info.value.context["status"] == 503
