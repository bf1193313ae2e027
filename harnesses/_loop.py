"""The tool loop every SDK harness runs: call the model, run the tools it asks for, repeat.

A provider harness subclasses :class:`ToolLoopHarness` and implements one method,
:meth:`~ToolLoopHarness._stream_step`: a single streamed model call over the neutral
conversation. Everything else — the step budget, provenance on entries, usage accounting,
tool execution and the event contract of :class:`~harnesses.base.Harness` — lives here once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import logging
import time
from abc import abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar, Final

from cerver.errors import MissingDependency, StepLimitReached, UpstreamError
from cerver.pricing import price
from cerver.retry import (
    RETRYABLE_ERROR_TYPES,
    RetryPolicy,
    retry_after_seconds,
    status_is_retryable,
)
from cerver.telemetry import metrics, tracing
from cerver.types import Entry, EntryStatus, ReasoningPart, ToolCallPart
from cerver.types import Usage as UsageRecord
from harnesses.base import Error, Harness, HarnessEvent, Message, TextDelta, TurnContext, Usage
from harnesses.replay import REASONING_ITEM_ID_KEY
from harnesses.tools import CLIENT_TOOL_KEY, SANDBOX_TOOLS, ToolSpec, run_tool

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "PROGRESS",
    "Progress",
    "StepResult",
    "ToolLoopHarness",
    "import_sdk",
    "reasoning_entry",
    "text_entry",
    "tool_call_entry",
    "upstream_error",
    "upstream_exceptions",
]

log = logging.getLogger("cerver.harnesses")

CONNECT_TIMEOUT = 10.0
"""Seconds allowed to open a connection to a model provider."""

DEFAULT_IDLE_TIMEOUT = 60.0
"""Seconds a model's stream may stay silent before the call counts as failed (see
:attr:`ToolLoopHarness.idle_timeout`)."""

_USAGE_OWNER = {"text": 0, "tool_call": 1}
"""Which of a step's entries records the step's usage: its first text, else its first call."""


@dataclass(frozen=True, slots=True)
class Progress:
    """Yielded by :meth:`ToolLoopHarness._stream_step` for an upstream event that carries no
    text (tool input, reasoning, a ping): the stream is alive, so the idle timer restarts."""


PROGRESS: Final = Progress()


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one model call produced.

    Attributes:
        entries: assistant entries (``text``, ``reasoning``, ``tool_call``) in the order the
            model produced them, without provenance (the loop adds it).
        usage: the call's token counts.
    """

    entries: list[Entry]
    usage: UsageRecord


class ToolLoopHarness(Harness):
    """A harness that talks to a model API and runs the sandbox tools itself.

    One turn is a loop of *steps*. A step is one model call plus the execution of the tool calls
    it made:

    1. The conversation (history, the new input, and everything this turn produced so far) is
       sent to the model; text streams out as :class:`TextDelta` events.
    2. The loop yields a :class:`Usage` event, then a :class:`Message` per entry the model
       produced. The step's usage and latency are recorded on one of them (its first text
       entry, else its first tool call, else its first entry), so entry usage adds up to the
       turn's.
    3. Each tool call runs on the sandbox, one after another in the model's order, and its
       result is yielded as a ``tool`` / ``tool_result`` :class:`Message` (with the tool's
       latency). A tool failure is an error *result* the model sees, not a turn failure.
    4. Without tool calls the turn is complete. When the step called one of the app's own
       tools (``turn.client_tools``, offered next to the sandbox tools), the turn ends there,
       after the step's sandbox calls ran: the app runs its calls and sends the results, which
       a later turn continues from. Otherwise the loop goes back to 1, at most
       ``options.max_steps`` model calls in all. When the last allowed step still made tool
       calls, their results are recorded and the turn ends with an ``Error`` of
       :class:`~cerver.errors.StepLimitReached` (``max_steps``): the work done is kept, and the
       next turn's model sees the results.

    Each model call goes through the one retry layer (:attr:`retry`, SDK retries being off): a
    retryable failure before the first text chunk (429, 5xx/529, overload, timeouts and
    connection failures) is retried with backoff honouring ``Retry-After``; when the model
    stays down, the turn's ``fallback_models`` are tried in order, and one that answers keeps
    the rest of the turn. Any other failure, or one after text was streamed, ends the turn
    with an ``Error`` of code ``upstream_error``; streamed text is first kept as an
    ``incomplete`` entry. A stream that stays silent for :attr:`idle_timeout` seconds (no
    text, no :class:`Progress`) is such a failure too (retryable): retried when nothing was
    streamed yet, ended ``incomplete`` otherwise. Each step's usage is priced
    (:func:`cerver.pricing.price`: a cost, or ``None`` with a ``cost_reason``). The tools are
    offered only when the session has a sandbox. Every entry carries ``harness``, ``model``
    (the model that answered) and ``provider``; the gateway fills in the run id and sequence
    numbers.

    Subclasses implement :meth:`_stream_step` and :meth:`aclose`.
    """

    tools: ClassVar[tuple[ToolSpec, ...]] = SANDBOX_TOOLS
    supports_client_tools: ClassVar[bool] = True
    retry: RetryPolicy = RetryPolicy()
    """How failed model calls are retried; set an instance's own to change it."""
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    """Seconds the model's stream may stay silent between two events (before the first one
    too) before the call is abandoned as stalled; the gateway sets it from
    ``CERVER_UPSTREAM_IDLE_TIMEOUT``. Raise it for a model that thinks silently for longer."""

    @abstractmethod
    def _stream_step(
        self, turn: TurnContext, conversation: Sequence[Entry], tools: Sequence[ToolSpec]
    ) -> AsyncGenerator[TextDelta | StepResult, None]:
        """Make one streamed model call.

        Args:
            turn: the turn being written (model, options).
            conversation: the neutral transcript to send, oldest first, ending with the new
                input or the latest tool results.
            tools: the tools to offer (empty: offer none, and replay tool items as text).

        Yields:
            A :class:`TextDelta` per text chunk as it arrives, :data:`PROGRESS` for other
            upstream events (optional: it keeps a long tool input or silent reasoning from
            looking stalled), then exactly one :class:`StepResult`.

        Raises:
            UpstreamError: the provider failed or could not be reached (see
                :func:`upstream_error`). Cancellation must propagate and close the stream.
        """

    async def run(self, turn: TurnContext) -> AsyncIterator[HarnessEvent]:
        """Write one turn; see the class docstring for the steps and the event contract."""
        tools = (*(self.tools if turn.sandbox is not None else ()), *turn.client_tools)
        client_names = {spec.name for spec in turn.client_tools}
        conversation = turn.conversation()
        # The models still to try, current first. A fallback that answered keeps the turn.
        route = list(dict.fromkeys([turn.model, *turn.fallback_models]))
        for _ in range(max(turn.options.max_steps, 1)):
            started = time.perf_counter()
            streamed: list[str] = []
            answer: _Answer | None = None
            try:
                async for event in self._call(turn, conversation, tools, route):
                    if isinstance(event, TextDelta):
                        streamed.append(event.text)
                        yield event
                    else:
                        answer = event
            except UpstreamError as exc:
                if streamed:
                    partial = text_entry("".join(streamed), status="incomplete")
                    yield Message(self._stamp(partial, route[0]))
                yield Error.of(exc)
                return
            if answer is None:
                raise RuntimeError(f"{type(self).__name__}._stream_step yielded no StepResult")
            latency_ms = (time.perf_counter() - started) * 1000
            model, provider = answer.model, self.provider_for(answer.model)
            usage = price(model, provider, answer.result.usage)
            yield Usage(model, provider, usage, latency_ms)

            calls: list[ToolCallPart] = []
            handed_over = False
            for entry in self._account(answer.result.entries, usage, latency_ms, model):
                call = entry.tool_call if entry.kind == "tool_call" else None
                if call is not None and call.name in client_names:
                    entry = entry.model_copy(
                        update={"metadata": {**entry.metadata, CLIENT_TOOL_KEY: True}}
                    )
                    handed_over = True
                elif call is not None:
                    calls.append(call)
                conversation.append(entry)
                yield Message(entry)
            if not calls and not handed_over:
                return
            for call in calls:
                started = time.perf_counter()
                with tracing.span(f"execute_tool {call.name}", _tool_attributes(call)) as span:
                    outcome = await run_tool(turn.sandbox, call)
                    if outcome.is_error:
                        tracing.mark_error(span, "tool_error")
                    if tracing.capture_content():
                        result = tracing.content(outcome.output)
                        span.set_attribute("gen_ai.tool.call.result", result)
                entry = Entry(
                    role="tool",
                    kind="tool_result",
                    content=outcome.output,
                    parts=[outcome],
                    latency_ms=(time.perf_counter() - started) * 1000,
                )
                entry = self._stamp(entry, model)
                conversation.append(entry)
                yield Message(entry)
            if handed_over:
                return  # the app runs its tools; its results continue the turn later
        yield Error.of(
            StepLimitReached(
                f"The turn stopped after max_steps={turn.options.max_steps} model calls while "
                "the model was still calling tools; their results are recorded. Send another "
                "turn to continue, or raise max_steps.",
                context={"max_steps": turn.options.max_steps},
            )
        )

    def provider_for(self, model: str) -> str:
        """The provider serving ``model`` (for provenance and pricing): the harness's own."""
        return self.provider

    async def _call(
        self,
        turn: TurnContext,
        conversation: Sequence[Entry],
        tools: Sequence[ToolSpec],
        route: list[str],
    ) -> AsyncGenerator[TextDelta | _Answer, None]:
        """One model call through the retry layer.

        Calls ``route[0]``; a failure before the first text chunk is retried as
        :attr:`retry` says, then ``route[0]`` is dropped for the next fallback model (only for
        retryable failures: a rejected request would be rejected again). A failure after the
        first chunk is raised at once: the text already went out and cannot be taken back.

        Raises:
            UpstreamError: the last failure, when no retry or fallback is left.
        """
        attempt = 1
        while True:
            model, streamed = route[0], False
            step = dataclasses.replace(turn, model=model)
            provider = self.provider_for(model)
            # One ``chat`` span per attempt, not current: this block yields to the consumer.
            with tracing.span(
                f"chat {model}", self._call_attributes(step, provider), client=True, current=False
            ) as span:
                try:
                    async with aclosing(self._stream_step(step, conversation, tools)) as events:
                        async for event in _unless_idle(events, self.idle_timeout, model):
                            if isinstance(event, Progress):
                                continue
                            if isinstance(event, TextDelta):
                                streamed = True
                                yield event
                            else:
                                _record_call(span, event, conversation)
                                yield _Answer(event, model)
                    return
                except UpstreamError as exc:
                    code = _error_code(exc)
                    tracing.mark_error(span, code, exc.message)
                    if streamed:
                        metrics.upstream_error(provider, code, retried=False)
                        raise
                    failure = exc
            delay = self.retry.delay(failure, attempt)
            falls_back = failure.retryable and len(route) > 1
            metrics.upstream_error(provider, code, retried=delay is not None or falls_back)
            if delay is not None:
                log.info("retrying %s in %.2fs after: %s", model, delay, failure.message)
                await self.retry.sleep(delay)
                attempt += 1
                continue
            if falls_back:
                log.warning("falling back from %s to %s after: %s", model, route[1], failure)
                route.pop(0)
                attempt = 1
                continue
            raise failure

    def _call_attributes(self, turn: TurnContext, provider: str) -> dict[str, Any]:
        """A ``chat`` span's request attributes (GenAI semantic conventions)."""
        return {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,
            "gen_ai.request.model": turn.model,
            "gen_ai.request.max_tokens": turn.options.max_tokens,
            "gen_ai.request.temperature": turn.options.temperature,
            "gen_ai.conversation.id": turn.session_id,
            "cerver.harness": self.name,
            "cerver.run_id": turn.run_id,
        }

    def _account(
        self, entries: list[Entry], usage: UsageRecord, latency_ms: float, model: str
    ) -> list[Entry]:
        """Stamp provenance on a step's entries and record its usage on one of them."""
        by_preference = sorted(entries, key=lambda e: _USAGE_OWNER.get(e.kind, 2))
        owner = by_preference[0] if by_preference else None
        stamped = []
        for entry in entries:
            if entry is owner:
                entry = entry.model_copy(update={"usage": usage, "latency_ms": latency_ms})
            stamped.append(self._stamp(entry, model))
        return stamped

    def _stamp(self, entry: Entry, model: str) -> Entry:
        return entry.model_copy(
            update={"harness": self.name, "model": model, "provider": self.provider_for(model)}
        )


async def _unless_idle(
    events: AsyncIterator[TextDelta | StepResult | Progress], idle_timeout: float, model: str
) -> AsyncIterator[TextDelta | StepResult | Progress]:
    """``events``, failing when the next one takes longer than ``idle_timeout`` seconds.

    Consumed by one task. A single timer per stream checks, when due, whether the stream has
    been waited on for ``idle_timeout`` and otherwise re-arms for the new due time: an event
    costs a clock read, not a timer (``asyncio.timeout`` per event was ~10 % of a stream's CPU).
    Time the consumer spends between events does not count.

    Raises:
        UpstreamError: (retryable) the stream went silent; the caller closes ``events``.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    waiting_since: float | None = None
    expired = False

    def check() -> None:
        nonlocal timer, expired
        due = (loop.time() if waiting_since is None else waiting_since) + idle_timeout
        if waiting_since is not None and due <= loop.time():
            expired = True
            task.cancel()
        else:
            timer = loop.call_at(due, check)

    timer = loop.call_later(idle_timeout, check)
    try:
        while True:
            waiting_since = loop.time()
            try:
                event = await anext(events)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if expired and task.uncancel() == 0:
                    raise UpstreamError(
                        f"The stream of {model!r} went silent: nothing arrived for "
                        f"{idle_timeout:g} s (CERVER_UPSTREAM_IDLE_TIMEOUT), so the call was "
                        "abandoned as stalled.",
                        context={"model": model, "idle_timeout": idle_timeout, "status": None},
                        retryable=True,
                    ) from None
                raise
            waiting_since = None
            yield event
    finally:
        timer.cancel()


def _error_code(error: UpstreamError) -> str:
    """A bounded label for a failed call: the HTTP status, the provider's error type, or
    ``connection``."""
    status = error.context.get("status")
    if isinstance(status, int) and status >= 400:
        return str(status)
    kind = error.context.get("type")
    return str(kind) if kind else "connection"


def _record_call(span: Any, result: StepResult, conversation: Sequence[Entry]) -> None:
    """A finished model call's response attributes, and its content when capture is on."""
    span.set_attributes(
        {
            "gen_ai.usage.input_tokens": result.usage.input_tokens,
            "gen_ai.usage.output_tokens": result.usage.output_tokens,
            "gen_ai.response.finish_reasons": [
                "tool_call" if any(e.kind == "tool_call" for e in result.entries) else "stop"
            ],
        }
    )
    if tracing.capture_content():
        sent = [{"role": e.role, "content": e.content} for e in conversation]
        answer = [{"role": e.role, "kind": e.kind, "content": e.content} for e in result.entries]
        span.set_attribute("gen_ai.input.messages", tracing.content(json.dumps(sent)))
        span.set_attribute("gen_ai.output.messages", tracing.content(json.dumps(answer)))


def _tool_attributes(call: ToolCallPart) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": call.name,
        "gen_ai.tool.call.id": call.id,
        "gen_ai.tool.type": "function",
    }
    if tracing.capture_content():
        attributes["gen_ai.tool.call.arguments"] = tracing.content(json.dumps(call.arguments))
    return attributes


@dataclass(frozen=True, slots=True)
class _Answer:
    """A step's result and the model that produced it (the turn's, or a fallback)."""

    result: StepResult
    model: str


def text_entry(text: str, *, status: EntryStatus = "complete") -> Entry:
    """An assistant text entry."""
    return Entry(role="assistant", kind="text", content=text, status=status)


def reasoning_entry(part: ReasoningPart, *, item_id: str | None = None) -> Entry:
    """An assistant reasoning entry; ``item_id`` is the provider's id for the item, if any."""
    metadata = {REASONING_ITEM_ID_KEY: item_id} if item_id else {}
    return Entry(
        role="assistant", kind="reasoning", content=part.text, parts=[part], metadata=metadata
    )


def tool_call_entry(part: ToolCallPart) -> Entry:
    """An assistant tool call entry; ``content`` shows the call for people."""
    content = f"{part.name} {json.dumps(part.arguments, ensure_ascii=False)}"
    return Entry(role="assistant", kind="tool_call", content=content, parts=[part])


def import_sdk(module: str, *, harness: str) -> ModuleType:
    """Import a provider SDK when a harness is constructed (never at package import).

    Raises:
        MissingDependency: the SDK is not installed; the message names the package.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise MissingDependency(
            f"The {harness!r} harness needs the {module!r} package, which is not installed. "
            f"Install it with: pip install {module}",
            context={"harness": harness, "missing": module},
        ) from exc


def upstream_exceptions(sdk: ModuleType) -> tuple[type[Exception], ...]:
    """What an Anthropic or OpenAI SDK call raises when the upstream fails.

    The SDK's ``APIError`` covers HTTP errors and failures to connect, but a connection that
    breaks while a stream is being read surfaces as the transport's own error (``httpx2``).
    """
    transport = importlib.import_module("httpx2")
    return (sdk.APIError, transport.TransportError)


def upstream_error(provider: str, exc: Exception) -> UpstreamError:
    """Translate an SDK exception (Anthropic or OpenAI, which share their error model).

    The message names the provider, the HTTP status and the provider's own message. The error
    is retryable for 408/409/429 and 5xx statuses, overload or rate-limit errors reported in
    a stream, and connection failures, broken streams and timeouts (no status).
    """
    status: int | None = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    detail = _api_message(body) or getattr(exc, "message", None) or str(exc)
    kinds = _api_kinds(body)
    kind = next(iter(kinds), None)
    if status is None:
        cause = exc.__cause__
        if cause is not None and str(cause) and str(cause) not in detail:
            detail = f"{detail} ({cause})"
        message = f"Connection to the {provider} API failed: {detail}"
        retryable = True
    else:
        where = "in the response stream" if status < 400 else str(status)
        message = f"{provider} API error {where}: {detail}"
        retryable = status_is_retryable(status) or not RETRYABLE_ERROR_TYPES.isdisjoint(kinds)
    context: dict[str, Any] = {"provider": provider.lower(), "status": status, "type": kind}
    response = getattr(exc, "response", None)
    retry_after = retry_after_seconds(getattr(response, "headers", None))
    if retryable and retry_after is not None:
        context["retry_after"] = retry_after
    return UpstreamError(message, context=context, retryable=retryable)


def _api_error_object(body: object) -> Mapping[str, Any] | None:
    if not isinstance(body, Mapping):
        return None
    error = body.get("error", body)
    return error if isinstance(error, Mapping) else None


def _api_message(body: object) -> str | None:
    error = _api_error_object(body)
    message = error.get("message") if error else None
    return message if isinstance(message, str) and message else None


def _api_kinds(body: object) -> list[str]:
    """The error's ``type`` and ``code`` (Anthropic sets the first, OpenAI both)."""
    error = _api_error_object(body) or {}
    return [k for k in (error.get("type"), error.get("code")) if isinstance(k, str) and k]
