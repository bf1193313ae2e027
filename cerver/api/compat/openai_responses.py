"""``POST /v1/responses`` and ``GET /v1/responses/{id}``: a subset of OpenAI's Responses API.

Unlike Chat Completions, a Responses client sends only what is new and names where the
conversation continues: ``previous_response_id`` (a response of this gateway),
``conversation`` (a Cerver session id, as a string or ``{"id": …}``), or the
``X-Cerver-Session-Id`` header; with none of them a new session is created. Each response is
one Cerver run, and its id encodes the session and the run (``resp_<session hex><run hex>``),
so any gateway process can answer ``GET /v1/responses/{id}`` from the store.

Supported: ``model`` (the grammar of :mod:`cerver.api.compat.model_names`; omitted with a
previous response or conversation: the session's own), ``input`` (a string, or ``message``
items with text content and ``function_call_output`` items), ``instructions``,
``previous_response_id`` (the conversation's latest response only: Cerver never forks
silently; fork with ``POST /v2/sessions/{id}/fork``), ``conversation``, ``stream`` (typed
events with ``sequence_number``), ``tools`` (``type: "function"``), ``tool_choice``
``auto``/``none``, ``max_output_tokens``, ``temperature``, ``user``, ``store: true``. Anything
else (``background``, ``GET …?stream=true`` resumption, built-in tools…) is a 400 naming it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import orjson
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from cerver.api.compat.deps import CompatAccountDep, SessionIdHeader
from cerver.api.compat.history import Reconciled
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
from cerver.errors import Conflict, InvalidRequest, NotFound
from cerver.services.client_tools import pending_tool_calls, result_entries
from cerver.services.turns import TurnResult
from cerver.types import Entry, ToolCallPart, ToolResultPart, Usage
from harnesses.tools import CLIENT_TOOL_KEY, ToolSpec

__all__ = ["ResponseCreate", "router"]

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

ORIGIN = "responses"
_ID = re.compile(r"^resp_([0-9a-f]{24})([0-9a-f]{24})$")


class FunctionTool(BaseModel):
    type: Literal["function"]
    name: str
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


class ResponseCreate(OpenModel):
    model: str | None = None
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    stream: bool | None = False
    tools: list[FunctionTool] | None = None
    tool_choice: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1, le=200_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    user: str | None = Field(default=None, max_length=200)
    store: bool | None = None


def response_id(session_id: str, run_id: str) -> str:
    """``resp_`` + the session's and the run's hex parts."""
    return f"resp_{session_id.removeprefix('sess_')}{run_id.removeprefix('run_')}"


def parse_response_id(value: str) -> tuple[str, str]:
    """The (session id, run id) a response id names.

    Raises:
        NotFound: not an id this gateway gives out.
    """
    match = _ID.match(value)
    if match is None:
        raise NotFound(
            f"Response {value!r} not found.", context={"param": "response_id", "id": value}
        )
    return f"sess_{match.group(1)}", f"run_{match.group(2)}"


@router.post(
    "/responses",
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON or SSE"}},
)
async def create_response(
    body: ResponseCreate,
    gateway: GatewayDep,
    account: CompatAccountDep,
    session_id: SessionIdHeader = None,
) -> JSONResponse:
    """Run one turn of a Cerver session and answer as OpenAI's Responses API."""
    _refuse_unsupported(body)
    session_id, previous_run = _session_of(body, session_id)
    if session_id is not None:
        await gateway.sessions.get(account.id, session_id)  # 404 before anything else
    system, items = _input(body.input)
    if body.instructions:
        system = f"{body.instructions}\n\n{system}" if system else body.instructions
    tools = () if body.tool_choice == "none" else tuple(_tool_spec(t) for t in body.tools or ())

    def plan(entries: Sequence[Entry]) -> Reconciled:
        return _plan(entries, items, previous_run, body.previous_response_id)

    turn = await start_turn(
        gateway,
        account,
        session_id=session_id,
        user=body.user,
        model=parse_model(body.model, gateway.harnesses) if body.model else None,
        messages=plan,
        tools=tools,
        options=TurnOptionsIn(
            system_prompt=system,
            max_tokens=body.max_output_tokens,
            temperature=body.temperature,
        ),
        origin=ORIGIN,
    )
    echo = {
        "instructions": body.instructions,
        "previous_response_id": body.previous_response_id,
        "tools": [t.model_dump(exclude_none=True) for t in body.tools or ()],
        "max_output_tokens": body.max_output_tokens,
        "temperature": body.temperature,
        "user": body.user,
    }
    if body.stream:
        return sse_response(_events(turn, echo), cerver_headers(turn))  # type: ignore[return-value]
    finished: Finished | None = None
    async for item in follow(turn.handle):
        if isinstance(item, Finished):
            finished = item
    assert finished is not None
    raise_for_failure(finished.result, turn.session.id)
    rid = response_id(turn.session.id, turn.handle.run_id)
    output = _output(rid, [finished.text] if finished.text else [], finished.tool_calls)
    body_out = _response(
        rid,
        turn.session.id,
        f"{turn.handle.harness}/{finished.result.answered_model or turn.handle.model}",
        _status(finished.result.status),
        output,
        finished.result.usage,
        echo,
    )
    return JSONResponse(body_out, headers=cerver_headers(turn))


@router.get("/responses/{response_id}")
async def retrieve_response(
    response_id: str, gateway: GatewayDep, account: CompatAccountDep
) -> JSONResponse:
    """A response as stored: its run's status, output items and usage."""
    session_id, run_id = parse_response_id(response_id)
    try:
        session = await gateway.sessions.get(account.id, session_id)
        run = await gateway.store.runs.get(session.id, run_id)
    except NotFound:
        raise NotFound(
            f"Response {response_id!r} not found.", context={"param": "response_id"}
        ) from None
    entries = [e for e in await gateway.sessions.transcript(session.id) if e.run_id == run_id]
    texts = [e.content for e in entries if e.role == "assistant" and e.kind == "text"]
    calls = [
        call
        for e in entries
        if e.kind == "tool_call" and e.metadata.get(CLIENT_TOOL_KEY) and (call := e.tool_call)
    ]
    usage = sum((e.usage for e in entries if e.usage is not None), Usage())
    model = f"{run.harness}/{run.answered_model or run.model}"
    body = _response(
        response_id,
        session.id,
        model,
        _status(run.status),
        _output(response_id, texts, calls),
        usage,
        {},
        created_at=int(run.started_at.timestamp()),
    )
    return JSONResponse(
        body, headers={"X-Cerver-Session-Id": session.id, "X-Cerver-Run-Id": run_id}
    )


def _session_of(body: ResponseCreate, header: str | None) -> tuple[str | None, str | None]:
    """The session (and previous run) the request continues, from the one place it names."""
    conversation = body.conversation
    if isinstance(conversation, dict):
        conversation = conversation.get("id")
    named = [n for n in (body.previous_response_id, conversation, header) if n]
    if len(named) > 1:
        raise InvalidRequest(
            "Name the conversation once: previous_response_id, conversation or the "
            "X-Cerver-Session-Id header.",
            context={"param": "previous_response_id"},
        )
    if body.previous_response_id:
        return parse_response_id(body.previous_response_id)
    return (str(conversation) if conversation else header), None


def _plan(
    entries: Sequence[Entry],
    items: list[tuple[str, str, str | None]],
    previous_run: str | None,
    previous_id: str | None,
) -> Reconciled:
    """What the input adds: user messages and the app's function call outputs."""
    next_seq = (entries[-1].seq or 0) + 1 if entries else 1
    if previous_run is not None:
        latest = next((e.run_id for e in reversed(entries) if e.run_id), None)
        if latest != previous_run:
            raise Conflict(
                f"Response {previous_id!r} is not the latest of its conversation: Cerver does "
                "not fork a conversation silently. Continue from the latest response, or fork "
                "the session (POST /v2/sessions/{id}/fork).",
                context={"param": "previous_response_id"},
            )
    outputs = [
        ToolResultPart(tool_call_id=call_id or "", output=text)
        for kind, text, call_id in items
        if kind == "function_call_output"
    ]
    users = [text for kind, text, _ in items if kind == "user"]
    pending = pending_tool_calls(entries)
    prelude: list[Entry] = []
    if outputs:
        prelude = result_entries(pending, outputs, source=ORIGIN)
    elif pending:
        missing = ", ".join(repr(c.id) for c in pending)
        raise InvalidRequest(
            f"No tool output found for function call(s) {missing}: send a "
            "function_call_output item for each.",
            context={"param": "input", "missing": [c.id for c in pending]},
        )
    for text in users[:-1]:
        prelude.append(Entry(role="user", content=text, metadata={"source": ORIGIN}))
    return Reconciled(users[-1] if users else "", prelude, next_seq)


def _input(
    value: str | list[dict[str, Any]],
) -> tuple[str | None, list[tuple[str, str, str | None]]]:
    """The system text, and the input as ``(kind, text, call_id)`` in order."""
    if isinstance(value, str):
        return None, [("user", value, None)]
    system: list[str] = []
    items: list[tuple[str, str, str | None]] = []
    for index, item in enumerate(value):
        kind = item.get("type", "message")
        if kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else json.dumps(output)
            items.append(("function_call_output", text, str(item.get("call_id", ""))))
        elif kind == "message" and item.get("role") in ("user", "system", "developer"):
            text = _content_text(item.get("content"), index)
            if item["role"] == "user":
                items.append(("user", text, None))
            else:
                system.append(text)
        else:
            raise _unsupported(
                f"input[{index}]",
                "only user, system and developer messages and function_call_output items are "
                "supported (Cerver holds the rest of the conversation)",
            )
    if not items:
        raise InvalidRequest("input holds nothing to answer.", context={"param": "input"})
    return ("\n\n".join(system) or None), items


def _content_text(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for position, part in enumerate(content or []):
        if not isinstance(part, dict) or part.get("type") not in ("input_text", "text"):
            raise _unsupported(f"input[{index}].content[{position}]", "text content only")
        texts.append(str(part.get("text", "")))
    return "".join(texts)


def _refuse_unsupported(body: ResponseCreate) -> None:
    for name in body.model_extra or {}:
        raise _unsupported(name, "Cerver does not support it")
    if body.store is False:
        raise _unsupported("store", "Cerver always keeps the conversation (it is the session)")
    if body.tool_choice not in (None, "auto", "none"):
        raise _unsupported("tool_choice", "only 'auto' and 'none' are supported")
    if body.model is None and not (body.previous_response_id or body.conversation):
        raise InvalidRequest(
            "model is required for a new conversation.", context={"param": "model"}
        )


def _unsupported(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"Unsupported parameter {param!r}: {why}. See the README's OpenAI-compatible section "
        "for what /v1/responses accepts.",
        context={"param": param, "unsupported": param},
    )


def _tool_spec(tool: FunctionTool) -> ToolSpec:
    return ToolSpec(tool.name, tool.description or "", tool.parameters)


def _status(run_status: str) -> str:
    return {
        "completed": "completed",
        "requires_action": "completed",
        "running": "in_progress",
        "cancelled": "cancelled",
    }.get(run_status, "failed")


def _output(rid: str, texts: list[str], calls: list[ToolCallPart]) -> list[dict[str, Any]]:
    items = [_message_item(rid, index, text) for index, text in enumerate(texts)]
    items.extend(_call_item(call) for call in calls)
    return items


def _message_item(rid: str, index: int, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}] if text else []
    return {
        "type": "message",
        "id": f"msg_{rid.removeprefix('resp_')}_{index}",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _call_item(call: ToolCallPart, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{call.id}",
        "call_id": call.id,
        "name": call.name,
        "arguments": json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":")),
        "status": status,
    }


def _response(
    rid: str,
    session_id: str,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None,
    echo: dict[str, Any],
    *,
    created_at: int | None = None,
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "created_at": created_at or int(time.time()),
        "status": status,
        "model": model,
        "output": output,
        "conversation": {"id": session_id},
        "error": None,
        "incomplete_details": None,
        "instructions": echo.get("instructions"),
        "previous_response_id": echo.get("previous_response_id"),
        "tools": echo.get("tools", []),
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "max_output_tokens": echo.get("max_output_tokens"),
        "temperature": echo.get("temperature"),
        "top_p": None,
        "user": echo.get("user"),
        "metadata": {},
        "store": True,
        "text": {"format": {"type": "text"}},
        "truncation": "disabled",
        "usage": _usage(usage) if usage is not None else None,
    }


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


async def _events(turn: CompatTurn, echo: dict[str, Any]) -> AsyncIterator[bytes]:
    """The Responses API's typed events, each with its ``sequence_number``."""
    rid = response_id(turn.session.id, turn.handle.run_id)
    model = f"{turn.handle.harness}/{turn.handle.model}"
    sequence = 0

    def event(kind: str, **data: Any) -> bytes:
        nonlocal sequence
        payload = {"type": kind, "sequence_number": sequence, **data}
        sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    pending = _response(rid, turn.session.id, model, "in_progress", [], None, echo)
    yield event("response.created", response=pending)
    yield event("response.in_progress", response=pending)
    output: list[dict[str, Any]] = []
    text: list[str] = []
    message: dict[str, Any] | None = None

    def close_message() -> list[bytes]:
        nonlocal message
        if message is None:
            return []
        done = _message_item(rid, 0, "".join(text))
        output.append(done)
        index, item_id, part = len(output) - 1, done["id"], done["content"][0]
        message = None
        return [
            event(
                "response.output_text.done",
                item_id=item_id,
                output_index=index,
                content_index=0,
                text=part["text"],
                logprobs=[],
            ),
            event(
                "response.content_part.done",
                item_id=item_id,
                output_index=index,
                content_index=0,
                part=part,
            ),
            event("response.output_item.done", output_index=index, item=done),
        ]

    async for item in follow(turn.handle):
        if isinstance(item, TextOut):
            index = len(output)
            if message is None:
                message = _message_item(rid, 0, "", status="in_progress")
                yield event("response.output_item.added", output_index=index, item=message)
                part = {"type": "output_text", "text": "", "annotations": []}
                yield event(
                    "response.content_part.added",
                    item_id=message["id"],
                    output_index=index,
                    content_index=0,
                    part=part,
                )
            text.append(item.text)
            yield event(
                "response.output_text.delta",
                item_id=message["id"],
                output_index=index,
                content_index=0,
                delta=item.text,
                logprobs=[],
            )
            continue
        for chunk in close_message():
            yield chunk
        if isinstance(item, ToolCallOut):
            index = len(output)
            done = _call_item(item.call)
            added = {**done, "arguments": "", "status": "in_progress"}
            yield event("response.output_item.added", output_index=index, item=added)
            yield event(
                "response.function_call_arguments.delta",
                item_id=done["id"],
                output_index=index,
                delta=done["arguments"],
            )
            yield event(
                "response.function_call_arguments.done",
                item_id=done["id"],
                output_index=index,
                arguments=done["arguments"],
            )
            yield event("response.output_item.done", output_index=index, item=done)
            output.append(done)
        elif isinstance(item, Finished):
            result: TurnResult = item.result
            answered = f"{turn.handle.harness}/{result.answered_model or turn.handle.model}"
            final = _response(
                rid, turn.session.id, answered, _status(result.status), output, result.usage, echo
            )
            if result.status == "failed":
                exc = failure_error(result, turn.session.id)
                final["error"] = {"code": exc.code, "message": exc.message}
                yield event("response.failed", response=final)
                return
            yield event("response.completed", response=final)
