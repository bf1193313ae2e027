"""Strict validators of each provider's conversation wire format, for the replay tests.

Each raises ``AssertionError`` naming the first rule a replayed conversation breaks. They
check what the providers refuse (observed API behaviour), not what happens to work with the
mock upstream: roles alternate where the provider requires it, every tool call has exactly one
result in the right place, no result lacks its call, ids and names fit the providers' patterns,
no empty text, reasoning only in the provider's own signed or encrypted form.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "validate_anthropic",
    "validate_chat",
    "validate_pydantic_ai",
    "validate_responses",
]

_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _check_call(call_id: str, name: str, seen: set[str]) -> None:
    assert _ID.match(call_id), f"unsafe tool call id {call_id!r}"
    assert _NAME.match(name), f"unsafe tool name {name!r}"
    assert call_id not in seen, f"tool call id {call_id!r} used twice"
    seen.add(call_id)


def _check_arguments(raw: str) -> None:
    assert isinstance(json.loads(raw), dict), f"arguments {raw!r} are not a JSON object"


def validate_anthropic(messages: list[dict[str, Any]], *, tools_as_text: bool) -> None:
    """Messages API: user first and last, strict alternation, results right after calls."""
    assert messages, "no messages"
    assert messages[0]["role"] == "user", "the first message must be the user's"
    assert messages[-1]["role"] == "user", "the last message must be the user's"
    seen: set[str] = set()
    open_calls: set[str] = set()
    for index, message in enumerate(messages):
        role, blocks = message["role"], message["content"]
        assert role in ("user", "assistant"), f"role {role!r}"
        if index:
            assert role != messages[index - 1]["role"], f"roles do not alternate at {index}"
        assert blocks, f"message {index} has no content"
        if role == "user":
            kinds = [b["type"] for b in blocks]
            results = [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"]
            assert kinds == sorted(kinds, key=lambda k: k != "tool_result"), (
                "tool_result blocks must come first in their message"
            )
            assert set(results) == open_calls and len(results) == len(set(results)), (
                f"message {index}: results {results} do not answer calls {sorted(open_calls)}"
            )
            open_calls = set()
        else:
            assert not open_calls, "calls left without results"
        for block in blocks:
            kind = block["type"]
            if kind == "text":
                assert block["text"].strip(), "empty text block"
            elif kind == "tool_use":
                assert role == "assistant" and not tools_as_text
                _check_call(block["id"], block["name"], seen)
                assert isinstance(block["input"], dict)
                open_calls.add(block["id"])
            elif kind == "tool_result":
                assert role == "user" and not tools_as_text
            elif kind == "thinking":
                assert role == "assistant" and isinstance(block["signature"], str)
            elif kind == "redacted_thinking":
                assert role == "assistant" and block["data"]
            else:
                raise AssertionError(f"unknown block type {kind!r}")
        if role == "assistant":
            assert any(b["type"] in ("text", "tool_use") for b in blocks), (
                "an assistant message needs more than thinking"
            )
    assert not open_calls, "the conversation ends with calls left without results"


def validate_responses(items: list[dict[str, Any]], *, tools_as_text: bool) -> None:
    """Responses API ``input``: calls answered once after them, reasoning encrypted and
    followed by its output, user text last."""
    assert items, "no input items"
    seen: set[str] = set()
    answered: set[str] = set()
    for index, item in enumerate(items):
        kind = item.get("type")
        if kind == "message":
            part = "input_text" if item["role"] == "user" else "output_text"
            assert item["role"] in ("user", "assistant")
            assert item["content"] and all(
                c["type"] == part and c["text"].strip() for c in item["content"]
            ), f"bad message content at {index}"
        elif kind == "function_call":
            assert not tools_as_text
            _check_call(item["call_id"], item["name"], seen)
            _check_arguments(item["arguments"])
        elif kind == "function_call_output":
            assert not tools_as_text
            call_id = item["call_id"]
            assert call_id in seen, f"output for unknown call {call_id!r}"
            assert call_id not in answered, f"call {call_id!r} answered twice"
            answered.add(call_id)
        elif kind == "reasoning":
            assert item.get("encrypted_content"), "reasoning without encrypted_content"
            following = items[index + 1] if index + 1 < len(items) else None
            assert following is not None and (
                following.get("type") == "function_call"
                or (following.get("type") == "message" and following["role"] == "assistant")
                or following.get("type") == "reasoning"
            ), "reasoning must be followed by its output item"
        else:
            raise AssertionError(f"unknown item type {kind!r}")
    assert answered == seen, f"calls without output: {sorted(seen - answered)}"
    last = items[-1]
    assert last.get("type") == "message" and last["role"] == "user", "user input must be last"


def validate_chat(messages: list[dict[str, Any]], *, tools_as_text: bool) -> None:
    """Chat Completions: one leading system message, each assistant ``tool_calls`` followed
    at once by exactly one ``tool`` message per call, user text last."""
    assert messages, "no messages"
    seen: set[str] = set()
    pending: set[str] = set()
    for index, message in enumerate(messages):
        role = message["role"]
        if role == "system":
            assert index == 0 and message["content"], "system only first, and not empty"
            continue
        if role == "tool":
            assert not tools_as_text
            call_id = message["tool_call_id"]
            assert call_id in pending, f"tool message {index} answers no open call"
            pending.discard(call_id)
            assert isinstance(message["content"], str)
            continue
        assert not pending, f"message {index} arrives before results of {sorted(pending)}"
        if role == "user":
            assert isinstance(message["content"], str) and message["content"].strip()
        elif role == "assistant":
            calls = message.get("tool_calls") or []
            content = message.get("content")
            assert calls or (isinstance(content, str) and content.strip()), (
                f"empty assistant message at {index}"
            )
            assert content is None or content.strip(), "assistant content is blank, not null"
            for call in calls:
                assert not tools_as_text and call["type"] == "function"
                _check_call(call["id"], call["function"]["name"], seen)
                _check_arguments(call["function"]["arguments"])
                pending.add(call["id"])
        else:
            raise AssertionError(f"unknown role {role!r}")
    assert not pending, "calls left without results"
    assert messages[-1]["role"] == "user", "user input must be last"


def validate_pydantic_ai(messages: list[Any], *, tools_as_text: bool) -> None:
    """pydantic-ai message history: valid for its type adapter, requests and responses
    alternating, each response's tool calls answered in the next request."""
    from pydantic_ai.messages import (
        ModelMessagesTypeAdapter,
        ModelRequest,
        ModelResponse,
        TextPart,
        ToolCallPart,
        ToolReturnPart,
        UserPromptPart,
    )

    ModelMessagesTypeAdapter.validate_python(ModelMessagesTypeAdapter.dump_python(messages))
    seen: set[str] = set()
    for index, message in enumerate(messages):
        if index:
            assert type(message) is not type(messages[index - 1]), f"no alternation at {index}"
        assert message.parts, f"message {index} is empty"
        if isinstance(message, ModelResponse):
            calls = [p for p in message.parts if isinstance(p, ToolCallPart)]
            for call in calls:
                assert not tools_as_text
                _check_call(call.tool_call_id, call.tool_name, seen)
            for part in message.parts:
                assert isinstance(part, TextPart | ToolCallPart)
                if isinstance(part, TextPart):
                    assert part.content.strip()
            if calls:
                following = messages[index + 1] if index + 1 < len(messages) else None
                assert isinstance(following, ModelRequest), "calls without a following request"
                returned = {
                    p.tool_call_id for p in following.parts if isinstance(p, ToolReturnPart)
                }
                assert returned == {c.tool_call_id for c in calls}, "calls not all answered"
        else:
            assert isinstance(message, ModelRequest)
            for part in message.parts:
                assert isinstance(part, UserPromptPart | ToolReturnPart)
                if isinstance(part, ToolReturnPart):
                    assert part.tool_call_id in seen, "a return without its call"
