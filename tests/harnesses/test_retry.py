"""The retry layer: backoff and Retry-After, which failures retry, fallback models, and
failures after the first token (scripted on the mock upstream)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cerver.errors import UpstreamError
from cerver.retry import RetryPolicy, retry_after_seconds, status_is_retryable
from cerver.testing.mock_upstream import MockUpstream, Reply, ToolCallSpec, UpstreamFailure
from cerver.testing.sandbox import ShellSandbox
from harnesses._loop import ToolLoopHarness
from harnesses.anthropic import AnthropicHarness
from harnesses.base import Error, TurnContext, Usage
from tests.harnesses.test_sdk_harnesses import collect, make_turn, messages


class Sleeps(list[float]):
    """Records the delays the policy asks for instead of sleeping."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps(harness: ToolLoopHarness) -> Sleeps:
    recorded = Sleeps()
    harness.retry = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=3.0, sleep=recorded)
    return recorded


def with_fallbacks(turn: TurnContext, *models: str) -> TurnContext:
    turn.fallback_models = models
    return turn


async def test_429_honours_retry_after_then_succeeds(
    harness: ToolLoopHarness, upstream: MockUpstream, sleeps: Sleeps
) -> None:
    upstream.script(
        Reply(error=UpstreamFailure(status=429, retry_after=2)), Reply(text="second time lucky")
    )
    events = await collect(harness, make_turn(harness, "hi"))
    assert sleeps == [2.0]
    assert [m.content for m in messages(events)] == ["second time lucky"]
    assert len(upstream.requests) == 2


async def test_5xx_backs_off_exponentially_up_to_max_attempts(
    harness: ToolLoopHarness, upstream: MockUpstream, sleeps: Sleeps
) -> None:
    harness.retry = RetryPolicy(max_attempts=3, base_delay=1.0, jitter=0.0, sleep=sleeps)
    failure = Reply(error=UpstreamFailure(status=529 if harness.provider == "anthropic" else 503))
    upstream.script(failure, failure, failure)
    events = await collect(harness, make_turn(harness, "hi"))
    assert sleeps == [1.0, 2.0]
    (error,) = events
    assert isinstance(error, Error) and error.retryable
    assert len(upstream.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_other_4xx_never_retry_nor_fall_back(
    harness: ToolLoopHarness, upstream: MockUpstream, sleeps: Sleeps, status: int
) -> None:
    upstream.script(Reply(error=UpstreamFailure(status=status)))
    turn = with_fallbacks(make_turn(harness, "hi"), "backup-model")
    events = await collect(harness, turn)
    assert sleeps == []
    assert isinstance(events[-1], Error) and not events[-1].retryable
    assert len(upstream.requests) == 1


async def test_fallback_models_answer_when_the_model_stays_down(
    harness: ToolLoopHarness, upstream: MockUpstream, sleeps: Sleeps
) -> None:
    down = Reply(error=UpstreamFailure(status=500), model=harness.default_model)
    upstream.script(down, down, down, Reply(text="from the backup", model="backup-*"))
    turn = with_fallbacks(make_turn(harness, "hi"), "backup-1")
    events = await collect(harness, turn)

    assert [r["body"]["model"] for r in upstream.requests] == [harness.default_model] * 3 + [
        "backup-1"
    ]
    (entry,) = messages(events)
    assert (entry.content, entry.model) == ("from the backup", "backup-1")
    (usage,) = [e for e in events if isinstance(e, Usage)]
    assert usage.model == "backup-1"


async def test_a_stream_failing_after_the_first_token_is_incomplete_and_not_retried(
    harness: ToolLoopHarness, upstream: MockUpstream, sleeps: Sleeps
) -> None:
    upstream.script(
        Reply(text="one two three four five six", fail_after_chunks=5, fail_with="disconnect")
    )
    turn = with_fallbacks(make_turn(harness, "hi"), "backup-1")
    events = await collect(harness, turn)
    assert isinstance(events[-1], Error) and events[-1].code == "upstream_error"
    (partial,) = messages(events)
    assert partial.status == "incomplete" and partial.content
    assert len(upstream.requests) == 1 and sleeps == []


async def test_a_stalled_upstream_times_out_and_is_retried(
    upstream: MockUpstream, make_harness
) -> None:
    harness = AnthropicHarness(base_url=upstream.anthropic_base_url, api_key="k", timeout=0.3)
    recorded = Sleeps()
    harness.retry = RetryPolicy(max_attempts=2, base_delay=0.0, sleep=recorded)
    upstream.script(Reply(text="late", stall_ms=30_000), Reply(text="on time"))
    try:
        events = await collect(harness, make_turn(harness, "hi"))
    finally:
        await harness.aclose()
    assert [m.content for m in messages(events)] == ["on time"]
    assert len(recorded) == 1


def test_policy_delays() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=3.0, random=lambda: 1.0)
    busy = UpstreamError("busy", retryable=True)
    # Jitter draws from [d/2, d]; with random() = 1 the lower bound: 0.5, 1, 1.5 (capped 3).
    assert [policy.delay(busy, n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 1.5, 1.5]
    assert policy.delay(busy, 5) is None  # attempts used up
    assert policy.delay(UpstreamError("bad", retryable=False), 1) is None
    long_wait = UpstreamError("later", retryable=True, context={"retry_after": 3600})
    assert policy.delay(long_wait, 1) is None  # longer than max_retry_after: fall back instead


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert retry_after_seconds(None) is None


def test_one_status_rule_for_every_harness() -> None:
    # The SDK loop, pydantic-ai and the CLI event parsers all ask status_is_retryable.
    assert [s for s in (400, 401, 403, 404, 408, 409, 422, 429) if status_is_retryable(s)] == [
        408,
        409,
        429,
    ]
    assert all(status_is_retryable(s) for s in (500, 502, 503, 504, 529))


async def test_a_stream_silent_before_any_text_is_abandoned_and_retried(
    harness: ToolLoopHarness, upstream: MockUpstream, sleeps: Sleeps
) -> None:
    # Long enough that the retry's own first event comes in time on a loaded machine (CI once
    # saw it miss 1 s and retry again); the first reply still stalls far past it.
    harness.idle_timeout = 3.0
    upstream.script(Reply(text="never sent", stall_ms=30_000), Reply(text="second time lucky"))
    events = await collect(harness, make_turn(harness, "hi"))
    assert [m.content for m in messages(events)] == ["second time lucky"]
    assert len(sleeps) == 1 and len(upstream.requests) == 2


async def test_a_stream_silent_after_text_keeps_it_incomplete_and_fails_the_turn(
    make_harness: Callable[[str], ToolLoopHarness], upstream: MockUpstream
) -> None:
    harness = make_harness("anthropic")
    harness.idle_timeout = 1.0
    # message_start, ping, content_block_start and the first word arrive; then silence.
    upstream.script(Reply(text="alpha beta gamma", stall_ms=30_000, stall_after_chunks=4))
    events = await collect(harness, make_turn(harness, "hi"))
    [partial] = messages(events)
    assert partial.content.strip() == "alpha" and partial.status == "incomplete"
    error = events[-1]
    assert isinstance(error, Error) and error.code == "upstream_error" and error.retryable
    assert "went silent" in error.message
    assert len(upstream.requests) == 1  # text went out: not retried


async def test_a_slow_tool_call_without_text_is_not_mistaken_for_a_stall(
    harness: ToolLoopHarness, upstream: MockUpstream, sandbox: ShellSandbox
) -> None:
    harness.idle_timeout = 1.0
    call = ToolCallSpec(name="bash", arguments={"command": "echo streamed slowly"})
    # Every chunk is 0.3 s apart: the call takes longer than the idle timeout in all, but
    # its stream never goes silent for that long.
    upstream.script(Reply(tool_calls=[call], chunk_delay_ms=300), Reply(text="done"))
    events = await collect(harness, make_turn(harness, "hi", sandbox=sandbox))
    assert not any(isinstance(e, Error) for e in events)
    assert [m.kind for m in messages(events)] == ["tool_call", "tool_result", "text"]
