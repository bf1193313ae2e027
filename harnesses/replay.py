"""Replaying the provider-neutral transcript to a model provider's wire format.

A session's transcript may hold turns written by any harness and provider. Before each model
call an SDK harness converts it, oldest first, into the request its provider expects. Both
conversions are pure functions and share one normalisation pass that enforces what every
provider requires of a conversation:

1. ``event`` entries are skipped; ``system`` entries are collected into the system prompt.
2. Every tool call gets exactly one result, placed right after the assistant items that made
   the call. A call without result gets a synthesised error result (the turn that made it was
   interrupted); a result without a matching earlier call is dropped, since the model could
   not relate it to anything.
3. Tool call ids and names are made safe for every provider (``[A-Za-z0-9_-]``, names at most
   64 characters) and unique within the conversation (ids a provider reused across turns get
   a suffix).
4. Reasoning is provider-specific: it is replayed only to the provider that produced it, in
   that provider's own shape (an Anthropic ``thinking`` block with its signature, an OpenAI
   ``reasoning`` item with its encrypted content), and dropped otherwise, never leaked as text.
   Reasoning that no assistant text or tool call follows in its run is dropped for everyone
   (an OpenAI reasoning item needs its following item; Anthropic wants more than thinking).
5. With ``tools_as_text`` (a request that offers no tools, which some providers refuse to
   combine with tool items), tool calls and results are rendered as plain text instead.

Then :func:`to_anthropic_messages` builds Messages API ``messages`` (alternating roles, user
first) and :func:`to_responses_input` builds Responses API ``input`` items.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cerver.types import Entry, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from harnesses.tools import INVALID_JSON_KEY

__all__ = [
    "LEADING_USER_TEXT",
    "MISSING_RESULT",
    "REASONING_ITEM_ID_KEY",
    "Replay",
    "to_anthropic_messages",
    "to_responses_input",
]

MISSING_RESULT = "tool result missing: the turn was interrupted"
"""Output of the error result synthesised for a tool call that never got one."""

REASONING_ITEM_ID_KEY = "item_id"
"""``Entry.metadata`` key holding the provider's id for a reasoning item (OpenAI ``rs_…``)."""

LEADING_USER_TEXT = "(The conversation so far follows.)"
"""Sent as the first user message when a replayed conversation starts with the assistant."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME = 64


@dataclass(frozen=True, slots=True)
class Replay:
    """A transcript in a provider's wire format.

    Attributes:
        system: the system prompt (Anthropic ``system``, OpenAI ``instructions``), or ``None``.
        messages: Anthropic ``messages`` or OpenAI Responses ``input`` items, as plain dicts.
    """

    system: str | None
    messages: list[dict[str, Any]] = field(default_factory=list)


def to_anthropic_messages(
    history: Sequence[Entry],
    new_input: str | None = None,
    *,
    system_prompt: str | None = None,
    tools_as_text: bool = False,
) -> Replay:
    """Convert a transcript to Anthropic Messages API ``system`` and ``messages``.

    Consecutive items of one side are merged into one message, so roles alternate: assistant
    text, ``tool_use`` and ``thinking`` blocks form one assistant message; ``tool_result``
    blocks (first) and user text form one user message. The first message is a user message
    (a short placeholder is inserted when the transcript starts with the assistant).
    ``thinking`` / ``redacted_thinking`` blocks are kept only for reasoning written by
    Anthropic with its signature (or redacted data); whitespace-only text is skipped, since the
    API refuses it.

    Args:
        history: the transcript, oldest first; may hold other providers' entries and events.
        new_input: the new user message, appended last (``None`` when it is already the last
            entry of ``history``).
        system_prompt: placed before the transcript's own ``system`` entries.
        tools_as_text: render tool calls and results as text (for a request without tools).

    Returns:
        The system prompt and the ``messages`` list.
    """
    system, items = _normalise(history, new_input, system_prompt, tools_as_text)
    messages: list[dict[str, Any]] = []

    def add(role: str, block: dict[str, Any]) -> None:
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].append(block)
        else:
            messages.append({"role": role, "content": [block]})

    for item in items:
        match item:
            case _Text(role=role, text=text):
                add(role, {"type": "text", "text": text})
            case _Call(part=call):
                add(
                    "assistant",
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments},
                )
            case _Result(part=result):
                block: dict[str, Any] = {"type": "tool_result", "tool_use_id": result.tool_call_id}
                if result.output:
                    block["content"] = result.output
                if result.is_error:
                    block["is_error"] = True
                add("user", block)
            case _Reasoning(part=reasoning) if reasoning.provider == "anthropic":
                if reasoning.signature:
                    thinking = {"thinking": reasoning.text, "signature": reasoning.signature}
                    add("assistant", {"type": "thinking", **thinking})
                elif reasoning.encrypted:
                    add("assistant", {"type": "redacted_thinking", "data": reasoning.encrypted})

    # User tool results must lead their message: move them before any text merged in.
    for message in messages:
        if message["role"] == "user":
            message["content"].sort(key=lambda block: block["type"] != "tool_result")
    if messages and messages[0]["role"] != "user":
        messages.insert(
            0, {"role": "user", "content": [{"type": "text", "text": LEADING_USER_TEXT}]}
        )
    return Replay(system, messages)


def to_responses_input(
    history: Sequence[Entry],
    new_input: str | None = None,
    *,
    system_prompt: str | None = None,
    tools_as_text: bool = False,
) -> Replay:
    """Convert a transcript to OpenAI Responses API ``instructions`` and ``input`` items.

    User and assistant text become ``message`` items (``input_text`` / ``output_text``
    content), tool calls ``function_call`` items (``arguments`` a JSON string) and tool results
    ``function_call_output`` items (an error result's output is prefixed ``[tool error]``, the
    API having no error flag). ``reasoning`` items are kept only for reasoning written by
    OpenAI with its ``encrypted_content`` (what a ``store=False`` request needs).

    Args:
        history: the transcript, oldest first; may hold other providers' entries and events.
        new_input: the new user message, appended last (``None`` when it is already the last
            entry of ``history``).
        system_prompt: placed before the transcript's own ``system`` entries.
        tools_as_text: render tool calls and results as text (for a request without tools).

    Returns:
        The instructions and the ``input`` list.
    """
    system, items = _normalise(history, new_input, system_prompt, tools_as_text)
    out: list[dict[str, Any]] = []
    for item in items:
        match item:
            case _Text(role="user", text=text):
                out.append(_message("user", "input_text", text))
            case _Text(role="assistant", text=text):
                out.append(_message("assistant", "output_text", text))
            case _Call(part=call):
                out.append(
                    {
                        "type": "function_call",
                        "call_id": call.id,
                        "name": call.name,
                        "arguments": _arguments_json(call.arguments),
                    }
                )
            case _Result(part=result):
                output = f"[tool error] {result.output}" if result.is_error else result.output
                out.append(
                    {
                        "type": "function_call_output",
                        "call_id": result.tool_call_id,
                        "output": output,
                    }
                )
            case _Reasoning(part=reasoning, item_id=item_id):
                if reasoning.provider == "openai" and reasoning.encrypted:
                    out.append(_reasoning_item(reasoning, item_id))
    return Replay(system, out)


# -- normalisation shared by both providers ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Text:
    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True, slots=True)
class _Call:
    part: ToolCallPart


@dataclass(frozen=True, slots=True)
class _Result:
    part: ToolResultPart


@dataclass(frozen=True, slots=True)
class _Reasoning:
    part: ReasoningPart
    item_id: str | None


_Item = _Text | _Call | _Result | _Reasoning


def _normalise(
    history: Sequence[Entry],
    new_input: str | None,
    system_prompt: str | None,
    tools_as_text: bool,
) -> tuple[str | None, list[_Item]]:
    """The module docstring's rules, except the provider's choice of reasoning (step 4's
    first half), which the renderers make: the conversation as neutral items."""
    entries = [e for e in history if e.is_conversation]
    if new_input is not None:
        entries.append(Entry(role="user", content=new_input))
    system = _system_prompt(system_prompt, (e for e in entries if e.role == "system"))
    results = _pair_results(entries)
    ids = _UniqueIds()
    items: list[_Item] = []
    pending: list[tuple[ToolCallPart, ToolResultPart]] = []

    def end_assistant_run() -> None:
        while items and isinstance(items[-1], _Reasoning):
            items.pop()  # reasoning that led to no output: providers refuse it on its own
        for call, result in pending:
            if tools_as_text:
                items.append(_Text("user", _result_text(call, result)))
            else:
                items.append(_Result(result))
        pending.clear()

    for index, entry in enumerate(entries):
        if entry.role != "assistant":
            end_assistant_run()  # its calls' results go here
        if entry.role in ("system", "tool") or entry.kind == "tool_result":
            continue  # results were placed by end_assistant_run(); orphans are dropped
        if entry.kind == "tool_call" and (call := entry.tool_call) is not None:
            safe = ToolCallPart(
                id=ids.new(call.id), name=_safe_name(call.name), arguments=call.arguments
            )
            found = results.get(index)
            result = ToolResultPart(
                tool_call_id=safe.id,
                output=found.output if found else MISSING_RESULT,
                is_error=found.is_error if found else True,
            )
            items.append(_Text("assistant", _call_text(safe)) if tools_as_text else _Call(safe))
            pending.append((safe, result))
        elif entry.kind == "reasoning" and (reasoning := entry.reasoning) is not None:
            items.append(_Reasoning(reasoning, entry.metadata.get(REASONING_ITEM_ID_KEY)))
        elif entry.kind == "text" and entry.role in ("user", "assistant"):
            text = _text_of(entry)
            if text.strip():
                items.append(_Text(entry.role, text))
    end_assistant_run()
    return system, items


def _pair_results(entries: Sequence[Entry]) -> dict[int, ToolResultPart]:
    """Map the index of each tool call entry to the first unclaimed later result for its id."""
    waiting: dict[str, deque[int]] = defaultdict(deque)
    paired: dict[int, ToolResultPart] = {}
    for index, entry in enumerate(entries):
        if entry.kind == "tool_call" and (call := entry.tool_call) is not None:
            waiting[call.id].append(index)
        elif entry.kind == "tool_result" and (result := entry.tool_result) is not None:
            calls = waiting.get(result.tool_call_id)
            if calls:
                paired[calls.popleft()] = result
    return paired


class _UniqueIds:
    """Safe, conversation-unique tool call ids (a reused id gets ``_2``, ``_3``…)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def new(self, raw: str) -> str:
        base = _UNSAFE.sub("_", raw) or "call"
        candidate, n = base, 1
        while candidate in self._seen:
            n += 1
            candidate = f"{base}_{n}"
        self._seen.add(candidate)
        return candidate


def _safe_name(name: str) -> str:
    return (_UNSAFE.sub("_", name) or "tool")[:_MAX_NAME]


def _system_prompt(first: str | None, entries: Iterable[Entry]) -> str | None:
    parts: list[str] = []
    for text in (first, *(_text_of(e) for e in entries)):
        if text and text.strip() and text not in parts:
            parts.append(text)
    return "\n\n".join(parts) or None


def _text_of(entry: Entry) -> str:
    if entry.content:
        return entry.content
    return "".join(p.text for p in entry.parts if isinstance(p, TextPart))


def _arguments_json(arguments: dict[str, Any]) -> str:
    if set(arguments) == {INVALID_JSON_KEY}:
        return str(arguments[INVALID_JSON_KEY])  # replay what the model sent, as it sent it
    return json.dumps(arguments, ensure_ascii=False)


def _call_text(call: ToolCallPart) -> str:
    return f"[tool call {call.id}: {call.name} {_arguments_json(call.arguments)}]"


def _result_text(call: ToolCallPart, result: ToolResultPart) -> str:
    status = "error" if result.is_error else "result"
    return f"[tool {status} {call.id} ({call.name})]\n{result.output}"


# -- OpenAI item shapes -------------------------------------------------------------------------


def _message(role: str, content_type: str, text: str) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": [{"type": content_type, "text": text}]}


def _reasoning_item(reasoning: ReasoningPart, item_id: str | None) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": reasoning.text}] if reasoning.text else []
    item: dict[str, Any] = {"type": "reasoning", "summary": summary}
    if item_id:
        item["id"] = item_id
    item["encrypted_content"] = reasoning.encrypted
    return item
