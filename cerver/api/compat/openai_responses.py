"""``POST /v1/responses`` and ``GET /v1/responses/{id}``: a subset of OpenAI's Responses API.

A Responses client either sends only what is new and names where the conversation continues
(``previous_response_id``, a response of this gateway; ``conversation``, a Cerver session id
as a string or ``{"id": …}``; or the ``X-Cerver-Session-Id`` header), or re-sends the whole
conversation as input items, as the Vercel AI SDK does. An input holding assistant messages or
``function_call`` items is such a conversation, matched against the transcript exactly as
Chat Completions' messages are (:mod:`cerver.api.compat.history`). Without a session named, a
new session is created. Each response is one Cerver run, and its id encodes the session and
the run (``resp_<session hex><run hex>``), so any gateway process can answer
``GET /v1/responses/{id}`` from the store.

Supported: ``model`` (the grammar of :mod:`cerver.api.compat.model_names`; omitted with a
previous response or conversation: the session's own), ``input`` (a string, or ``message``
items with text content, ``function_call`` and ``function_call_output`` items), ``instructions``,
``previous_response_id`` (the conversation's latest response only: Cerver never forks
silently; fork with ``POST /v2/sessions/{id}/fork``), ``conversation``, ``stream`` (typed
events with ``sequence_number``), ``tools`` (``type: "function"``), ``tool_choice``
``auto``/``none``, ``max_output_tokens``, ``temperature``, ``user``, ``store: true`` and
``background: true`` (the request returns at once, ``queued``; the turn runs on in the
gateway, a client disconnect does not stop it, and ``POST /v1/responses/{id}/cancel`` does).
Anything else (built-in tools, ``include``…) is a 400 naming it.

Any response's events can be read again, from the start or after the ``sequence_number`` a
client last saw: ``GET /v1/responses/{id}?stream=true&starting_after=N``. They are rebuilt from
the session's event log (which holds every text delta) and the live turn, so a resumed stream
continues the original one event for event, on any gateway process.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from cerver.api.compat.deps import CompatAccountDep, SessionIdHeader
from cerver.api.compat.history import ASSISTANT_TEXT_SEPARATOR, ClientMessage, Reconciled
from cerver.api.compat.model_names import parse_model
from cerver.api.compat.schemas import OpenModel
from cerver.api.compat.turns import (
    Finished,
    TextOut,
    ToolCallOut,
    TurnOptionsIn,
    cerver_headers,
    failure_error,
    follow,
    follow_run,
    raise_for_failure,
    start_turn,
)
from cerver.api.deps import GatewayDep
from cerver.api.sse import sse_response
from cerver.errors import Conflict, ErrorCode, InvalidRequest, NotFound
from cerver.gateway import Gateway
from cerver.services.client_tools import pending_tool_calls, result_entries
from cerver.services.turns import TurnResult
from cerver.store import RunRecord, SessionRecord
from cerver.store.schema import MAX_INTEGER
from cerver.types import Entry, ToolCallPart, ToolResultPart, Usage
from harnesses.tools import CLIENT_TOOL_KEY, ToolSpec, parse_arguments

__all__ = ["ResponseCreate", "router"]

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

ORIGIN = "responses"
_TEXT_PARTS = ("input_text", "output_text", "text")
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
    background: bool | None = False


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
    system, messages = _input(body.input, await _referenced(gateway, session_id, body.input))
    if body.instructions:
        system = f"{body.instructions}\n\n{system}" if system else body.instructions
    tools = () if body.tool_choice == "none" else tuple(_tool_spec(t) for t in body.tools or ())
    resent = any(m.role == "assistant" for m in messages)
    if resent and previous_run is not None:
        raise InvalidRequest(
            "input re-sends the conversation (assistant messages or function_call items) and "
            "previous_response_id names where it continues: send one or the other.",
            context={"param": "previous_response_id"},
        )

    def plan(entries: Sequence[Entry]) -> Reconciled:
        return _plan(entries, messages, previous_run, body.previous_response_id)

    turn = await start_turn(
        gateway,
        account,
        session_id=session_id,
        user=body.user,
        model=parse_model(body.model, gateway.harnesses) if body.model else None,
        messages=messages if resent else plan,
        tools=tools,
        options=TurnOptionsIn(
            system_prompt=system,
            max_tokens=body.max_output_tokens,
            temperature=body.temperature,
        ),
        origin=ORIGIN,
        detached=bool(body.background),
    )
    echo = {
        "instructions": body.instructions,
        "previous_response_id": body.previous_response_id,
        "tools": [t.model_dump(exclude_none=True) for t in body.tools or ()],
        "max_output_tokens": body.max_output_tokens,
        "temperature": body.temperature,
        "user": body.user,
    }
    rid = response_id(turn.session.id, turn.handle.run_id)
    model = f"{turn.handle.harness}/{turn.handle.model}"
    if body.stream:
        # A client that goes away stops reading, not the turn (background or not).
        events = _typed_events(rid, turn.session.id, model, follow(turn.handle), echo)
        return sse_response(events, cerver_headers(turn))  # type: ignore[return-value]
    if body.background:
        queued = _response(rid, turn.session.id, model, "queued", [], None, echo)
        return JSONResponse({**queued, "background": True}, headers=cerver_headers(turn))
    finished: Finished | None = None
    async for item in follow(turn.handle):
        if isinstance(item, Finished):
            finished = item
    assert finished is not None
    raise_for_failure(finished.result, turn.session.id)
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


@router.get(
    "/responses/{response_id}",
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON or SSE"}},
)
async def retrieve_response(
    response_id: str,
    gateway: GatewayDep,
    account: CompatAccountDep,
    stream: bool = False,
    starting_after: Annotated[int | None, Query(ge=-1, le=MAX_INTEGER)] = None,
) -> JSONResponse:
    """A response as stored (its run's status, output items and usage), or with
    ``stream=true`` its typed events, those after ``starting_after`` only when given."""
    session, run_id, run = await _find(gateway, account.id, response_id)
    headers = {"X-Cerver-Session-Id": session.id, "X-Cerver-Run-Id": run_id}
    if stream:
        model = f"{run.harness}/{run.model}" if run else "unknown"
        items = follow_run(gateway, session.id, run_id)
        after = -1 if starting_after is None else starting_after
        events = _typed_events(response_id, session.id, model, items, {}, starting_after=after)
        return sse_response(events, headers)  # type: ignore[return-value]
    if starting_after is not None:
        raise InvalidRequest(
            "starting_after applies to a stream: add stream=true.",
            context={"param": "starting_after"},
        )
    return await _stored_response(gateway, session.id, response_id, run, headers)


@router.post("/responses/{response_id}/cancel")
async def cancel_response(
    response_id: str, gateway: GatewayDep, account: CompatAccountDep
) -> JSONResponse:
    """Stop a response's turn (as ``POST /v2/sessions/{id}/runs/{run}/cancel``): the partial
    output is kept, and the response is answered as it ended."""
    session, run_id, _ = await _find(gateway, account.id, response_id)
    run = await gateway.runs.cancel(session.id, run_id)  # a record even for a queued turn
    headers = {"X-Cerver-Session-Id": session.id, "X-Cerver-Run-Id": run_id}
    return await _stored_response(gateway, session.id, response_id, run, headers)


async def _stored_response(
    gateway: Gateway,
    session_id: str,
    response_id: str,
    run: RunRecord | None,
    headers: dict[str, str],
) -> JSONResponse:
    """The response as its run and transcript entries record it (``queued`` without a run)."""
    if run is None:  # accepted here, still waiting for its session's running turn
        queued = _response(response_id, session_id, "unknown", "queued", [], None, {})
        return JSONResponse(queued, headers=headers)
    entries = [e for e in await gateway.sessions.transcript(session_id) if e.run_id == run.id]
    texts = [e.content for e in entries if e.role == "assistant" and e.kind == "text"]
    calls = [
        call
        for e in entries
        if e.kind == "tool_call" and e.metadata.get(CLIENT_TOOL_KEY) and (call := e.tool_call)
    ]
    usage = sum((e.usage for e in entries if e.usage is not None), Usage())
    body = _response(
        response_id,
        session_id,
        f"{run.harness}/{run.answered_model or run.model}",
        _status(run.status),
        _output(response_id, texts, calls),
        usage,
        {},
        created_at=int(run.started_at.timestamp()),
    )
    if body["status"] == "failed" and run.error:  # as the stream's response.failed says it
        body["error"] = {"code": ErrorCode.RUN_FAILED.value, "message": run.error}
    return JSONResponse(body, headers=headers)


async def _find(
    gateway: Gateway, account_id: str, response_id: str
) -> tuple[SessionRecord, str, RunRecord | None]:
    """The session, run id and run record a response id names; the record is ``None`` for a
    turn accepted by this process that has not started yet.

    Raises:
        NotFound: no such response of this account.
    """
    session_id, run_id = parse_response_id(response_id)
    missing = NotFound(f"Response {response_id!r} not found.", context={"param": "response_id"})
    try:
        session = await gateway.sessions.get(account_id, session_id)
    except NotFound:
        raise missing from None
    try:
        return session, run_id, await gateway.store.runs.get(session.id, run_id)
    except NotFound:
        if gateway.turns.running(run_id) is None:
            raise missing from None
        return session, run_id, None


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
    messages: list[ClientMessage],
    previous_run: str | None,
    previous_id: str | None,
) -> Reconciled:
    """What an input of only new items adds: user messages and the app's function outputs."""
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
        ToolResultPart(tool_call_id=m.tool_call_id or "", output=m.text)
        for m in messages
        if m.role == "tool"
    ]
    users = [m.text for m in messages if m.role == "user"]
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


async def _referenced(
    gateway: Gateway, session_id: str | None, value: str | list[dict[str, Any]]
) -> dict[str, str]:
    """The texts of this gateway's message items that ``input`` names by ``item_reference``
    (the Vercel AI SDK re-sends earlier answers that way), by item id."""
    if isinstance(value, str) or not any(i.get("type") == "item_reference" for i in value):
        return {}
    if session_id is None:
        raise InvalidRequest(
            "input holds an item_reference, which needs the conversation it refers to: name "
            "it with X-Cerver-Session-Id or conversation.",
            context={"param": "input"},
        )
    answers: dict[str, list[str]] = {}
    for entry in await gateway.sessions.transcript(session_id):
        if entry.run_id and entry.role == "assistant" and entry.kind == "text":
            answers.setdefault(entry.run_id, []).append(entry.content)
    return {
        _message_item(response_id(session_id, run_id), 0, "")["id"]: (
            ASSISTANT_TEXT_SEPARATOR.join(texts)
        )
        for run_id, texts in answers.items()
    }


def _input(
    value: str | list[dict[str, Any]], referenced: dict[str, str]
) -> tuple[str | None, list[ClientMessage]]:
    """The system text, and the input's conversation items in order.

    An ``item_reference`` stands for the message item of this gateway it names, whose text
    ``referenced`` holds.

    Consecutive assistant-side items (``assistant`` messages and ``function_call`` items)
    are one answer, joined as :mod:`~cerver.api.compat.history` shows an answer.
    """
    if isinstance(value, str):
        return None, [ClientMessage("user", value, field="input")]
    system: list[str] = []
    messages: list[ClientMessage] = []

    def answer(index: int, text: str = "", calls: tuple[ToolCallPart, ...] = ()) -> None:
        """Add to the answer the last message is, or start one."""
        if messages and messages[-1].role == "assistant":
            messages[-1] = messages[-1].extended(text, calls)
        else:
            messages.append(ClientMessage("assistant", text, calls, index=index, field="input"))

    for index, item in enumerate(value):
        kind, role = item.get("type", "message"), item.get("role")
        if kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else json.dumps(output)
            call_id = str(item.get("call_id", ""))
            messages.append(
                ClientMessage("tool", text, tool_call_id=call_id, index=index, field="input")
            )
        elif kind == "function_call":
            call = ToolCallPart(
                id=str(item.get("call_id", "")),
                name=str(item.get("name", "")),
                arguments=parse_arguments(str(item.get("arguments") or "{}")),
            )
            answer(index, calls=(call,))
        elif kind == "item_reference":
            text = referenced.get(str(item.get("id")))
            if text is None:
                raise InvalidRequest(
                    f"input[{index}]: item_reference {item.get('id')!r} names no answer of this "
                    "conversation (Cerver resolves the message items it returned).",
                    context={"param": f"input[{index}]"},
                )
            answer(index, text)
        elif kind == "message" and role in ("user", "system", "developer", "assistant"):
            text = _content_text(item.get("content"), index)
            if role == "user":
                messages.append(ClientMessage("user", text, index=index, field="input"))
            elif role == "assistant":
                answer(index, text)
            else:
                system.append(text)
        else:
            raise _unsupported(
                f"input[{index}]",
                "only messages, item_reference, function_call and function_call_output items "
                "are supported",
            )
    if not messages:
        raise InvalidRequest("input holds nothing to answer.", context={"param": "input"})
    return ("\n\n".join(system) or None), messages


def _content_text(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for position, part in enumerate(content or []):
        if not isinstance(part, dict) or part.get("type") not in _TEXT_PARTS:
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
    """A response's output: one message holding its answer's texts (joined as a re-sent
    conversation shows them, the same item as streamed), then the calls of the app's tools."""
    answer = ASSISTANT_TEXT_SEPARATOR.join(t for t in texts if t)
    items = [_message_item(rid, 0, answer)] if answer else []
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


async def _typed_events(
    rid: str,
    session_id: str,
    model: str,
    items: AsyncIterator[TextOut | ToolCallOut | Finished],
    echo: dict[str, Any],
    *,
    starting_after: int = -1,
) -> AsyncIterator[bytes]:
    """The Responses API's typed events, each with its ``sequence_number``.

    The events are a function of the turn's answer ``items``, so the same turn read again
    (:func:`~cerver.api.compat.turns.follow_run`) numbers them the same; those numbered
    ``starting_after`` or lower are not sent.
    """
    sequence = 0

    def event(kind: str, **data: Any) -> bytes:
        nonlocal sequence
        payload = {"type": kind, "sequence_number": sequence, **data}
        sequence += 1
        if payload["sequence_number"] <= starting_after:
            return b""
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    pending = _response(rid, session_id, model, "in_progress", [], None, echo)
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
        text.clear()
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

    async for item in items:
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
            answered = f"{result.harness}/{result.answered_model or result.model}"
            final = _response(
                rid, session_id, answered, _status(result.status), output, result.usage, echo
            )
            if result.status == "failed":
                exc = failure_error(result, session_id)
                final["error"] = {"code": exc.code, "message": exc.message}
                yield event("response.failed", response=final)
                return
            yield event("response.completed", response=final)
