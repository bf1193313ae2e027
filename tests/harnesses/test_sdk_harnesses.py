"""Both SDK harnesses, end to end against the mock upstream, through the real SDKs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cerver.errors import HarnessError
from cerver.retry import RetryPolicy
from cerver.testing.mock_upstream import MockUpstream, Reply, ToolCallSpec, UpstreamFailure
from cerver.types import Entry, ToolResultPart
from harnesses._loop import ToolLoopHarness
from harnesses.anthropic import AnthropicHarness
from harnesses.base import Error, HarnessEvent, Message, TextDelta, TurnContext, TurnOptions, Usage
from harnesses.openai import OpenAIHarness

NO_RETRY = RetryPolicy(max_attempts=1)

if TYPE_CHECKING:
    from cerver.testing.sandbox import ShellSandbox


def make_turn(
    harness: ToolLoopHarness,
    text: str,
    *,
    sandbox: Any = None,
    history: Sequence[Entry] = (),
    **options: Any,
) -> TurnContext:
    return TurnContext(
        session_id="sess_test",
        run_id="run_test",
        history=list(history),
        input=text,
        model=harness.default_model,
        options=TurnOptions(**options),
        sandbox=sandbox,
    )


async def collect(harness: ToolLoopHarness, turn: TurnContext) -> list[HarnessEvent]:
    return [event async for event in harness.run(turn)]


def messages(events: Sequence[HarnessEvent]) -> list[Entry]:
    return [e.entry for e in events if isinstance(e, Message)]


def request_bodies(upstream: MockUpstream) -> list[dict[str, Any]]:
    return [r["body"] for r in upstream.requests]


def assert_event_contract(events: Sequence[HarnessEvent]) -> None:
    """At most one Error and only last; every tool call is followed by its result."""
    errors = [i for i, e in enumerate(events) if isinstance(e, Error)]
    assert errors in ([], [len(events) - 1])
    entries = messages(events)
    calls = [e.tool_call.id for e in entries if e.tool_call]
    results = [e.tool_result.tool_call_id for e in entries if e.tool_result]
    assert calls == results


async def test_text_turn(harness: ToolLoopHarness, upstream: MockUpstream) -> None:
    upstream.script(Reply(text="Hello from the model."))
    turn = make_turn(harness, "hi", system_prompt="Be brief.", max_tokens=123, temperature=0.5)
    events = await collect(harness, turn)

    assert_event_contract(events)
    deltas = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert deltas == "Hello from the model."
    usage = [e for e in events if isinstance(e, Usage)]
    assert len(usage) == 1
    assert usage[0].model == harness.default_model
    assert usage[0].provider == harness.provider
    assert usage[0].usage.output_tokens > 0 and usage[0].latency_ms is not None
    (entry,) = messages(events)
    assert (entry.role, entry.kind, entry.content) == ("assistant", "text", deltas)
    assert (entry.harness, entry.model, entry.provider) == (
        harness.name,
        harness.default_model,
        harness.provider,
    )
    assert entry.usage == usage[0].usage and entry.latency_ms == usage[0].latency_ms

    (body,) = request_bodies(upstream)
    assert body["stream"] is True
    assert "tools" not in body  # transcript-only: no tools offered
    assert body["temperature"] == 0.5
    if harness.provider == "anthropic":
        assert body["system"] == "Be brief."
        assert body["max_tokens"] == 123
    else:
        assert body["instructions"] == "Be brief."
        assert body["max_output_tokens"] == 123
        assert body["store"] is False


async def test_tool_loop_runs_on_the_sandbox(
    harness: ToolLoopHarness, upstream: MockUpstream, sandbox: ShellSandbox
) -> None:
    # The mock's default: call the shell tool with the backticked command, then summarise.
    turn = make_turn(harness, "please run `echo hi > f.txt && cat f.txt`", sandbox=sandbox)
    events = await collect(harness, turn)

    assert_event_contract(events)
    assert not any(isinstance(e, Error) for e in events)
    assert (sandbox.root / "f.txt").read_text() == "hi\n"
    call, result, answer = messages(events)
    assert call.kind == "tool_call" and call.tool_call is not None
    assert call.tool_call.arguments == {"command": "echo hi > f.txt && cat f.txt"}
    assert call.usage is not None  # no text in that step: the call carries its usage
    assert (result.role, result.kind, result.content) == ("tool", "tool_result", "hi")
    assert result.tool_result == ToolResultPart(tool_call_id=call.tool_call.id, output="hi")
    assert result.latency_ms is not None and result.harness == harness.name
    assert answer.content == "[mock upstream] The tool returned: hi"
    assert sum(isinstance(e, Usage) for e in events) == 2

    first, second = request_bodies(upstream)
    tool_names = [t["name"] for t in first["tools"]]
    assert tool_names == ["bash", "read_file", "write_file"]
    assert "hi" in json.dumps(second)  # the tool result went back to the model


async def test_scripted_file_tools(
    harness: ToolLoopHarness, upstream: MockUpstream, sandbox: ShellSandbox
) -> None:
    upstream.script(
        Reply(
            text="Writing.",
            tool_calls=[
                ToolCallSpec(name="write_file", arguments={"path": "a.txt", "content": "x"}),
                ToolCallSpec(name="read_file", arguments={"path": "missing.txt"}),
            ],
        ),
        Reply(text="Done."),
    )
    events = await collect(harness, make_turn(harness, "write a file", sandbox=sandbox))
    assert_event_contract(events)
    kinds = [e.kind for e in messages(events)]
    assert kinds == ["text", "tool_call", "tool_call", "tool_result", "tool_result", "text"]
    results = [e.tool_result for e in messages(events) if e.tool_result]
    assert [r.is_error for r in results if r] == [False, True]
    assert (sandbox.root / "a.txt").read_text() == "x"


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (500, True), (400, False)])
async def test_upstream_http_error(
    harness: ToolLoopHarness, upstream: MockUpstream, status: int, retryable: bool
) -> None:
    upstream.script(Reply(error=UpstreamFailure(status=status, message="scripted trouble")))
    events = await collect(harness, make_turn(harness, "hi"))
    assert len(events) == 1
    (error,) = events
    assert isinstance(error, Error)
    assert error.code == "upstream_error"
    assert error.retryable is retryable
    assert str(status) in error.message and "scripted trouble" in error.message
    assert len(upstream.requests) == 1  # the SDK's own retries are off


async def test_error_mid_stream_keeps_the_partial_text(
    harness: ToolLoopHarness, upstream: MockUpstream
) -> None:
    upstream.script(
        Reply(text="one two three four five six", fail_after_chunks=5, fail_with="error_event")
    )
    events = await collect(harness, make_turn(harness, "hi"))
    assert_event_contract(events)
    error = events[-1]
    assert isinstance(error, Error) and error.code == "upstream_error" and error.retryable
    assert "in the response stream" in error.message
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert streamed.startswith("one ")
    assert [(e.content, e.status) for e in messages(events)] == [(streamed, "incomplete")]


async def test_dropped_connection_is_a_retryable_error(
    harness: ToolLoopHarness, upstream: MockUpstream
) -> None:
    upstream.script(Reply(text="one two three four", fail_after_chunks=2, fail_with="disconnect"))
    events = await collect(harness, make_turn(harness, "hi"))
    assert isinstance(events[-1], Error)
    assert events[-1].code == "upstream_error" and events[-1].retryable


@pytest.mark.parametrize("name", ["anthropic", "openai"])
async def test_unreachable_upstream(name: str) -> None:
    cls = {"anthropic": AnthropicHarness, "openai": OpenAIHarness}[name]
    base_url = "http://127.0.0.1:9" + ("/v1" if name == "openai" else "")
    async with cls(base_url=base_url, api_key="k") as harness:
        harness.retry = NO_RETRY
        events = await collect(harness, make_turn(harness, "hi"))
    (error,) = events
    assert isinstance(error, Error)
    assert error.retryable and error.message.startswith("Connection to the")


async def test_max_steps(
    harness: ToolLoopHarness, upstream: MockUpstream, sandbox: ShellSandbox
) -> None:
    loop = Reply(tool_calls=[ToolCallSpec(name="bash", arguments={"command": "echo again"})])
    upstream.script(loop, loop, loop)
    events = await collect(harness, make_turn(harness, "loop", sandbox=sandbox, max_steps=2))

    assert_event_contract(events)
    assert len(upstream.requests) == 2
    assert [e.kind for e in messages(events)] == ["tool_call", "tool_result"] * 2
    error = events[-1]
    assert isinstance(error, Error) and error.code == "max_steps" and not error.retryable
    assert "max_steps=2" in error.message


async def test_tool_call_without_sandbox_gets_an_error_result(
    harness: ToolLoopHarness, upstream: MockUpstream
) -> None:
    upstream.script(
        Reply(tool_calls=[ToolCallSpec(name="bash", arguments={"command": "ls"})]),
        Reply(text="I cannot run tools here."),
    )
    events = await collect(harness, make_turn(harness, "ls please"))
    assert_event_contract(events)
    result = next(e.tool_result for e in messages(events) if e.tool_result)
    assert result is not None and result.is_error and "transcript-only" in result.output
    # The second request replays the call and its result as text: no tools were offered.
    second = json.dumps(request_bodies(upstream)[1])
    assert "[tool call" in second and "tool_use" not in second and "function_call" not in second


async def test_cancellation_propagates(harness: ToolLoopHarness, upstream: MockUpstream) -> None:
    upstream.script(Reply(text="slow", stall_ms=10_000))
    task = asyncio.create_task(collect(harness, make_turn(harness, "hi")))
    for _ in range(200):
        if upstream.requests:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)


async def test_history_from_earlier_turns_is_replayed(
    harness: ToolLoopHarness, upstream: MockUpstream
) -> None:
    history = [
        Entry(role="user", content="first question"),
        Entry(role="event", kind="harness_switched", content="switched"),
        Entry(role="assistant", content="first answer", provider="someone-else"),
    ]
    upstream.script(Reply(text="ok"))
    await collect(harness, make_turn(harness, "second question", history=history))
    dumped = json.dumps(request_bodies(upstream)[0])
    for text in ("first question", "first answer", "second question"):
        assert text in dumped
    assert "switched" not in dumped


async def test_aclose_closes_only_an_owned_client(upstream: MockUpstream) -> None:
    import anthropic

    owned = AnthropicHarness(base_url=upstream.anthropic_base_url, api_key="k")
    await owned.aclose()
    assert owned._client.is_closed()

    client = anthropic.AsyncAnthropic(base_url=upstream.anthropic_base_url, api_key="k")
    borrowed = AnthropicHarness(client=client)
    await borrowed.aclose()
    assert not client.is_closed()
    await client.close()


def test_openai_without_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(HarnessError, match="OPENAI_API_KEY"):
        OpenAIHarness(base_url="http://127.0.0.1:9/v1")


def test_base_url_and_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:1234")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:5678/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    assert str(AnthropicHarness()._client.base_url).startswith("http://127.0.0.1:1234")
    assert AnthropicHarness()._client.api_key == "env-key"
    assert str(OpenAIHarness()._client.base_url).startswith("http://127.0.0.1:5678/v1")
    assert OpenAIHarness(api_key="explicit")._client.api_key == "explicit"


async def test_tool_loop_on_the_local_compute(
    harness: ToolLoopHarness, upstream: MockUpstream, tmp_path: Path
) -> None:
    local = pytest.importorskip("compute.local")
    from compute.base import SandboxSpec

    compute = local.LocalCompute(tmp_path, isolation="none")
    sandbox = await compute.create(SandboxSpec(session_id="sess_test"))
    try:
        turn = make_turn(harness, "run `echo hi > f.txt && cat f.txt`", sandbox=sandbox)
        events = await collect(harness, turn)
        assert_event_contract(events)
        result = next(e.tool_result for e in messages(events) if e.tool_result)
        assert result == ToolResultPart(tool_call_id=result.tool_call_id, output="hi")
        assert await sandbox.read_file("f.txt") == b"hi\n"
    finally:
        await sandbox.delete()
        await compute.aclose()
