"""The pydantic-ai harness: a pydantic-ai ``Agent`` whose tools run on the session's compute.

Models are named pydantic-ai's way, ``<provider>:<model>``. Supported here (checked with
pydantic-ai 2.68, openai 3.x, anthropic 2.x against the mock upstream):

* ``openai:<model>`` — ``OpenAIChatModel`` (Chat Completions), any OpenAI-compatible server;
* ``openai-responses:<model>`` — ``OpenAIResponsesModel`` (Responses API);
* ``anthropic:<model>`` — ``AnthropicModel``, with the client pydantic-ai builds itself.

Other pydantic-ai providers (Google, Groq, Mistral, Cohere…) need their own SDKs, which Cerver
does not install; naming one gives an error that says so.

The app's own tools (``TurnContext.client_tools``) are pydantic-ai *external* tools: a call
of one ends the agent run with ``DeferredToolRequests``, and the turn with it; the app's
results arrive in the next turn's history as tool returns.

The agent runs its own tool loop; this harness streams its text, turns every model response
and tool return into transcript entries as they complete, and prices each response with
the gateway's pricer (:mod:`cerver.pricing`, the same numbers as every other harness). The SDK
clients are built with ``max_retries=0``; a failure before any text is retried by the
gateway's :class:`~harnesses.retry.RetryPolicy`, one after is the turn's ``Error``.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

from cerver.errors import InvalidRequest, StepLimitReached, UpstreamError
from cerver.pricing import price
from cerver.types import Entry, ToolCallPart, ToolResultPart
from cerver.types import Usage as UsageRecord
from harnesses._loop import import_sdk, text_entry, tool_call_entry
from harnesses.base import Error, Harness, HarnessEvent, Message, TextDelta, TurnContext, Usage
from harnesses.options import SDKHarnessOptions, sampling
from harnesses.replay import _Call, _normalise, _Result, _Text
from harnesses.retry import RetryPolicy, retry_after_seconds, status_is_retryable
from harnesses.tools import CLIENT_TOOL_KEY, SANDBOX_TOOLS, ToolSpec, run_tool

__all__ = ["MODEL_PREFIXES", "PydanticAIHarness"]

MODEL_PREFIXES = {
    "openai": ("openai", "OpenAIChatModel"),
    "openai-responses": ("openai", "OpenAIResponsesModel"),
    "anthropic": ("anthropic", "AnthropicModel"),
}
"""``<prefix>:`` of a model name → (provider, pydantic-ai model class)."""


class PydanticAIHarness(Harness):
    """Writes turns with a pydantic-ai ``Agent`` (streaming), tools on the session's sandbox.

    Args:
        base_url: the base URL for ``openai*`` models, ending in ``/v1`` (default:
            ``OPENAI_BASE_URL``, then OpenAI's).
        api_key: the key for ``openai*`` models (default: ``OPENAI_API_KEY``).
        anthropic_base_url: the base URL for ``anthropic`` models, without ``/v1`` (default:
            ``ANTHROPIC_BASE_URL``, then Anthropic's).
        anthropic_api_key: the key for ``anthropic`` models (default: ``ANTHROPIC_API_KEY``).

    Raises:
        MissingDependency: ``pydantic-ai`` is not installed (``pip install 'cerver[pydantic-ai]'``).
    """

    name: ClassVar[str] = "pydantic-ai"
    provider: ClassVar[str] = "pydantic-ai"
    default_model: ClassVar[str] = "openai:gpt-5.5"
    Options = SDKHarnessOptions
    supports_client_tools: ClassVar[bool] = True
    retry: RetryPolicy = RetryPolicy()

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        anthropic_base_url: str | None = None,
        anthropic_api_key: str | None = None,
    ) -> None:
        self._sdk = import_sdk("pydantic_ai", harness=self.name)
        self._messages = importlib.import_module("pydantic_ai.messages")
        self._exceptions = importlib.import_module("pydantic_ai.exceptions")
        self._base_url = base_url
        self._api_key = api_key
        self._anthropic_base_url = anthropic_base_url
        self._anthropic_api_key = anthropic_api_key
        self._models: dict[str, Any] = {}
        self._clients: list[Any] = []

    async def aclose(self) -> None:
        """Close the SDK clients this harness built."""
        for client in self._clients:
            await client.close()
        self._clients.clear()
        self._models.clear()

    def provider_for(self, model: str) -> str:
        prefix = model.partition(":")[0]
        return MODEL_PREFIXES[prefix][0] if prefix in MODEL_PREFIXES else prefix

    async def run(self, turn: TurnContext) -> AsyncIterator[HarnessEvent]:
        """Write one turn; the event contract is :class:`~harnesses.base.Harness`'s."""
        try:
            model = self._model(turn.model)
        except InvalidRequest as exc:
            yield Error.of(exc)
            return
        attempt = 1
        while True:
            streamed = False
            try:
                async for event in self._run_agent(turn, model):
                    streamed = streamed or isinstance(event, TextDelta | Message)
                    yield event
                return
            except UpstreamError as exc:
                delay = None if streamed else self.retry.delay(exc, attempt)
                if delay is None:
                    yield Error.of(exc)
                    return
                await self.retry.sleep(delay)
                attempt += 1
            except self._exceptions.UsageLimitExceeded:
                yield Error.of(
                    StepLimitReached(
                        f"The turn stopped after max_steps={turn.options.max_steps} model "
                        "calls while the model was still calling tools; their results are "
                        "recorded.",
                        context={"max_steps": turn.options.max_steps},
                    )
                )
                return

    async def _run_agent(self, turn: TurnContext, model: Any) -> AsyncIterator[HarnessEvent]:
        """One agent run; raises :class:`UpstreamError` for provider failures."""
        m = self._messages
        results: dict[str, ToolResultPart] = {}
        specs = SANDBOX_TOOLS if turn.sandbox is not None else ()
        client_names = {spec.name for spec in turn.client_tools}
        answered = {r.tool_call_id for e in turn.history if (r := e.tool_result) is not None}
        extra: dict[str, Any] = {}
        if turn.client_tools:
            extra = {
                "toolsets": [self._external_tools(turn.client_tools)],
                "output_type": [str, self._sdk.DeferredToolRequests],
            }
        agent = self._sdk.Agent(
            model,
            instructions=turn.options.system_prompt,
            tools=[self._tool(spec, turn, results) for spec in specs],
            **extra,
        )
        history = self._history(turn.history, tools_as_text=not (specs or turn.client_tools))
        chosen = sampling(turn)
        settings: dict[str, Any] = {"max_tokens": chosen.max_tokens}
        if chosen.temperature is not None:
            settings["temperature"] = chosen.temperature
        if chosen.reasoning is not None:
            settings["thinking"] = chosen.reasoning  # pydantic-ai maps it per provider
        limits = self._sdk.UsageLimits(request_limit=max(turn.options.max_steps, 1))
        provider = self.provider_for(turn.model)
        streamed: list[str] = []
        started = time.perf_counter()
        try:
            async with agent.iter(
                turn.input or None,  # None: continue from the app's tool results in history
                message_history=history,
                model_settings=settings,
                usage_limits=limits,
            ) as agent_run:
                async for node in agent_run:
                    if self._sdk.Agent.is_model_request_node(node):
                        for part in node.request.parts:
                            # A continued turn's first request is the history's last
                            # (the app's results): those are in the transcript already.
                            if isinstance(part, m.ToolReturnPart) and part.tool_call_id not in (
                                answered
                            ):
                                yield Message(self._stamp(_result_entry(part, results), turn))
                        started = time.perf_counter()
                        async with node.stream(agent_run.ctx) as stream:
                            async for event in stream:
                                if text := _text_delta(m, event):
                                    streamed.append(text)
                                    yield TextDelta(text)
                    elif self._sdk.Agent.is_call_tools_node(node):
                        latency_ms = (time.perf_counter() - started) * 1000
                        streamed.clear()
                        response = node.model_response
                        usage = price(
                            turn.model.partition(":")[2],
                            provider,
                            UsageRecord(
                                input_tokens=response.usage.input_tokens or 0,
                                output_tokens=response.usage.output_tokens or 0,
                            ),
                        )
                        yield Usage(turn.model, provider, usage, latency_ms)
                        entries = _response_entries(m, response, client_names)
                        for index, entry in enumerate(entries):
                            if index == 0:
                                entry = entry.model_copy(
                                    update={"usage": usage, "latency_ms": latency_ms}
                                )
                            yield Message(self._stamp(entry, turn))
        except (self._exceptions.ModelHTTPError, self._exceptions.ModelAPIError) as exc:
            if streamed:
                yield Message(self._stamp(text_entry("".join(streamed), status="incomplete"), turn))
            raise _upstream_error(provider, exc, streamed=bool(streamed)) from exc

    def _model(self, name: str) -> Any:
        """The pydantic-ai model for ``<prefix>:<model>`` (built once per name)."""
        if name in self._models:
            return self._models[name]
        prefix, _, model_name = name.partition(":")
        if prefix not in MODEL_PREFIXES or not model_name:
            raise InvalidRequest(
                f"pydantic-ai model {name!r} is not supported here: use "
                + ", ".join(f"'{p}:<model>'" for p in MODEL_PREFIXES)
                + " (other pydantic-ai providers need SDKs Cerver does not install).",
                context={"model": name, "supported": list(MODEL_PREFIXES)},
            )
        provider, cls_name = MODEL_PREFIXES[prefix]
        if provider == "openai":
            openai = import_sdk("openai", harness=self.name)
            client = openai.AsyncOpenAI(
                base_url=self._base_url or os.environ.get("OPENAI_BASE_URL"),
                api_key=self._api_key or os.environ.get("OPENAI_API_KEY"),
                max_retries=0,
            )
            providers = importlib.import_module("pydantic_ai.providers.openai")
            models = importlib.import_module("pydantic_ai.models.openai")
            built = getattr(models, cls_name)(
                model_name, provider=providers.OpenAIProvider(openai_client=client)
            )
        else:
            anthropic = import_sdk("anthropic", harness=self.name)
            client = anthropic.AsyncAnthropic(
                base_url=self._anthropic_base_url or os.environ.get("ANTHROPIC_BASE_URL"),
                api_key=self._anthropic_api_key or os.environ.get("ANTHROPIC_API_KEY"),
                max_retries=0,
            )
            providers = importlib.import_module("pydantic_ai.providers.anthropic")
            models = importlib.import_module("pydantic_ai.models.anthropic")
            built = models.AnthropicModel(
                model_name, provider=providers.AnthropicProvider(anthropic_client=client)
            )
        self._clients.append(client)
        self._models[name] = built
        return built

    def _tool(self, spec: ToolSpec, turn: TurnContext, results: dict[str, ToolResultPart]) -> Any:
        """A pydantic-ai tool that runs ``spec`` on the turn's sandbox."""

        async def call(ctx: Any, **arguments: Any) -> str:
            part = ToolCallPart(
                id=ctx.tool_call_id or spec.name, name=spec.name, arguments=arguments
            )
            result = await run_tool(turn.sandbox, part)
            results[part.id] = result
            return f"[tool error] {result.output}" if result.is_error else result.output

        return self._sdk.Tool.from_schema(
            call,
            name=spec.name,
            description=spec.description,
            json_schema=dict(spec.parameters),
            takes_ctx=True,
        )

    def _external_tools(self, specs: Sequence[ToolSpec]) -> Any:
        """The app's tools as a pydantic-ai external toolset (called by the app, not here)."""
        toolsets = importlib.import_module("pydantic_ai.toolsets")
        tools = importlib.import_module("pydantic_ai.tools")
        return toolsets.ExternalToolset(
            [
                tools.ToolDefinition(
                    name=spec.name,
                    description=spec.description,
                    parameters_json_schema=dict(spec.parameters),
                )
                for spec in specs
            ]
        )

    def _history(self, history: Sequence[Entry], *, tools_as_text: bool) -> list[Any]:
        """The neutral transcript as pydantic-ai messages (same normalisation as the others)."""
        m = self._messages
        _, items = _normalise(history, None, None, tools_as_text)
        names: dict[str, str] = {}
        messages: list[Any] = []
        for item in items:
            match item:
                case _Text(role="user", text=text):
                    part: Any = m.UserPromptPart(content=text)
                case _Text(role="assistant", text=text):
                    part = m.TextPart(content=text)
                case _Call(part=call):
                    names[call.id] = call.name
                    part = m.ToolCallPart(
                        tool_name=call.name, args=call.arguments, tool_call_id=call.id
                    )
                case _Result(part=result):
                    output = f"[tool error] {result.output}" if result.is_error else result.output
                    part = m.ToolReturnPart(
                        tool_name=names.get(result.tool_call_id, "tool"),
                        content=output,
                        tool_call_id=result.tool_call_id,
                    )
                case _:
                    continue
            response = isinstance(part, m.TextPart | m.ToolCallPart)
            kind = m.ModelResponse if response else m.ModelRequest
            if messages and isinstance(messages[-1], kind):
                messages[-1].parts.append(part)
            else:
                messages.append(kind(parts=[part]))
        return messages

    def _stamp(self, entry: Entry, turn: TurnContext) -> Entry:
        return entry.model_copy(
            update={
                "harness": self.name,
                "model": turn.model,
                "provider": self.provider_for(turn.model),
            }
        )


def _text_delta(m: Any, event: Any) -> str:
    if isinstance(event, m.PartStartEvent) and isinstance(event.part, m.TextPart):
        return event.part.content
    if isinstance(event, m.PartDeltaEvent) and isinstance(event.delta, m.TextPartDelta):
        return event.delta.content_delta
    return ""


def _response_entries(m: Any, response: Any, client_names: set[str]) -> list[Entry]:
    entries: list[Entry] = []
    for part in response.parts:
        if isinstance(part, m.TextPart) and part.content:
            entries.append(text_entry(part.content))
        elif isinstance(part, m.ToolCallPart):
            call = ToolCallPart(
                id=part.tool_call_id, name=part.tool_name, arguments=part.args_as_dict()
            )
            entry = tool_call_entry(call)
            if call.name in client_names:
                entry = entry.model_copy(update={"metadata": {CLIENT_TOOL_KEY: True}})
            entries.append(entry)
    return entries


def _result_entry(part: Any, results: dict[str, ToolResultPart]) -> Entry:
    result = results.get(part.tool_call_id) or ToolResultPart(
        tool_call_id=part.tool_call_id, output=str(part.content)
    )
    return Entry(role="tool", kind="tool_result", content=result.output, parts=[result])


def _upstream_error(provider: str, exc: Exception, *, streamed: bool) -> UpstreamError:
    status: int | None = getattr(exc, "status_code", None)
    retryable = status is None or status_is_retryable(status)
    where = "in the response stream" if streamed else (str(status) if status else "connection")
    context: dict[str, Any] = {"provider": provider, "status": status}
    # pydantic-ai keeps the SDK's exception (with the HTTP response) as the cause.
    response = getattr(exc.__cause__, "response", None)
    retry_after = retry_after_seconds(getattr(response, "headers", None))
    if retryable and retry_after is not None:
        context["retry_after"] = retry_after
    return UpstreamError(
        f"{provider} API error ({where}) through pydantic-ai: {exc}",
        context=context,
        retryable=retryable,
    )
