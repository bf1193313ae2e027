"""Model turns through the API, against the mock upstream (a test double)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from cerver.client import AsyncClient
from cerver.errors import SessionBusy, UpstreamError
from cerver.testing.mock_upstream import MockUpstream, Reply, UpstreamFailure


async def test_turn_runs_a_tool_in_the_sandbox_and_persists_each_entry(
    client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u1", harness="anthropic"))["session_id"]
    result = await client.run_llm(sid, "Please run `echo hello > f.txt && cat f.txt`")
    assert result["status"] == "completed"
    assert "hello" in result["message"]["content"]
    entries = (await client.messages(sid))["messages"]
    assert [(e["role"], e["kind"]) for e in entries] == [
        ("user", "text"),
        ("assistant", "tool_call"),
        ("tool", "tool_result"),
        ("assistant", "text"),
    ]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert entries[2]["parts"][0]["output"].strip().startswith("hello")
    for entry in entries[1:]:
        assert entry["run_id"] == result["run_id"]
        assert (entry["harness"], entry["provider"]) == ("anthropic", "anthropic")
    assert entries[3]["usage"]["output_tokens"] > 0
    # The file really is in the session's workspace.
    assert (await client.read_file(sid, "f.txt"))["content"] == "hello\n"
    metrics = await client.metrics(sid)
    assert metrics["interaction_count"] == 1
    assert metrics["by_harness"][0]["calls"] == 2
    assert metrics["total_exec_count"] == 1  # the agent's tool call ran through the meter
    assert metrics["time_to_first_exec_ms"] is not None
    assert len(mock_upstream.requests) == 2


async def test_swap_hands_the_whole_conversation_to_the_next_provider(
    client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u1", harness="anthropic"))["session_id"]
    await client.run_llm(sid, "run `echo swap-marker`")
    mock_upstream.reset()
    second = await client.run_llm(sid, "What did it print?", harness="openai", model="gpt-5")
    assert second["harness"] == "openai" and second["model"] == "gpt-5"
    [request] = mock_upstream.requests
    assert request["path"] == "/v1/responses"
    items = request["body"]["input"]
    types = [item.get("type", "message") for item in items]
    assert "function_call" in types and "function_call_output" in types
    call = next(i for i in items if i.get("type") == "function_call")
    assert "echo swap-marker" in call["arguments"]
    output = next(i for i in items if i.get("type") == "function_call_output")
    assert "swap-marker" in output["output"]
    assert "swap-marker" in second["message"]["content"]  # the mock summarises what it saw
    kinds = [e["kind"] for e in (await client.messages(sid))["messages"]]
    assert kinds.count("harness_switched") == 1
    session = await client.get_session(sid)
    assert (session["harness"], session["model"]) == ("openai", "gpt-5")


async def test_streaming_turn_sends_events_and_headers(http: httpx.AsyncClient) -> None:
    sid = (await http.post("/v2/sessions", json={"user": "u"})).json()["session_id"]
    response = await http.post(
        f"/v2/sessions/{sid}/run-llm", json={"input": "run `echo streamed`", "stream": True}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-cerver-session-id"] == sid
    assert response.headers["x-cerver-harness"] == "anthropic"
    assert response.headers["x-cerver-provider"] == "anthropic"
    assert float(response.headers["x-cerver-stream-latency-ms"]) >= 0
    events = [
        line.removeprefix("event: ")
        for line in response.text.splitlines()
        if line.startswith("event: ")
    ]
    assert events[0] == "turn.started"
    assert events[-2:] == ["usage", "turn.completed"]
    assert {"text_delta", "tool_call", "tool_result"} <= set(events)
    ids = [int(line[4:]) for line in response.text.splitlines() if line.startswith("id: ")]
    assert ids == sorted(ids) and len(ids) == len(set(ids))


async def test_accept_header_asks_for_a_stream(http: httpx.AsyncClient) -> None:
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    response = await http.post(
        f"/v2/sessions/{sid}/run-llm", json={"input": "hi"}, headers={"Accept": "text/event-stream"}
    )
    assert response.headers["content-type"].startswith("text/event-stream")


async def test_events_replay_after_last_event_id(client: AsyncClient) -> None:
    sid = (await client.create_session(user="u", compute=None))["session_id"]
    await client.run_llm(sid, "hello")
    everything = [e async for e in client.events(sid, follow=False)]
    assert everything[0].event == "turn.started" and everything[-1].event == "turn.completed"
    rest = [e async for e in client.events(sid, last_event_id=everything[1].id, follow=False)]
    assert [e.id for e in rest] == [e.id for e in everything[2:]]


async def test_upstream_error_fails_the_turn_and_keeps_the_session_usable(
    client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u", compute=None))["session_id"]
    mock_upstream.script(Reply(error=UpstreamFailure(status=500, message="boom")))
    with pytest.raises(UpstreamError) as exc:
        await client.run_llm(sid, "hello")
    assert exc.value.context["run_id"].startswith("run_")
    entries = (await client.messages(sid))["messages"]
    assert [(e["role"], e["kind"]) for e in entries] == [("user", "text"), ("event", "error")]
    ok = await client.run_llm(sid, "again")
    assert ok["status"] == "completed"
    assert (await client.get_session(sid))["status"] == "ready"


async def test_busy_session_rejects_or_enqueues(
    client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u", compute=None))["session_id"]
    mock_upstream.script(Reply(text="slow", delay_ms=1000))
    first = asyncio.create_task(client.run_llm(sid, "one"))
    # The first turn holds the lock once it calls the model. The mock logs requests from its
    # own thread and event loop, so there is no event to await here: poll its log.
    async with asyncio.timeout(10):
        while not mock_upstream.requests:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    with pytest.raises(SessionBusy):
        await client.run_llm(sid, "two", multitask="reject")
    queued = await client.run_llm(sid, "three")  # waits for the first turn
    assert (await first)["status"] == "completed" and queued["status"] == "completed"
    contents = [
        e["content"] for e in (await client.messages(sid))["messages"] if e["role"] == "user"
    ]
    assert contents == ["one", "three"]


async def test_tool_call_without_sandbox_is_not_offered(
    client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u", compute=None))["session_id"]
    await client.run_llm(sid, "run `ls`")
    assert (
        "tools" not in mock_upstream.requests[0]["body"]
        or not mock_upstream.requests[0]["body"]["tools"]
    )


async def test_event_replay_pages_through_long_logs(client: AsyncClient, gateway) -> None:
    from cerver.ids import new_id

    sid = (await client.create_session(compute=None))["session_id"]
    async with gateway.locks.hold(sid, new_id("run")) as writer:
        for i in range(1500):
            writer.emit("text_delta", {"text": str(i)})
    replayed = [e.id async for e in client.events(sid, follow=False)]
    assert replayed == list(range(1, 1501))
