"""The LiteLLM harness against the mock upstream's Chat Completions endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cerver.registry import harness_registry, model_for_alias
from cerver.retry import RetryPolicy
from cerver.testing.mock_upstream import MockUpstream, Reply, UpstreamFailure
from cerver.testing.sandbox import ShellSandbox
from harnesses.base import Error, Message, TextDelta, TurnContext, TurnOptions, Usage
from harnesses.litellm import LiteLLMHarness

pytest.importorskip("litellm")


@pytest.fixture
async def litellm_harness(upstream: MockUpstream) -> AsyncIterator[LiteLLMHarness]:
    harness = LiteLLMHarness(base_url=upstream.openai_base_url, api_key="test-key")
    harness.retry = RetryPolicy(max_attempts=1)
    yield harness
    await harness.aclose()


def turn(text: str, model: str = "xai/grok-4", **kwargs) -> TurnContext:
    return TurnContext(
        session_id="sess_t",
        run_id="run_t",
        history=[],
        input=text,
        model=model,
        options=TurnOptions(**kwargs.pop("options", {})),
        **kwargs,
    )


async def collect(harness: LiteLLMHarness, t: TurnContext) -> list:
    return [e async for e in harness.run(t)]


async def test_text_turn_is_streamed_and_priced(
    litellm_harness: LiteLLMHarness, upstream: MockUpstream
) -> None:
    upstream.script(
        Reply(text="Hello from grok.", usage={"input_tokens": 100, "output_tokens": 20})
    )
    events = await collect(litellm_harness, turn("hi", options={"system_prompt": "Be brief."}))

    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello from grok."
    (usage,) = [e for e in events if isinstance(e, Usage)]
    assert (usage.model, usage.provider) == ("xai/grok-4", "xai")
    # The fixture table (tests/prices.json) prices xai/grok-4 at $3 / $15 per million tokens.
    assert usage.usage.cost_usd == pytest.approx(100 * 3e-6 + 20 * 15e-6)
    (entry,) = [e.entry for e in events if isinstance(e, Message)]
    assert (entry.harness, entry.model, entry.provider) == ("litellm", "xai/grok-4", "xai")
    assert entry.usage == usage.usage
    (request,) = upstream.requests
    assert request["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert request["body"]["stream"] is True


async def test_unknown_model_is_recorded_with_a_null_cost_and_a_reason(
    litellm_harness: LiteLLMHarness, upstream: MockUpstream
) -> None:
    upstream.script(Reply(text="local answer"))
    events = await collect(litellm_harness, turn("hi", model="openai/my-local-llama"))
    (usage,) = [e for e in events if isinstance(e, Usage)]
    assert usage.usage.cost_usd is None
    assert "has no known price" in (usage.usage.cost_reason or "")
    assert usage.usage.output_tokens > 0  # tokens are still recorded


async def test_tool_loop_runs_on_the_sandbox(
    litellm_harness: LiteLLMHarness, sandbox: ShellSandbox
) -> None:
    events = await collect(
        litellm_harness, turn("please run `echo hi > f.txt && cat f.txt`", sandbox=sandbox)
    )
    assert not any(isinstance(e, Error) for e in events)
    assert (sandbox.root / "f.txt").read_text() == "hi\n"
    call, result, answer = [e.entry for e in events if isinstance(e, Message)]
    assert call.tool_call is not None and call.tool_call.name == "bash"
    assert result.tool_result is not None
    assert result.tool_result.tool_call_id == call.tool_call.id
    assert answer.content == "[mock upstream] The tool returned: hi"


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (503, True), (400, False)])
async def test_upstream_errors_are_translated(
    litellm_harness: LiteLLMHarness, upstream: MockUpstream, status: int, retryable: bool
) -> None:
    upstream.script(Reply(error=UpstreamFailure(status=status, message="scripted trouble")))
    events = await collect(litellm_harness, turn("hi"))
    (error,) = events
    assert isinstance(error, Error) and error.code == "upstream_error"
    assert error.retryable is retryable
    assert len(upstream.requests) == 1  # LiteLLM's own retries are off


def test_seed_aliases_resolve_to_litellm_with_xai_models() -> None:
    assert harness_registry.canonical("grok") == "litellm"
    assert harness_registry.canonical("xai") == "litellm"
    assert model_for_alias("grok", "grok-4") == "xai/grok-4"
    assert model_for_alias("xai", "xai/grok-4") == "xai/grok-4"
    assert model_for_alias("litellm", "gemini/gemini-2.5-pro") == "gemini/gemini-2.5-pro"


async def test_retry_after_is_honoured(
    litellm_harness: LiteLLMHarness, upstream: MockUpstream
) -> None:
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)

    litellm_harness.retry = RetryPolicy(max_attempts=2, sleep=record)
    upstream.script(Reply(error=UpstreamFailure(status=429, retry_after=2)), Reply(text="ok"))
    events = await collect(litellm_harness, turn("hi"))
    assert delays == [2.0]
    assert [e.entry.content for e in events if isinstance(e, Message)] == ["ok"]
