"""The pydantic-ai harness: an Agent with the sandbox tools, against the mock upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cerver.testing.mock_upstream import MockUpstream, Reply, ToolCallSpec, UpstreamFailure
from cerver.testing.sandbox import ShellSandbox
from cerver.types import Entry, ToolCallPart, ToolResultPart
from harnesses.base import Error, Message, TextDelta, TurnContext, TurnOptions, Usage
from harnesses.retry import RetryPolicy

pytest.importorskip("pydantic_ai")
from harnesses.pydantic_ai import PydanticAIHarness

MODELS = ["openai:gpt-5", "openai-responses:gpt-5", "anthropic:claude-haiku-4-5"]


@pytest.fixture
async def pai(upstream: MockUpstream) -> AsyncIterator[PydanticAIHarness]:
    harness = PydanticAIHarness(
        base_url=upstream.openai_base_url,
        api_key="test-key",
        anthropic_base_url=upstream.anthropic_base_url,
        anthropic_api_key="test-key",
    )
    harness.retry = RetryPolicy(max_attempts=1)
    yield harness
    await harness.aclose()


def turn(text: str, model: str, **kwargs) -> TurnContext:
    options = TurnOptions(**kwargs.pop("options", {}))
    return TurnContext("sess_t", "run_t", kwargs.pop("history", []), text, model, options, **kwargs)


async def collect(harness: PydanticAIHarness, t: TurnContext) -> list:
    return [e async for e in harness.run(t)]


@pytest.mark.parametrize("model", MODELS)
async def test_text_turn_streams_and_is_priced(
    pai: PydanticAIHarness, upstream: MockUpstream, model: str
) -> None:
    upstream.script(Reply(text="Hello there.", usage={"input_tokens": 1000, "output_tokens": 10}))
    events = await collect(pai, turn("hi", model, options={"system_prompt": "Be brief."}))
    assert not any(isinstance(e, Error) for e in events)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there."
    (usage,) = [e for e in events if isinstance(e, Usage)]
    assert usage.usage.input_tokens == 1000 and usage.usage.cost_usd is not None
    (entry,) = [e.entry for e in events if isinstance(e, Message)]
    assert (entry.harness, entry.model, entry.content) == ("pydantic-ai", model, "Hello there.")
    assert entry.provider == model.split(":")[0].removesuffix("-responses")
    assert "Be brief." in str(upstream.requests[0]["body"])


@pytest.mark.parametrize("model", MODELS)
async def test_tools_run_on_the_sandbox(
    pai: PydanticAIHarness, sandbox: ShellSandbox, model: str
) -> None:
    events = await collect(
        pai, turn("please run `echo hi > f.txt && cat f.txt`", model, sandbox=sandbox)
    )
    assert not any(isinstance(e, Error) for e in events), events
    assert (sandbox.root / "f.txt").read_text() == "hi\n"
    call, result, answer = [e.entry for e in events if isinstance(e, Message)]
    assert call.tool_call is not None and call.tool_call.name == "bash"
    assert result.tool_result == ToolResultPart(tool_call_id=call.tool_call.id, output="hi")
    assert answer.content == "[mock upstream] The tool returned: hi"
    assert len([e for e in events if isinstance(e, Usage)]) == 2


async def test_history_from_other_harnesses_is_replayed(
    pai: PydanticAIHarness, upstream: MockUpstream
) -> None:
    history = [
        Entry(role="user", content="first"),
        Entry(
            role="assistant",
            kind="tool_call",
            parts=[ToolCallPart(id="toolu_1", name="bash", arguments={"command": "ls"})],
        ),
        Entry(
            role="tool",
            kind="tool_result",
            parts=[ToolResultPart(tool_call_id="toolu_1", output="a.txt")],
        ),
        Entry(role="assistant", content="There is a.txt."),
        Entry(role="event", kind="harness_switched"),
    ]
    upstream.script(Reply(text="ok"))
    events = await collect(pai, turn("second", "openai:gpt-5", history=history))
    assert not any(isinstance(e, Error) for e in events)
    roles = [m["role"] for m in upstream.requests[0]["body"]["messages"]]
    # No sandbox: tool items are replayed as text; roles alternate.
    assert roles == ["user", "assistant", "user", "assistant", "user"]


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (429, True), (400, False)])
async def test_upstream_errors(
    pai: PydanticAIHarness, upstream: MockUpstream, status: int, retryable: bool
) -> None:
    upstream.script(Reply(error=UpstreamFailure(status=status)))
    (error,) = await collect(pai, turn("hi", "openai:gpt-5"))
    assert isinstance(error, Error) and error.code == "upstream_error"
    assert error.retryable is retryable
    assert len(upstream.requests) == 1


async def test_retry_layer_applies(pai: PydanticAIHarness, upstream: MockUpstream) -> None:
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)

    pai.retry = RetryPolicy(max_attempts=2, sleep=record)
    upstream.script(Reply(error=UpstreamFailure(status=503, retry_after=1)), Reply(text="ok"))
    events = await collect(pai, turn("hi", "openai:gpt-5"))
    assert delays == [1.0]
    assert [e.entry.content for e in events if isinstance(e, Message)] == ["ok"]


async def test_unsupported_model_names_the_supported_prefixes(pai: PydanticAIHarness) -> None:
    (error,) = await collect(pai, turn("hi", "gemini:gemini-2.5-pro"))
    assert isinstance(error, Error) and "'openai:<model>'" in error.message


async def test_max_steps_keeps_every_call_answered(
    pai: PydanticAIHarness, upstream: MockUpstream, sandbox: ShellSandbox
) -> None:
    loop = Reply(tool_calls=[ToolCallSpec(name="bash", arguments={"command": "echo again"})])
    upstream.script(loop, loop, loop)
    t = turn("loop", "openai:gpt-5", sandbox=sandbox, options={"max_steps": 2})
    events = await collect(pai, t)
    assert [e.entry.kind for e in events if isinstance(e, Message)] == [
        "tool_call",
        "tool_result",
    ] * 2
    assert isinstance(events[-1], Error) and events[-1].code == "max_steps"
    assert len(upstream.requests) == 2


@pytest.mark.parametrize("model", ["openai:gpt-5", "anthropic:claude-haiku-4-5"])
async def test_the_apps_tools_are_handed_back_and_the_turn_continues(
    pai: PydanticAIHarness, upstream: MockUpstream, model: str
) -> None:
    from harnesses.tools import CLIENT_TOOL_KEY, ToolSpec

    refund = ToolSpec("refund", "Refund an order.", {"type": "object", "properties": {}})
    upstream.script(Reply(tool_calls=[ToolCallSpec(name="refund", arguments={"order": "9"})]))
    events = await collect(pai, turn("Refund order 9", model, client_tools=(refund,)))
    assert not any(isinstance(e, Error) for e in events), events
    (call,) = [e.entry for e in events if isinstance(e, Message)]
    assert call.metadata == {CLIENT_TOOL_KEY: True}
    assert call.tool_call is not None and call.tool_call.arguments == {"order": "9"}

    result = ToolResultPart(tool_call_id=call.tool_call.id, output="refunded")
    history = [
        Entry(role="user", content="Refund order 9"),
        call,
        Entry(role="tool", kind="tool_result", content="refunded", parts=[result]),
    ]
    events = await collect(pai, turn("", model, history=history, client_tools=(refund,)))
    assert not any(isinstance(e, Error) for e in events), events
    (answer,) = [e.entry for e in events if isinstance(e, Message)]
    assert answer.content == "[mock upstream] The tool returned: refunded"
