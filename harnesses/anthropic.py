"""The Anthropic harness: Claude through the Messages API, with the sandbox tools.

The tool loop is :class:`~harnesses._loop.ToolLoopHarness`'s; this module makes one streamed
Messages API call per step with the ``anthropic`` SDK and maps the response to neutral
entries. ``thinking`` blocks are kept as ``reasoning`` entries tagged ``anthropic`` with their
signature (``redacted_thinking`` data as ``encrypted``), so they can be replayed to Anthropic
and are dropped for other providers.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

import orjson
from pydantic import model_validator

from cerver.errors import UpstreamError
from cerver.event_stream import read_events
from cerver.types import Entry, EntryStatus, ReasoningPart, ToolCallPart
from cerver.types import Usage as UsageRecord
from harnesses._anthropic_stream import MessageBuilder
from harnesses._loop import (
    CONNECT_TIMEOUT,
    PROGRESS,
    StepResult,
    ToolLoopHarness,
    import_sdk,
    reasoning_entry,
    text_entry,
    tool_call_entry,
    upstream_error,
    upstream_exceptions,
)
from harnesses.base import TextDelta, TurnContext
from harnesses.options import ReasoningEffort, SDKHarnessOptions, sampling
from harnesses.replay import AnthropicMessages
from harnesses.replay_cache import ReplayCache
from harnesses.tools import ToolSpec

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

__all__ = ["THINKING_BUDGETS", "AnthropicHarness"]

THINKING_BUDGETS: dict[ReasoningEffort, int] = {
    "minimal": 1024,  # the API's minimum
    "low": 2048,
    "medium": 8192,
    "high": 24576,
}
"""``reasoning`` effort → extended-thinking ``budget_tokens``."""


class AnthropicHarness(ToolLoopHarness):
    """Writes turns with Claude through the Anthropic Messages API (streaming).

    Args:
        base_url: the API's base URL, without ``/v1`` (default: ``ANTHROPIC_BASE_URL``, then
            the SDK's default).
        api_key: the API key (default: ``ANTHROPIC_API_KEY``, then the SDK's own discovery:
            ``ANTHROPIC_AUTH_TOKEN``, profiles).
        client: an ``anthropic.AsyncAnthropic`` to use instead of building one; the caller
            keeps ownership (:meth:`aclose` does not close it).
        timeout: seconds allowed per read of the response (a stream may last longer in all);
            connecting is allowed 10 s.

    The SDK's own retries are off (``max_retries=0``): one failed call is one ``Error`` event,
    and retry policy belongs to the gateway.

    Raises:
        MissingDependency: the ``anthropic`` package is not installed.
    """

    name: ClassVar[str] = "anthropic"
    provider: ClassVar[str] = "anthropic"
    default_model: ClassVar[str] = "claude-sonnet-4-6"

    class Options(SDKHarnessOptions):
        """``reasoning`` turns on extended thinking with :data:`THINKING_BUDGETS` tokens."""

        @model_validator(mode="after")
        def _thinking_keeps_default_temperature(self) -> Self:
            if self.reasoning is not None and self.temperature not in (None, 1):
                raise ValueError(
                    "Anthropic's extended thinking (reasoning) needs the default temperature: "
                    "drop temperature or reasoning"
                )
            return self

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: AsyncAnthropic | None = None,
        timeout: float = 300.0,
    ) -> None:
        self._sdk = import_sdk("anthropic", harness=self.name)
        self._errors = upstream_exceptions(self._sdk)
        self._replays = ReplayCache(AnthropicMessages)
        self._owns_client = client is None
        self._client: AsyncAnthropic = client or self._sdk.AsyncAnthropic(
            base_url=base_url,  # the SDK falls back to ANTHROPIC_BASE_URL when None
            api_key=api_key,  # … and to ANTHROPIC_API_KEY / ANTHROPIC_AUTH_TOKEN
            max_retries=0,
            timeout=self._sdk.Timeout(timeout, connect=CONNECT_TIMEOUT),
            http_client=self._sdk.DefaultAioHttpClient(),
        )

    async def aclose(self) -> None:
        """Close the pooled HTTP client, if this harness built it."""
        if self._owns_client:
            await self._client.close()

    def forget_session(self, session_id: str) -> None:
        self._replays.forget(session_id)

    async def _stream_step(
        self, turn: TurnContext, conversation: Sequence[Entry], tools: Sequence[ToolSpec]
    ) -> AsyncGenerator[TextDelta | StepResult, None]:
        replay = self._replays.replay(
            turn.session_id,
            conversation,
            system_prompt=turn.options.system_prompt,
            tools_as_text=not tools,
        )
        chosen = sampling(turn)
        request: dict[str, Any] = {"model": turn.model, "max_tokens": chosen.max_tokens}
        if replay.system:
            request["system"] = replay.system
        if tools:
            request["tools"] = [_tool_param(spec) for spec in tools]
        if chosen.reasoning is not None:
            budget = THINKING_BUDGETS[chosen.reasoning]
            request["thinking"] = {"type": "enabled", "budget_tokens": budget}
            # Thinking counts against max_tokens: keep the answer's own allowance on top.
            request["max_tokens"] = chosen.max_tokens + budget
        if chosen.temperature is not None:
            # anthropic 2.x dropped ``temperature`` from its signatures; send it as asked and
            # let the API accept or refuse it.
            request["temperature"] = chosen.temperature
        request["stream"] = True
        try:
            # The body goes as JSON bytes: the SDK would copy the whole conversation and
            # serialize it in Python (15 ms of a turn at 4,000 entries), and the replay
            # encodes only the messages no earlier call of the session did. The SDK still
            # sends it (auth, version headers, status errors); its stream's events are not
            # parsed.
            async with await self._client.post(
                "/v1/messages",
                cast_to=object,
                content=replay.request_json(request, "messages"),
                options={"headers": {"Content-Type": "application/json"}},
                stream=True,
                stream_cls=self._sdk.AsyncStream[object],
            ) as stream:
                response = stream.response
                builder = MessageBuilder()
                async for sent in read_events(response.aiter_lines()):
                    data = orjson.loads(sent.data)
                    if sent.event == "error":
                        raise self._sdk.APIStatusError(f"{data}", response=response, body=data)
                    text = builder.add(data)
                    yield TextDelta(text) if text else PROGRESS
                message = builder.message()
                result = StepResult(_entries(message), _usage(message.get("usage") or {}))
        except self._errors as exc:
            raise upstream_error("Anthropic", exc) from exc
        except (LookupError, TypeError, ValueError) as exc:  # not JSON, or not the protocol
            raise UpstreamError(
                f"Anthropic API error in the response stream: it could not be read ({exc})",
                context={"provider": "anthropic", "status": None, "type": "invalid_stream"},
                retryable=True,
            ) from exc
        yield result


def _tool_param(spec: ToolSpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "input_schema": spec.parameters}


def _entries(message: dict[str, Any]) -> list[Entry]:
    """The response's content blocks (the API's ``Message`` JSON) as neutral entries, in order
    (adjacent text merged)."""
    status: EntryStatus = "incomplete" if message.get("stop_reason") == "max_tokens" else "complete"
    entries: list[Entry] = []
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            text = block.get("text") or ""
            if entries and entries[-1].kind == "text":
                entries[-1].content += text
            elif text:
                entries.append(text_entry(text, status=status))
        elif kind == "thinking":
            part = ReasoningPart(
                text=block.get("thinking") or "",
                provider="anthropic",
                signature=block.get("signature"),
            )
            entries.append(reasoning_entry(part))
        elif kind == "redacted_thinking":
            part = ReasoningPart(provider="anthropic", encrypted=block.get("data"))
            entries.append(reasoning_entry(part))
        elif kind == "tool_use":
            arguments = block.get("input")
            call = ToolCallPart(
                id=block["id"],
                name=block["name"],
                arguments=arguments if isinstance(arguments, dict) else {},
            )
            entries.append(tool_call_entry(call))
    return entries


def _usage(usage: dict[str, Any]) -> UsageRecord:
    """Token counts; cache writes and reads count as input tokens."""
    cached = (usage.get("cache_creation_input_tokens") or 0) + (
        usage.get("cache_read_input_tokens") or 0
    )
    return UsageRecord(
        input_tokens=(usage.get("input_tokens") or 0) + cached,
        output_tokens=usage.get("output_tokens") or 0,
    )
