"""``POST /v1/messages``: Anthropic's Messages API on a Cerver session.

A translation layer like :mod:`cerver.api.compat.openai_chat`: one request is one turn of
:mod:`cerver.api.compat.turns`, answered as a ``message`` or as Anthropic's event sequence
(``message_start``, ``content_block_start`` / ``content_block_delta`` / ``content_block_stop``
per block, ``message_delta`` with the stop reason and usage, ``message_stop``). Authenticate
with the ``x-api-key`` header the ``anthropic`` SDK sends (a ``ck_…`` key).

Supported: ``model`` (the grammar of :mod:`cerver.api.compat.model_names`), ``max_tokens``,
``messages`` (``text``, ``tool_use`` and ``tool_result`` blocks), ``system`` (text),
``stream``, ``tools`` (custom tools with ``input_schema``), ``tool_choice`` ``auto`` or
``none``, ``temperature``, ``metadata.user_id`` (the end-user id of a new session). Any other
parameter or block type is a 400 naming it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from cerver.api.compat.deps import CompatAccountDep, SessionIdHeader
from cerver.api.compat.errors import anthropic_error_body
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
from harnesses.tools import ToolSpec

__all__ = ["MessageCreate", "router"]

router = APIRouter(prefix="/v1", tags=["anthropic-compatible"])

ORIGIN = "messages"


class MessageIn(BaseModel):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class ToolIn(OpenModel):
    name: str
    description: str = ""
    input_schema: dict[str, Any]


class Metadata(BaseModel):
    user_id: str | None = Field(default=None, max_length=200)


class MessageCreate(OpenModel):
    model: str
    max_tokens: int = Field(ge=1, le=200_000)
    messages: list[MessageIn] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    stream: bool = False
    tools: list[ToolIn] | None = None
    tool_choice: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    metadata: Metadata | None = None


@router.post(
    "/messages",
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON or SSE"}},
)
async def create_message(
    body: MessageCreate,
    gateway: GatewayDep,
    account: CompatAccountDep,
    session_id: SessionIdHeader = None,
) -> JSONResponse:
    """Run one turn of a Cerver session and answer as Anthropic's Messages API.

    The session comes from ``X-Cerver-Session-Id``; without it a new session is created and
    its id returned in that header. Re-sent history is matched against the transcript.
    """
    _refuse_unsupported(body)
    choice = (body.tool_choice or {}).get("type", "auto")
    tools = () if choice == "none" else tuple(_tool_spec(t) for t in body.tools or ())
    turn = await start_turn(
        gateway,
        account,
        session_id=session_id,
        user=body.metadata.user_id if body.metadata else None,
        model=parse_model(body.model, gateway.harnesses),
        messages=_conversation(body.messages),
        tools=tools,
        options=TurnOptionsIn(
            system_prompt=_system(body.system),
            max_tokens=body.max_tokens,
            temperature=body.temperature,
        ),
        origin=ORIGIN,
    )
    if body.stream:
        return sse_response(_events(turn), cerver_headers(turn))  # type: ignore[return-value]
    finished: Finished | None = None
    async for item in follow(turn.handle):
        if isinstance(item, Finished):
            finished = item
    assert finished is not None
    raise_for_failure(finished.result, turn.session.id)
    content: list[dict[str, Any]] = []
    if finished.text:
        content.append({"type": "text", "text": finished.text})
    content.extend(_tool_use(call) for call in finished.tool_calls)
    message = {
        **_message_start(turn, finished.result),
        "content": content,
        "stop_reason": _stop_reason(finished.result),
        "usage": _usage(finished.result),
    }
    return JSONResponse(message, headers=cerver_headers(turn))


async def _events(turn: CompatTurn) -> AsyncIterator[bytes]:
    """Anthropic's streaming event sequence for the turn."""
    start = {**_message_start(turn, None), "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": 0, "output_tokens": 0}
    yield _sse("message_start", {"type": "message_start", "message": start})
    index = -1
    open_text = False
    async for item in follow(turn.handle):
        if isinstance(item, TextOut):
            if not open_text:
                index += 1
                open_text = True
                block = {"type": "text", "text": ""}
                yield _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": block},
                )
            delta = {"type": "text_delta", "text": item.text}
            yield _sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
            continue
        if open_text:
            open_text = False
            yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
        if isinstance(item, ToolCallOut):
            index += 1
            block = {**_tool_use(item.call), "input": {}}
            yield _sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
            partial = json.dumps(item.call.arguments, ensure_ascii=False)
            delta = {"type": "input_json_delta", "partial_json": partial}
            yield _sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
            yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
        elif isinstance(item, Finished):
            result = item.result
            if result.status == "failed":
                yield _sse("error", _stream_error(result, turn.session.id))
                return
            stop = {"stop_reason": _stop_reason(result), "stop_sequence": None}
            yield _sse(
                "message_delta",
                {"type": "message_delta", "delta": stop, "usage": _usage(result)},
            )
            yield _sse("message_stop", {"type": "message_stop"})


def _stream_error(result: TurnResult, session_id: str) -> dict[str, Any]:
    exc = failure_error(result, session_id)
    return anthropic_error_body(exc.status_code, exc.message)


def _refuse_unsupported(body: MessageCreate) -> None:
    """400 for what Cerver does not do, naming the parameter (never dropped silently)."""
    for name in body.model_extra or {}:
        raise _unsupported(name, "Cerver does not support it")
    choice = (body.tool_choice or {}).get("type", "auto")
    if choice not in ("auto", "none"):
        raise _unsupported("tool_choice", "only 'auto' and 'none' are supported")
    for index, tool in enumerate(body.tools or ()):
        for name in tool.model_extra or {}:
            if name != "type" or tool.model_extra[name] != "custom":
                raise _unsupported(f"tools[{index}].{name}", "only custom tools are supported")


def _unsupported(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"Unsupported parameter {param!r}: {why}. See the README's Anthropic-compatible "
        "section for what /v1/messages accepts.",
        context={"param": param, "unsupported": param},
    )


def _system(system: str | list[dict[str, Any]] | None) -> str | None:
    if system is None or isinstance(system, str):
        return system or None
    texts = []
    for position, block in enumerate(system):
        if block.get("type") != "text":
            raise _unsupported(f"system[{position}]", "only text blocks are supported")
        texts.append(str(block.get("text", "")))
    return "\n\n".join(texts) or None


def _conversation(messages: list[MessageIn]) -> list[ClientMessage]:
    """Messages as neutral messages: a user message's ``tool_result`` blocks become tool
    results (before its text), an assistant's ``tool_use`` blocks its tool calls."""
    conversation: list[ClientMessage] = []
    for index, message in enumerate(messages):
        blocks = (
            [{"type": "text", "text": message.content}]
            if isinstance(message.content, str)
            else message.content
        )
        texts: list[str] = []
        calls: list[ToolCallPart] = []
        for position, block in enumerate(blocks):
            kind = block.get("type")
            if kind == "text":
                texts.append(str(block.get("text", "")))
            elif kind == "tool_use" and message.role == "assistant":
                arguments = block.get("input") if isinstance(block.get("input"), dict) else {}
                calls.append(
                    ToolCallPart(id=block["id"], name=block["name"], arguments=arguments or {})
                )
            elif kind == "tool_result" and message.role == "user":
                conversation.append(
                    ClientMessage(
                        "tool",
                        _result_text(block.get("content"), index, position),
                        tool_call_id=str(block.get("tool_use_id", "")),
                        is_error=bool(block.get("is_error")),
                        index=index,
                    )
                )
            else:
                raise _unsupported(
                    f"messages[{index}].content[{position}]",
                    f"{message.role} content blocks of type {kind!r} are not supported",
                )
        text = "".join(texts)
        if message.role == "assistant":
            conversation.append(ClientMessage("assistant", text, tuple(calls), index=index))
        elif text or not conversation or conversation[-1].index != index:
            conversation.append(ClientMessage("user", text, index=index))
    return conversation


def _result_text(content: Any, index: int, position: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for block in content:
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _unsupported(
                f"messages[{index}].content[{position}].content",
                "tool results hold text blocks only",
            )
        texts.append(str(block.get("text", "")))
    return "".join(texts)


def _tool_spec(tool: ToolIn) -> ToolSpec:
    return ToolSpec(tool.name, tool.description, tool.input_schema)


def _message_start(turn: CompatTurn, result: TurnResult | None) -> dict[str, Any]:
    handle = turn.handle
    model = (result.answered_model if result else None) or handle.model
    return {
        "id": f"msg_{handle.run_id}",
        "type": "message",
        "role": "assistant",
        "model": f"{handle.harness}/{model}",
        "stop_sequence": None,
    }


def _tool_use(call: ToolCallPart) -> dict[str, Any]:
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}


def _stop_reason(result: TurnResult) -> str:
    if result.status == "requires_action":
        return "tool_use"
    if result.message is not None and result.message.status == "incomplete":
        return "max_tokens"
    return "end_turn"


def _usage(result: TurnResult) -> dict[str, Any]:
    return {
        "input_tokens": result.usage.input_tokens,
        "output_tokens": result.usage.output_tokens,
    }


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
