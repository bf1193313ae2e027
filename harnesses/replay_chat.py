"""Replaying the neutral transcript as Chat Completions ``messages`` (LiteLLM's wire format).

LiteLLM takes OpenAI Chat Completions messages for every provider it speaks to and converts
them itself. The conversation goes through the same normalisation as the other providers'
replays (:mod:`harnesses.replay`: events skipped, every call paired with exactly one result,
safe unique ids); then:

* user text is a ``user`` message; ``system`` entries and the system prompt are one leading
  ``system`` message;
* the assistant items of one run (text and tool calls) are one ``assistant`` message with
  ``content`` and ``tool_calls`` (``arguments`` a JSON string), followed by one ``tool``
  message per call (an error result's content is prefixed ``[tool error]``);
* reasoning is dropped: Chat Completions has no field to send another provider's reasoning
  back in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cerver.types import Entry
from harnesses.replay import (
    _arguments_json,
    _Call,
    _normalise,
    _Reasoning,
    _Result,
    _Text,
)

__all__ = ["to_chat_messages"]


def to_chat_messages(
    history: Sequence[Entry],
    new_input: str | None = None,
    *,
    system_prompt: str | None = None,
    tools_as_text: bool = False,
) -> list[dict[str, Any]]:
    """Convert a transcript to Chat Completions ``messages``.

    Args:
        history: the transcript, oldest first; may hold other providers' entries and events.
        new_input: the new user message, appended last (``None`` when it is already the last
            entry of ``history``).
        system_prompt: placed before the transcript's own ``system`` entries.
        tools_as_text: render tool calls and results as text (for a request without tools).
    """
    system, items = _normalise(history, new_input, system_prompt, tools_as_text)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    assistant: dict[str, Any] | None = None
    for item in items:
        match item:
            case _Text(role="user", text=text):
                assistant = None
                messages.append({"role": "user", "content": text})
            case _Text(role="assistant", text=text):
                assistant = _assistant(messages, assistant)
                assistant["content"] = f"{assistant['content']}\n\n{text}".lstrip()
            case _Call(part=call):
                assistant = _assistant(messages, assistant)
                assistant.setdefault("tool_calls", []).append(
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.name,
                            "arguments": _arguments_json(call.arguments),
                        },
                    }
                )
            case _Result(part=result):
                assistant = None
                output = f"[tool error] {result.output}" if result.is_error else result.output
                messages.append(
                    {"role": "tool", "tool_call_id": result.tool_call_id, "content": output}
                )
            case _Reasoning():
                pass
    for message in messages:
        if message["role"] == "assistant" and not message["content"]:
            message["content"] = None  # a message with only tool calls has null content
    return messages


def _assistant(messages: list[dict[str, Any]], current: dict[str, Any] | None) -> dict[str, Any]:
    """The assistant message the run's items go into (a new one after a user or tool one)."""
    if current is None:
        current = {"role": "assistant", "content": ""}
        messages.append(current)
    return current
