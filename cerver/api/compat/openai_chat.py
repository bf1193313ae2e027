"""``POST /v1/chat/completions``: OpenAI's Chat Completions on a Cerver session.

A translation layer: the request becomes one turn of :mod:`cerver.api.compat.turns` and the
turn's answer is rendered as a ``chat.completion`` or as ``chat.completion.chunk`` events
ended by ``data: [DONE]``. What is supported, and what is refused naming the parameter:

* ``model`` (the grammar of :mod:`cerver.api.compat.model_names`), ``messages`` (``system``
  and ``developer`` messages become the turn's system prompt; text content only), ``stream``,
  ``stream_options.include_usage``, ``tools`` (``type: "function"``; ``strict`` is accepted
  and not enforced: the schema is passed to whichever model runs), ``tool_choice`` ``auto``
  or ``none``, ``parallel_tool_calls: true``, ``max_tokens`` / ``max_completion_tokens``,
  ``temperature``, ``user`` (the end-user id of a new session), ``n: 1``.
* Any other parameter is a 400 ``unsupported_parameter`` naming it.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from cerver.api.compat.deps import CompatAccountDep, SessionIdHeader
from cerver.api.compat.errors import openai_error_body
from cerver.api.compat.history import ClientMessage
from cerver.api.compat.model_names import parse_model
from cerver.api.compat.schemas import OpenModel
from cerver.api.compat.turns import (
    CompatTurn,
    Finished,
    TextOut,
    ToolCallOut,
    TurnOptionsIn,
    cerver_headers,
    failure_error,
    follow,
    raise_for_failure,
    start_turn,
)
from cerver.api.deps import GatewayDep
from cerver.api.sse import sse_response
from cerver.errors import InvalidRequest
from cerver.services.turns import TurnResult
from cerver.types import ToolCallPart
from harnesses.tools import ToolSpec, parse_arguments

__all__ = ["ChatCompletionCreate", "router"]

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

ORIGIN = "chat.completions"


class FunctionCallIn(BaseModel):
    name: str
    arguments: str = ""


class ToolCallIn(OpenModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessageIn(OpenModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None


class FunctionIn(BaseModel):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


class ToolIn(BaseModel):
    type: Literal["function"]
    function: FunctionIn


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionCreate(OpenModel):
    model: str
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    tools: list[ToolIn] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=200_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    user: str | None = Field(default=None, max_length=200)
    n: int | None = None


@router.post(
    "/chat/completions",
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON or SSE"}},
)
async def create_chat_completion(
    body: ChatCompletionCreate,
    gateway: GatewayDep,
    account: CompatAccountDep,
    session_id: SessionIdHeader = None,
    accept: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Run one turn of a Cerver session and answer as OpenAI's Chat Completions.

    The session comes from ``X-Cerver-Session-Id``; without it a new session is created and
    its id returned in that header. Re-sent history is matched against the transcript.
    """
    _refuse_unsupported(body)
    system, messages = _conversation(body.messages)
    tools = () if body.tool_choice == "none" else tuple(_tool_spec(t) for t in body.tools or ())
    turn = await start_turn(
        gateway,
        account,
        session_id=session_id,
        user=body.user,
        model=parse_model(body.model, gateway.harnesses),
        messages=messages,
        tools=tools,
        options=TurnOptionsIn(
            system_prompt=system,
            max_tokens=body.max_completion_tokens or body.max_tokens,
            temperature=body.temperature,
        ),
        origin=ORIGIN,
    )
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    if body.stream:
        chunks = _chunks(turn, include_usage)
        return sse_response(chunks, cerver_headers(turn))  # type: ignore[return-value]
    finished: Finished | None = None
    async for item in follow(turn.handle):
        if isinstance(item, Finished):
            finished = item
    assert finished is not None
    raise_for_failure(finished.result, turn.session.id)
    completion = {
        **_envelope(turn, finished.result, "chat.completion"),
        "choices": [
            {
                "index": 0,
                "message": _message(finished.text, finished.tool_calls),
                "finish_reason": _finish_reason(finished.result),
                "logprobs": None,
            }
        ],
        "usage": _usage(finished.result),
    }
    return JSONResponse(completion, headers=cerver_headers(turn))


async def _chunks(turn: CompatTurn, include_usage: bool) -> AsyncIterator[bytes]:
    """``chat.completion.chunk`` events for the turn, then ``data: [DONE]``."""
    base = _envelope(turn, None, "chat.completion.chunk")
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return _sse({**base, "choices": [choice], **extra})

    yield chunk({"role": "assistant", "content": ""})
    calls = 0
    async for item in follow(turn.handle):
        if isinstance(item, TextOut):
            yield chunk({"content": item.text})
        elif isinstance(item, ToolCallOut):
            yield chunk({"tool_calls": [{"index": calls, **_tool_call(item.call)}]})
            calls += 1
        else:
            result = item.result
            if result.status == "failed":
                yield _sse(_stream_error(result, turn.session.id))
                return
            yield chunk({}, _finish_reason(result))
            if include_usage:
                yield _sse({**base, "choices": [], "usage": _usage(result)})
    yield b"data: [DONE]\n\n"


def _stream_error(result: TurnResult, session_id: str) -> dict[str, Any]:
    exc = failure_error(result, session_id)
    return openai_error_body(exc.status_code, exc.message, exc.code, exc.context)


def _refuse_unsupported(body: ChatCompletionCreate) -> None:
    """400 for what Cerver does not do, naming the parameter (never dropped silently)."""
    for name in body.model_extra or {}:
        raise _unsupported(name, "Cerver does not support it")
    if body.n not in (None, 1):
        raise _unsupported("n", "Cerver writes one answer per request (n must be 1)")
    if body.tool_choice not in (None, "auto", "none"):
        raise _unsupported("tool_choice", "only 'auto' and 'none' are supported")
    if body.parallel_tool_calls is False:
        raise _unsupported("parallel_tool_calls", "the model may always call several tools")
    for index, message in enumerate(body.messages):
        for name, value in (message.model_extra or {}).items():
            if value not in (None, "", [], {}):  # SDK objects re-sent whole carry empty fields
                raise _unsupported(f"messages[{index}].{name}", "Cerver does not support it")


def _unsupported(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"Unsupported parameter {param!r}: {why}. See the README's OpenAI-compatible section "
        "for what /v1/chat/completions accepts.",
        context={"param": param, "unsupported": param},
    )


def _conversation(messages: list[ChatMessageIn]) -> tuple[str | None, list[ClientMessage]]:
    """The system prompt (system and developer messages) and the conversation."""
    system: list[str] = []
    conversation: list[ClientMessage] = []
    for index, message in enumerate(messages):
        text = _text(message.content, index)
        if message.role in ("system", "developer"):
            system.append(text)
        elif message.role == "tool":
            if not message.tool_call_id:
                raise InvalidRequest(
                    f"messages[{index}]: a tool message needs 'tool_call_id'.",
                    context={"param": f"messages[{index}].tool_call_id"},
                )
            conversation.append(
                ClientMessage("tool", text, tool_call_id=message.tool_call_id, index=index)
            )
        else:
            calls = tuple(
                ToolCallPart(
                    id=call.id,
                    name=call.function.name,
                    arguments=parse_arguments(call.function.arguments),
                )
                for call in message.tool_calls or ()
            )
            conversation.append(ClientMessage(message.role, text, calls, index=index))
    return ("\n\n".join(system) if system else None), conversation


def _text(content: str | list[dict[str, Any]] | None, index: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for position, part in enumerate(content):
        kind = part.get("type")
        if kind not in ("text", "refusal"):
            raise _unsupported(
                f"messages[{index}].content[{position}]",
                f"content parts of type {kind!r} are not supported (text only)",
            )
        texts.append(str(part.get(kind, "")))
    return "".join(texts)


def _tool_spec(tool: ToolIn) -> ToolSpec:
    function = tool.function
    return ToolSpec(function.name, function.description, function.parameters)


def _envelope(turn: CompatTurn, result: TurnResult | None, kind: str) -> dict[str, Any]:
    handle = turn.handle
    model = (result.answered_model if result else None) or handle.model
    return {
        "id": f"chatcmpl-{handle.run_id}",
        "object": kind,
        "created": int(time.time()),
        "model": f"{handle.harness}/{model}",
        "system_fingerprint": None,
    }


def _message(text: str, calls: list[ToolCallPart]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if calls:
        message["tool_calls"] = [_tool_call(call) for call in calls]
    return message


def _tool_call(call: ToolCallPart) -> dict[str, Any]:
    arguments = json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":"))
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def _finish_reason(result: TurnResult) -> str:
    if result.status == "requires_action":
        return "tool_calls"
    if result.message is not None and result.message.status == "incomplete":
        return "length"
    return "stop"


def _usage(result: TurnResult) -> dict[str, Any]:
    usage = result.usage
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"
