"""The Anthropic Messages API (``POST /v1/messages``), as the ``anthropic`` SDK and Claude
Code read it: a ``message`` object, or the SSE events ``message_start``, ``ping``,
``content_block_start`` / ``_delta`` (``text_delta``, ``input_json_delta``) / ``_stop``,
``message_delta`` (stop reason, output tokens) and ``message_stop``. Every SSE event has an
``event:`` line: the SDK skips events without one. ``system`` messages inside ``messages``
(sent by Claude Code under a beta) are accepted and are not conversation turns; a request
without ``max_tokens`` or with unpaired tool calls is refused, as the real API does.
"""

from __future__ import annotations

from typing import Any

import orjson

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
    Role,
    ToolSpec,
    as_text,
    split_in_two,
    text_chunks,
)
from cerver.testing.mock_upstream.script import UpstreamFailure
from cerver.testing.mock_upstream.state import MockState

__all__ = ["ANTHROPIC", "count_tokens", "error_type"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def parse(body: dict[str, Any], state: MockState) -> Conversation:
    """Read a Messages request; text, ``tool_use`` and ``tool_result`` blocks become items."""
    conversation = _conversation(body)
    require(body, "max_tokens", int)
    return check_tool_pairs(conversation)


def count_tokens(body: dict[str, Any]) -> dict[str, Any]:
    """The ``/v1/messages/count_tokens`` answer: the same estimate a completion reports."""
    messages = _conversation(body).wire_items
    return {"input_tokens": max(1, len(orjson.dumps(messages)) // 4)}


def _conversation(body: dict[str, Any]) -> Conversation:
    model = require(body, "model", str)
    messages = require(body, "messages", list)
    items: list[Item] = []
    turn = 0
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "system":
            continue  # mid-conversation system messages (a Claude Code beta) are not turns
        if role not in ("user", "assistant"):
            raise BadRequest(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list):
            raise BadRequest(f"messages.{index}.content: Field required")
        items.extend(_block_item(role, turn, block) for block in blocks if _known(block))
        turn += 1
    tools = [
        ToolSpec(tool["name"], tool.get("input_schema") or {})
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and isinstance(tool.get("name"), str)
    ]
    stream = bool(body.get("stream"))
    return Conversation("anthropic", model, stream, items, tools, turn, messages, body)


def _known(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") in ("text", "tool_use", "tool_result")


def _block_item(role: Role, turn: int, block: dict[str, Any]) -> Item:
    kind = block["type"]
    if kind == "tool_use":
        return Item(
            "assistant",
            "tool_call",
            turn,
            call_id=str(block.get("id", "")),
            name=str(block.get("name", "")),
        )
    if kind == "tool_result":
        output = as_text(block.get("content"))
        return Item(
            "tool", "tool_result", turn, text=output, call_id=str(block.get("tool_use_id", ""))
        )
    return Item(role, "text", turn, text=str(block.get("text", "")))


def _message(conversation: Conversation, output: Output, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"msg_{conversation.uid}",
        "type": "message",
        "role": "assistant",
        "model": output.model,
        "stop_sequence": None,
        **fields,
    }


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _stop_reason(output: Output) -> str:
    return "tool_use" if output.tool_calls else "end_turn"


def render_json(conversation: Conversation, output: Output) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if output.text or not output.tool_calls:
        content.append({"type": "text", "text": output.text})
    content.extend(
        {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        for call in output.tool_calls
    )
    return _message(
        conversation,
        output,
        content=content,
        stop_reason=_stop_reason(output),
        usage=_usage(output.input_tokens, output.output_tokens),
    )


def render_events(conversation: Conversation, output: Output) -> list[bytes]:
    start = _message(
        conversation, output, content=[], stop_reason=None, usage=_usage(output.input_tokens, 1)
    )
    events = [
        encode_sse({"type": "message_start", "message": start}, "message_start"),
        encode_sse({"type": "ping"}, "ping"),
    ]
    blocks: list[tuple[dict[str, Any], list[dict[str, str]]]] = []
    if output.text or not output.tool_calls:
        deltas = [{"type": "text_delta", "text": t} for t in text_chunks(output.text)]
        blocks.append(({"type": "text", "text": ""}, deltas))
    for call in output.tool_calls:
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        pieces = split_in_two(call.arguments_json)
        blocks.append((block, [{"type": "input_json_delta", "partial_json": p} for p in pieces]))
    for index, (block, deltas) in enumerate(blocks):
        events.append(_event("content_block_start", index=index, content_block=block))
        events.extend(_event("content_block_delta", index=index, delta=d) for d in deltas)
        events.append(_event("content_block_stop", index=index))
    events.append(
        _event(
            "message_delta",
            delta={"stop_reason": _stop_reason(output), "stop_sequence": None},
            usage={"output_tokens": output.output_tokens},
        )
    )
    events.append(_event("message_stop"))
    return events


def _event(name: str, **fields: Any) -> bytes:
    return encode_sse({"type": name, **fields}, name)


def error_type(failure: UpstreamFailure) -> str:
    """The Anthropic error type for ``failure`` (its own ``type``, else by status)."""
    if failure.type:
        return failure.type
    default = "invalid_request_error" if failure.status < 500 else "api_error"
    return _ERROR_TYPES.get(failure.status, default)


def render_error(failure: UpstreamFailure) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(failure), "message": failure.message}}


def render_stream_error(conversation: Conversation, failure: UpstreamFailure, sent: int) -> bytes:
    return encode_sse(render_error(failure), "error")


ANTHROPIC = Dialect(
    api="anthropic",
    call_id_prefix="toolu_",
    parse=parse,
    render_json=render_json,
    render_events=render_events,
    render_error=render_error,
    render_stream_error=render_stream_error,
    request_id_header="request-id",
)
