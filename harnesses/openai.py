"""The OpenAI harness: OpenAI models through the Responses API, with the sandbox tools.

The tool loop is :class:`~harnesses._loop.ToolLoopHarness`'s; this module makes one streamed
Responses API call per step with the ``openai`` SDK. Requests are stateless (``store=False``):
every step replays the whole conversation as ``input`` items, so the session's transcript,
not OpenAI, holds the state, and a turn can follow one written by any other harness.

Reasoning models return ``reasoning`` items; they are kept as ``reasoning`` entries tagged
``openai`` with their ``encrypted_content`` (the only form a ``store=False`` request can send
back) and item id. The request asks for ``include=["reasoning.encrypted_content"]`` only for
model names of the reasoning families (``gpt-5*``, ``o1``/``o3``/``o4*``, ``codex*``), which
keeps requests to other models and to OpenAI-compatible servers minimal.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from cerver.errors import HarnessError, UpstreamError
from cerver.retry import RETRYABLE_ERROR_TYPES
from cerver.types import Entry, EntryStatus, ReasoningPart, ToolCallPart
from cerver.types import Usage as UsageRecord
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
from harnesses.options import SDKHarnessOptions, sampling
from harnesses.replay import ResponsesInput
from harnesses.replay_cache import ReplayCache
from harnesses.tools import ToolSpec, parse_arguments

if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from openai.types.responses import Response, ResponseOutputItem

__all__ = ["OpenAIHarness"]

_REASONING_MODEL_PREFIXES = ("gpt-5", "o1", "o3", "o4", "codex")


class OpenAIHarness(ToolLoopHarness):
    """Writes turns with OpenAI models through the Responses API (streaming, ``store=False``).

    Args:
        base_url: the API's base URL, ending in ``/v1`` (default: ``OPENAI_BASE_URL``, then
            the SDK's default).
        api_key: the API key (default: ``OPENAI_API_KEY``).
        client: an ``openai.AsyncOpenAI`` to use instead of building one; the caller keeps
            ownership (:meth:`aclose` does not close it).
        timeout: seconds allowed per read of the response (a stream may last longer in all);
            connecting is allowed 10 s.

    The SDK's own retries are off (``max_retries=0``): one failed call is one ``Error`` event,
    and retry policy belongs to the gateway.

    Raises:
        MissingDependency: the ``openai`` package is not installed.
        HarnessError: no API key was given and ``OPENAI_API_KEY`` is not set.
    """

    name: ClassVar[str] = "openai"
    provider: ClassVar[str] = "openai"
    default_model: ClassVar[str] = "gpt-5.5"
    Options = SDKHarnessOptions

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: AsyncOpenAI | None = None,
        timeout: float = 300.0,
    ) -> None:
        self._sdk = import_sdk("openai", harness=self.name)
        self._errors = upstream_exceptions(self._sdk)
        self._replays = ReplayCache(ResponsesInput)
        self._owns_client = client is None
        if client is None:
            try:
                client = self._sdk.AsyncOpenAI(
                    base_url=base_url,  # the SDK falls back to OPENAI_BASE_URL when None
                    api_key=api_key,  # … and to OPENAI_API_KEY
                    max_retries=0,
                    timeout=self._sdk.Timeout(timeout, connect=CONNECT_TIMEOUT),
                    http_client=self._sdk.DefaultAioHttpClient(),
                )
            except self._sdk.OpenAIError as exc:
                raise HarnessError(
                    f"The 'openai' harness has no API key: set OPENAI_API_KEY or pass api_key. "
                    f"({exc})",
                    context={"harness": self.name, "env": "OPENAI_API_KEY"},
                ) from exc
        self._client: AsyncOpenAI = client

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
        request: dict[str, Any] = {
            "model": turn.model,
            "input": replay.messages,
            "store": False,
            "stream": True,
            "max_output_tokens": chosen.max_tokens,
        }
        if replay.system:
            request["instructions"] = replay.system
        if tools:
            request["tools"] = [_tool_param(spec) for spec in tools]
        if chosen.temperature is not None:
            request["temperature"] = chosen.temperature
        if chosen.reasoning is not None:
            request["reasoning"] = {"effort": chosen.reasoning}
        if turn.model.startswith(_REASONING_MODEL_PREFIXES):
            request["include"] = ["reasoning.encrypted_content"]

        items: list[ResponseOutputItem] = []
        final: Response | None = None
        try:
            async with await self._client.responses.create(**request) as stream:
                async for event in stream:
                    if event.type == "response.output_text.delta" and event.delta:
                        yield TextDelta(event.delta)
                    elif event.type == "response.output_item.done":
                        items.append(event.item)
                    elif event.type in ("response.completed", "response.incomplete"):
                        final = event.response
                    elif event.type == "response.failed":
                        raise _stream_failure(event.response.error)
                    elif event.type == "error":
                        raise _stream_failure(event)
                    else:
                        yield PROGRESS
        except self._errors as exc:
            raise upstream_error("OpenAI", exc) from exc
        if final is None:
            raise UpstreamError(
                "OpenAI API error in the response stream: it ended before response.completed.",
                context={"provider": self.provider},
                retryable=True,
            )
        status: EntryStatus = "incomplete" if final.status == "incomplete" else "complete"
        yield StepResult(_entries(items or final.output, status), _usage(final))


def _tool_param(spec: ToolSpec) -> dict[str, Any]:
    # Not strict: strict mode would require every property (bash's timeout is optional).
    return {
        "type": "function",
        "name": spec.name,
        "description": spec.description,
        "parameters": spec.parameters,
        "strict": False,
    }


def _entries(items: Sequence[ResponseOutputItem], status: EntryStatus) -> list[Entry]:
    """The response's output items as neutral entries, in order (other item types skipped)."""
    entries: list[Entry] = []
    for item in items:
        if item.type == "message":
            text = "".join(
                part.text if part.type == "output_text" else part.refusal for part in item.content
            )
            if text:
                entries.append(text_entry(text, status=status))
        elif item.type == "function_call":
            call = ToolCallPart(
                id=item.call_id, name=item.name, arguments=parse_arguments(item.arguments)
            )
            entries.append(tool_call_entry(call))
        elif item.type == "reasoning":
            summary = "\n\n".join(part.text for part in item.summary)
            part = ReasoningPart(text=summary, provider="openai", encrypted=item.encrypted_content)
            entries.append(reasoning_entry(part, item_id=item.id))
    return entries


def _usage(response: Response) -> UsageRecord:
    usage = response.usage
    if usage is None:
        return UsageRecord()
    return UsageRecord(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)


def _stream_failure(error: object | None) -> UpstreamError:
    """An error the API reported inside the stream: a ``response.failed`` event's ``error``
    or an ``error`` event (both carry ``message`` and ``code``)."""
    message = getattr(error, "message", None) or "the response failed"
    code = getattr(error, "code", None)
    return UpstreamError(
        f"OpenAI API error in the response stream: {message}" + (f" ({code})" if code else ""),
        context={"provider": "openai", "type": code},
        retryable=code in RETRYABLE_ERROR_TYPES,
    )
