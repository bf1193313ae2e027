"""The LiteLLM harness: any model LiteLLM supports, with the sandbox tools.

Models are named LiteLLM's way, ``<provider>/<model>``: ``xai/grok-4``, ``gemini/…``,
``groq/…``, ``ollama/…``, ``together_ai/…``; ``openai/<name>`` with ``api_base`` reaches any
OpenAI-compatible server (vLLM, llama.cpp, LM Studio…). The seed aliases ``grok`` and ``xai``
resolve to this harness. Provider keys come from the providers' usual variables
(``XAI_API_KEY``, ``GEMINI_API_KEY``…) unless ``api_key`` is given.

LiteLLM is imported when the harness is built, never at gateway start-up (it takes seconds),
and ``LITELLM_LOCAL_MODEL_COST_MAP`` is set first so that import does not fetch the price map
from the internet. Its retries are off (``num_retries=0``, ``max_retries=0``): the gateway's
retry layer (:mod:`harnesses.retry`) is the only one.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Sequence
from typing import Any, ClassVar

from cerver.errors import UpstreamError
from cerver.types import Entry, EntryStatus, ToolCallPart
from cerver.types import Usage as UsageRecord
from harnesses._loop import (
    CONNECT_TIMEOUT,
    StepResult,
    ToolLoopHarness,
    import_sdk,
    text_entry,
    tool_call_entry,
    upstream_error,
)
from harnesses.base import TextDelta, TurnContext
from harnesses.options import SDKHarnessOptions, sampling
from harnesses.replay_chat import to_chat_messages
from harnesses.retry import retry_after_seconds
from harnesses.tools import ToolSpec, parse_arguments

__all__ = ["LiteLLMHarness"]


class LiteLLMHarness(ToolLoopHarness):
    """Writes turns with any LiteLLM model through its Chat Completions interface (streaming).

    Args:
        base_url: an ``api_base`` for every call (an OpenAI-compatible server, or a local
            stand-in for the provider); ``None`` lets LiteLLM use each provider's own.
        api_key: the key sent with every call; ``None`` lets LiteLLM read the provider's
            variable.
        timeout: seconds allowed per call (connecting is allowed 10 s).

    Raises:
        MissingDependency: ``litellm`` is not installed (``pip install 'cerver[litellm]'``).
    """

    name: ClassVar[str] = "litellm"
    provider: ClassVar[str] = "litellm"
    default_model: ClassVar[str] = "xai/grok-4"
    Options = SDKHarnessOptions

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 300.0,
    ) -> None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        self._sdk = import_sdk("litellm", harness=self.name)
        self._sdk.telemetry = False
        self._sdk.suppress_debug_info = True
        openai = import_sdk("openai", harness=self.name)
        # LiteLLM's exceptions subclass the openai SDK's (status, body, response).
        self._errors: tuple[type[Exception], ...] = (openai.APIError, self._sdk.APIError)
        self._base_url = base_url
        self._api_key = api_key
        self._timeout = timeout

    def provider_for(self, model: str) -> str:
        """LiteLLM's provider for ``model`` (``xai/grok-4`` → ``xai``, ``gpt-4o`` → ``openai``)."""
        try:
            return self._sdk.get_llm_provider(model)[1]
        except Exception:  # LiteLLM raises its BadRequestError for names it cannot place
            return model.split("/", 1)[0] if "/" in model else "unknown"

    async def _stream_step(
        self, turn: TurnContext, conversation: Sequence[Entry], tools: Sequence[ToolSpec]
    ) -> AsyncGenerator[TextDelta | StepResult, None]:
        chosen = sampling(turn)
        request: dict[str, Any] = {
            "model": turn.model,
            "messages": to_chat_messages(
                conversation, system_prompt=turn.options.system_prompt, tools_as_text=not tools
            ),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": chosen.max_tokens,
            "timeout": self._timeout,
            "num_retries": 0,
            "max_retries": 0,
        }
        if tools:
            request["tools"] = [_tool_param(spec) for spec in tools]
        if chosen.temperature is not None:
            request["temperature"] = chosen.temperature
        if chosen.reasoning is not None:
            request["reasoning_effort"] = chosen.reasoning
        if self._base_url is not None:
            request["api_base"] = self._base_url
        if self._api_key is not None:
            request["api_key"] = self._api_key

        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage = UsageRecord()
        finish: str | None = None
        provider = self.provider_for(turn.model)
        try:
            stream = await self._sdk.acompletion(**request)
            async for chunk in stream:
                if (reported := getattr(chunk, "usage", None)) is not None:
                    usage = UsageRecord(
                        input_tokens=reported.prompt_tokens or 0,
                        output_tokens=reported.completion_tokens or 0,
                    )
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                finish = choice.finish_reason or finish
                delta = choice.delta
                if delta.content:
                    text.append(delta.content)
                    yield TextDelta(delta.content)
                for call in delta.tool_calls or ():
                    slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] = call.id or slot["id"]
                    if call.function is not None:
                        slot["name"] = call.function.name or slot["name"]
                        slot["arguments"] += call.function.arguments or ""
        except self._errors as exc:
            error = upstream_error(provider, exc)
            # LiteLLM keeps the provider's headers here (its ``response`` has none).
            headers = getattr(exc, "litellm_response_headers", None)
            if error.retryable and (retry_after := retry_after_seconds(headers)) is not None:
                error.context["retry_after"] = retry_after
            raise error from exc
        except (TimeoutError, ConnectionError) as exc:
            raise UpstreamError(
                f"Connection to the {provider} API failed: {exc!r}",
                context={"provider": provider, "status": None, "connect_timeout": CONNECT_TIMEOUT},
                retryable=True,
            ) from exc
        if finish is None:
            raise UpstreamError(
                f"{provider} API error in the response stream: it ended without a finish reason.",
                context={"provider": provider},
                retryable=True,
            )
        status: EntryStatus = "incomplete" if finish == "length" else "complete"
        entries = [text_entry("".join(text), status=status)] if "".join(text) else []
        for index in sorted(calls):
            slot = calls[index]
            part = ToolCallPart(
                id=slot["id"] or f"call_{index}",
                name=slot["name"],
                arguments=parse_arguments(slot["arguments"]),
            )
            entries.append(tool_call_entry(part))
        yield StepResult(entries, usage)


def _tool_param(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.parameters,
        },
    }
