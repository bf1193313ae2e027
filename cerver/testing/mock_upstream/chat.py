"""OpenAI Chat Completions (``POST /v1/chat/completions``): a ``chat.completion`` object, or
``chat.completion.chunk`` SSE data lines ended by ``data: [DONE]``. Tool calls go out as
``tool_calls`` (arguments as a JSON string) with ``finish_reason: "tool_calls"``; with
``stream_options.include_usage`` a last chunk with empty ``choices`` carries the usage.
"""

from __future__ import annotations

import time
from typing import Any, cast

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
    Role,
    ToolSpec,
    as_text,
    split_in_two,
    text_chunks,
)
from cerver.testing.mock_upstream.script import UpstreamFailure
from cerver.testing.mock_upstream.state import MockState

__all__ = ["CHAT"]

_DONE = b"data: [DONE]\n\n"


def parse(body: dict[str, Any], state: MockState) -> Conversation:
    """Read a chat request; system and developer messages are not conversation turns."""
    model = require(body, "model", str)
    messages = require(body, "messages", list)
    items: list[Item] = []
    turn = 0
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            continue
        if role not in ("user", "assistant", "tool"):
            raise BadRequest(f"messages[{index}].role: unknown role {role!r}", param="messages")
        items.extend(_items(cast(Role, role), message, turn))
        turn += 1
    tools = [
        ToolSpec(fn["name"], fn.get("parameters") or {})
        for tool in body.get("tools") or []
        if isinstance(tool, dict)
        and isinstance(fn := tool.get("function"), dict)
        and isinstance(fn.get("name"), str)
    ]
    conversation = Conversation(
        "chat", model, bool(body.get("stream")), items, tools, turn, messages, body
    )
    return check_tool_pairs(conversation)


def _items(role: Role, message: dict[str, Any], turn: int) -> list[Item]:
    content = message.get("content")
    if role == "tool":
        call_id = str(message.get("tool_call_id", ""))
        return [Item("tool", "tool_result", turn, text=as_text(content), call_id=call_id)]
    parts = [{"text": content}] if isinstance(content, str) else content
    parts = parts if isinstance(parts, list) else []
    items = [
        Item(role, "text", turn, text=part["text"])
        for part in parts
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    ]
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        name = str(function.get("name", ""))
        items.append(Item("assistant", "tool_call", turn, call_id=str(call.get("id")), name=name))
    return items


def _usage(output: Output) -> dict[str, int]:
    return {
        "prompt_tokens": output.input_tokens,
        "completion_tokens": output.output_tokens,
        "total_tokens": output.total_tokens,
    }


def _finish_reason(output: Output) -> str:
    return "tool_calls" if output.tool_calls else "stop"


def _head(conversation: Conversation, output: Output, kind: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{conversation.uid}",
        "object": kind,
        "created": int(time.time()),
        "model": output.model,
        "system_fingerprint": None,
    }


def render_json(conversation: Conversation, output: Output) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": output.text if output.text or not output.tool_calls else None,
        "refusal": None,
    }
    if output.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for call in output.tool_calls
        ]
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": _finish_reason(output),
    }
    head = _head(conversation, output, "chat.completion")
    return {**head, "choices": [choice], "usage": _usage(output)}


def render_events(conversation: Conversation, output: Output) -> list[bytes]:
    head = _head(conversation, output, "chat.completion.chunk")
    options = conversation.body.get("stream_options")
    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    if include_usage:
        head["usage"] = None

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return encode_sse({**head, "choices": [choice]})

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events.extend(chunk({"content": text}) for text in text_chunks(output.text))
    for index, call in enumerate(output.tool_calls):
        opening = {"name": call.name, "arguments": ""}
        events.append(
            chunk(
                {
                    "tool_calls": [
                        {"index": index, "id": call.id, "type": "function", "function": opening}
                    ]
                }
            )
        )
        for piece in split_in_two(call.arguments_json):
            events.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    events.append(chunk({}, _finish_reason(output)))
    if include_usage:
        events.append(encode_sse({**head, "choices": [], "usage": _usage(output)}))
    events.append(_DONE)
    return events


def render_stream_error(conversation: Conversation, failure: UpstreamFailure, sent: int) -> bytes:
    return encode_sse(openai_error.render_error(failure))


CHAT = Dialect(
    api="chat",
    call_id_prefix="call_",
    parse=parse,
    render_json=render_json,
    render_events=render_events,
    render_error=openai_error.render_error,
    render_stream_error=render_stream_error,
    request_id_header="x-request-id",
)
