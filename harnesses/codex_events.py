"""Codex's ``codex exec --json`` lines → Cerver harness events (pure).

One JSON object per line:

* ``thread.started``: the thread id (for ``codex exec resume``).
* ``item.started`` / ``item.completed`` with an ``item``:
  ``command_execution`` → a tool call ``exec_command`` ``{"cmd": …}`` when it starts and its
  result (``aggregated_output``, an error result for a non-zero ``exit_code``) when it
  completes; ``file_change`` → an ``apply_patch`` call and result listing the changed
  paths; ``mcp_tool_call`` → a call ``mcp__<server>__<tool>`` with its arguments and its
  result's text (the app's tools are MCP tools); ``agent_message`` → assistant text
  (also streamed as a :class:`TextDelta`); ``reasoning`` → a reasoning entry tagged
  ``openai`` (summary text only: Codex does not print the encrypted content, so it is never
  replayed to a provider).
* ``turn.completed``: the end of a successful turn (tokens are metered by the model proxy).
* ``turn.failed`` / ``error``: the turn failed; the last message becomes the
  :class:`Error`.

Tool call ids are the item ids (``item_0``…) prefixed with the thread id's first part, so
calls of different runs never share an id.
"""

from __future__ import annotations

import json
from typing import Any

from cerver.errors import UpstreamError
from cerver.types import Entry, ReasoningPart, ToolCallPart, ToolResultPart
from harnesses.base import Error, HarnessEvent, Message, TextDelta

__all__ = ["CodexParser", "parse_lines"]


class CodexParser:
    """Turns lines into events; tracks the thread id and how the turn ended.

    Attributes:
        session_id: the Codex thread id.
        finished: ``turn.completed`` or ``turn.failed`` was seen.
        failed: the turn failed.
        last_error: the latest ``error`` message (Codex reports retries this way).
    """

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.finished = False
        self.failed = False
        self.last_error: str | None = None
        self._open_calls: dict[str, ToolCallPart] = {}

    def feed(self, line: str) -> list[HarnessEvent]:
        """The events of one output line (often none)."""
        try:
            event = json.loads(line)
        except ValueError:
            return []
        if not isinstance(event, dict):
            return []
        kind = event.get("type")
        item = event.get("item") if isinstance(event.get("item"), dict) else {}
        if kind == "thread.started":
            self.session_id = event.get("thread_id") or self.session_id
        elif kind == "item.started":
            return self._started(item)
        elif kind == "item.completed":
            return self._completed(item)
        elif kind == "turn.completed":
            self.finished = True
        elif kind == "error":
            self.last_error = str(event.get("message") or "unknown error")
        elif kind == "turn.failed":
            self.finished = self.failed = True
            error = event.get("error") if isinstance(event.get("error"), dict) else {}
            message = error.get("message") or self.last_error or "unknown error"
            return [Error.of(UpstreamError(f"Codex ended the turn with an error: {message}"))]
        return []

    def _call_id(self, item: dict[str, Any]) -> str:
        thread = (self.session_id or "codex").split("-")[0]
        return f"{thread}_{item.get('id', 'item')}"

    def _started(self, item: dict[str, Any]) -> list[HarnessEvent]:
        call = self._call(item)
        if call is None:
            return []
        self._open_calls[call.id] = call
        return [Message(_call_entry(call))]

    def _completed(self, item: dict[str, Any]) -> list[HarnessEvent]:
        kind = item.get("type")
        if kind == "agent_message" and item.get("text"):
            text = str(item["text"])
            return [TextDelta(text), Message(Entry(role="assistant", content=text))]
        if kind == "reasoning" and item.get("text"):
            part = ReasoningPart(text=str(item["text"]), provider="openai")
            entry = Entry(role="assistant", kind="reasoning", content=part.text, parts=[part])
            return [Message(entry)]
        call = self._call(item)
        if call is None:
            return []
        events: list[HarnessEvent] = []
        if self._open_calls.pop(call.id, None) is None:
            events.append(Message(_call_entry(call)))
        output, is_error = _outcome(item)
        part = ToolResultPart(tool_call_id=call.id, output=output, is_error=is_error)
        events.append(Message(Entry(role="tool", kind="tool_result", content=output, parts=[part])))
        return events

    def _call(self, item: dict[str, Any]) -> ToolCallPart | None:
        kind = item.get("type")
        if kind == "command_execution":
            arguments: dict[str, Any] = {"cmd": str(item.get("command", ""))}
            return ToolCallPart(id=self._call_id(item), name="exec_command", arguments=arguments)
        if kind == "mcp_tool_call":
            arguments = item.get("arguments")
            return ToolCallPart(
                id=self._call_id(item),
                name=f"mcp__{item.get('server', '')}__{item.get('tool', '')}",
                arguments=arguments if isinstance(arguments, dict) else {"value": arguments},
            )
        if kind == "file_change":
            changes = [c for c in item.get("changes") or [] if isinstance(c, dict)]
            return ToolCallPart(
                id=self._call_id(item), name="apply_patch", arguments={"changes": changes}
            )
        return None


def parse_lines(lines: list[str]) -> tuple[list[HarnessEvent], CodexParser]:
    """Parse a whole recorded output (for tests and tools)."""
    parser = CodexParser()
    events = [event for line in lines for event in parser.feed(line)]
    return events, parser


def _call_entry(call: ToolCallPart) -> Entry:
    content = f"{call.name} {json.dumps(call.arguments, ensure_ascii=False)}"
    return Entry(role="assistant", kind="tool_call", content=content, parts=[call])


def _outcome(item: dict[str, Any]) -> tuple[str, bool]:
    if item.get("type") == "mcp_tool_call":
        return _mcp_outcome(item)
    if item.get("type") == "file_change":
        paths = ", ".join(
            f"{c.get('kind', 'update')} {c.get('path', '?')}" for c in item.get("changes") or []
        )
        return f"{item.get('status', 'completed')}: {paths}", item.get("status") == "failed"
    output = str(item.get("aggregated_output") or "")
    exit_code = item.get("exit_code")
    failed = item.get("status") == "failed" or (isinstance(exit_code, int) and exit_code != 0)
    if failed and exit_code is not None:
        output = f"{output}\n[exit code {exit_code}]".lstrip()
    return output, failed


def _mcp_outcome(item: dict[str, Any]) -> tuple[str, bool]:
    """An MCP tool call's text output (its result's text blocks, or its error)."""
    error = item.get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"]), True
    result = item.get("result") if isinstance(item.get("result"), dict) else {}
    blocks = [b for b in result.get("content") or [] if isinstance(b, dict)]
    text = "\n".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
    return text, item.get("status") == "failed" or bool(result.get("is_error"))
