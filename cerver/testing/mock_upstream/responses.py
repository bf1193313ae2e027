"""The OpenAI Responses API (``POST /v1/responses``), as the ``openai`` SDK and the Codex
CLI read it.

Input is a string or a list of items: messages (``input_text`` / ``output_text`` parts),
``function_call`` / ``custom_tool_call`` and their ``*_output`` items; reasoning and other
items are carried but not read. A conversation arrives either replayed in full (``store:
false``) or as a ``previous_response_id`` plus the new items: responses are stored unless the
request says ``store: false``. Streaming sends ``response.created``, ``response.in_progress``,
the output item / content part / text and argument delta events, then ``response.completed``
with ``usage``; every event has an ``event:`` line and a ``sequence_number``.
"""

from __future__ import annotations

import time
from typing import Any

from cerver.testing.mock_upstream import openai_error
from cerver.testing.mock_upstream.dialect import (
    BadRequest,
    Dialect,
    check_tool_pairs,
    encode_sse,
    require,
)
from cerver.testing.mock_upstream.neutral import (
    Conversation,
    Item,
    Output,
    ToolCall,
    ToolSpec,
    as_text,
    split_in_two,
    text_chunks,
)
from cerver.testing.mock_upstream.script import UpstreamFailure
from cerver.testing.mock_upstream.state import MockState

__all__ = ["RESPONSES"]

_CALLS = ("function_call", "custom_tool_call")
_RESULTS = ("function_call_output", "custom_tool_call_output")


def parse(body: dict[str, Any], state: MockState) -> Conversation:
    """Read a Responses request, prepending the stored turns of ``previous_response_id``."""
    model = require(body, "model", str)
    wire = require(body, "input", (str, list))
    if isinstance(wire, str):
        wire = [{"type": "message", "role": "user", "content": wire}]
    if previous := body.get("previous_response_id"):
        stored = state.recall_response(str(previous))
        if stored is None:
            raise BadRequest(
                f"Previous response with id '{previous}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        wire = stored + wire
    items: list[Item] = []
    turn = 0
    for index, entry in enumerate(wire):
        if not isinstance(entry, dict):
            raise BadRequest(f"input[{index}]: expected an object", param=f"input[{index}]")
        new = _items(entry, turn)
        if new is not None:
            items.extend(new)
            turn += 1
    tools = [
        ToolSpec(tool["name"], tool.get("parameters") or {})
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and isinstance(tool.get("name"), str)
    ]
    conversation = Conversation(
        "responses", model, bool(body.get("stream")), items, tools, turn, wire, body
    )
    return check_tool_pairs(conversation)


def _items(entry: dict[str, Any], turn: int) -> list[Item] | None:
    """The items of one input entry, or ``None`` when it is not a conversation turn."""
    kind = entry.get("type", "message" if "role" in entry else None)
    call_id = str(entry.get("call_id", ""))
    if kind in _CALLS:
        return [Item("assistant", "tool_call", turn, call_id=call_id, name=str(entry.get("name")))]
    if kind in _RESULTS:
        return [
            Item("tool", "tool_result", turn, text=as_text(entry.get("output")), call_id=call_id)
        ]
    role = entry.get("role")
    if kind != "message" or role not in ("user", "assistant"):
        return None  # system / developer messages, reasoning, built-in tool items
    content = entry.get("content")
    parts = [{"text": content}] if isinstance(content, str) else content
    if not isinstance(parts, list):
        return []
    texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return [Item(role, "text", turn, text=text) for text in texts]


def _message_item(conversation: Conversation, text: str, status: str) -> dict[str, Any]:
    content = [_text_part(text)] if status == "completed" else []
    return {
        "type": "message",
        "id": f"msg_{conversation.uid}",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _call_item(
    conversation: Conversation, index: int, call: ToolCall, done: bool
) -> dict[str, Any]:
    item = {
        "type": "function_call",
        "id": f"fc_{conversation.uid}_{index}",
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments_json if done else "",
        "status": "completed" if done else "in_progress",
    }
    if call.namespace is not None:
        item["namespace"] = call.namespace
    return item


def _output_items(conversation: Conversation, output: Output) -> list[dict[str, Any]]:
    items = []
    if output.text or not output.tool_calls:
        items.append(_message_item(conversation, output.text, "completed"))
    for index, call in enumerate(output.tool_calls):
        items.append(_call_item(conversation, index, call, done=True))
    return items


def _response(
    conversation: Conversation, output: Output, status: str, items: list[dict[str, Any]]
) -> dict[str, Any]:
    body = conversation.body
    usage = None
    if status == "completed":
        usage = {
            "input_tokens": output.input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": output.total_tokens,
        }
    return {
        "id": f"resp_{conversation.uid}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": output.model,
        "output": items,
        "usage": usage,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "metadata": body.get("metadata") or {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "store": body.get("store", True),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
    }


def render_json(conversation: Conversation, output: Output) -> dict[str, Any]:
    return _response(conversation, output, "completed", _output_items(conversation, output))


def render_events(conversation: Conversation, output: Output) -> list[bytes]:
    events: list[bytes] = []

    def emit(kind: str, **fields: Any) -> None:
        data = {"type": kind, "sequence_number": len(events), **fields}
        events.append(encode_sse(data, kind))

    pending = _response(conversation, output, "in_progress", [])
    emit("response.created", response=pending)
    emit("response.in_progress", response=pending)
    index = 0
    if output.text or not output.tool_calls:
        item_id = f"msg_{conversation.uid}"
        at = {"item_id": item_id, "output_index": index, "content_index": 0}
        emit(
            "response.output_item.added",
            output_index=index,
            item=_message_item(conversation, "", "in_progress"),
        )
        emit("response.content_part.added", **at, part=_text_part(""))
        for chunk in text_chunks(output.text):
            emit("response.output_text.delta", **at, delta=chunk, logprobs=[])
        emit("response.output_text.done", **at, text=output.text, logprobs=[])
        emit("response.content_part.done", **at, part=_text_part(output.text))
        emit(
            "response.output_item.done",
            output_index=index,
            item=_message_item(conversation, output.text, "completed"),
        )
        index += 1
    for number, call in enumerate(output.tool_calls):
        at = {"item_id": f"fc_{conversation.uid}_{number}", "output_index": index}
        emit(
            "response.output_item.added",
            output_index=index,
            item=_call_item(conversation, number, call, done=False),
        )
        for piece in split_in_two(call.arguments_json):
            emit("response.function_call_arguments.delta", **at, delta=piece)
        emit(
            "response.function_call_arguments.done",
            **at,
            name=call.name,
            arguments=call.arguments_json,
        )
        emit(
            "response.output_item.done",
            output_index=index,
            item=_call_item(conversation, number, call, done=True),
        )
        index += 1
    emit("response.completed", response=render_json(conversation, output))
    return events


def render_stream_error(conversation: Conversation, failure: UpstreamFailure, sent: int) -> bytes:
    """A ``response.failed`` event carrying ``failure`` as the response's ``error``."""
    output = Output(conversation.model, "", (), 0, 0)
    response = _response(conversation, output, "failed", [])
    error = openai_error.render_error(failure)["error"]
    response["error"] = {"code": error["code"] or error["type"], "message": error["message"]}
    data = {"type": "response.failed", "sequence_number": sent, "response": response}
    return encode_sse(data, "response.failed")


def commit(conversation: Conversation, output: Output, state: MockState) -> None:
    """Store the whole conversation under the response id, unless ``store`` is false."""
    if conversation.body.get("store", True) is not False:
        items = conversation.wire_items + _output_items(conversation, output)
        state.remember_response(f"resp_{conversation.uid}", items)


RESPONSES = Dialect(
    api="responses",
    call_id_prefix="call_",
    parse=parse,
    render_json=render_json,
    render_events=render_events,
    render_error=openai_error.render_error,
    render_stream_error=render_stream_error,
    request_id_header="x-request-id",
    commit=commit,
)
