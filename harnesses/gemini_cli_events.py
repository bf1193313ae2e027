"""Gemini CLI's ``--output-format stream-json`` lines → Cerver harness events (pure).

One JSON object per line (Gemini CLI 0.61):

* ``init``: the CLI's session id and model.
* ``message``: ``role: "user"`` echoes the prompt (skipped); ``role: "assistant"`` with
  ``delta: true`` is a piece of the model's text, streamed as a :class:`TextDelta` and
  gathered into one assistant text entry, written when a tool call or the end comes (a
  message without ``delta`` is a whole text).
* ``tool_use``: a tool call (``run_shell_command`` ``{"command": …}``, ``write_file``,
  ``replace``, …) with the CLI's own ``tool_id``.
* ``tool_result``: its result: ``output`` (or ``error.message``), an error result for
  ``status: "error"``. A shell command's exit code is not in the event (a failing command
  is a ``success`` whose output the model reads), so it is not in the entry either.
* ``error``: a warning (``severity: "warning"``) or an error the CLI reports before ending;
  the last error's message explains a failed result.
* ``result``: the end. ``status: "error"`` ends the turn with an :class:`Error`; an API
  error (``[API Error: {"error": {"code": 500, …}}]``) is ``upstream_error``, retryable for
  408, 429 and 5xx. The CLI keeps the API's body for most statuses but words a 429 or a 503
  its own way (``[API Error: <message>]``, quota advice), without the code: retryable too.
  ``stats`` (the CLI's token counts) are kept in :attr:`stats` and not turned into
  :class:`~harnesses.base.Usage` events: the model proxy meters every request the CLI
  makes, so the ledger would count them twice.

Lines that are not JSON, and event types this module does not know, are ignored.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from cerver.errors import HarnessError, UpstreamError
from cerver.types import Entry, ToolCallPart, ToolResultPart
from harnesses.base import Error, HarnessEvent, Message, TextDelta
from harnesses.retry import status_is_retryable

__all__ = ["GeminiCliParser", "parse_lines"]

_API_STATUS: Final = re.compile(r'"code"\s*:\s*(\d{3})')


class GeminiCliParser:
    """Turns lines into events; tracks the session and how the turn ended.

    Attributes:
        session_id: the CLI's session id (from ``init``).
        model: the model the CLI reported.
        finished: a ``result`` line was seen.
        failed: that result was an error.
        stats: the ``result`` line's ``stats`` (the CLI's own token counts), if any.
        last_error: the message of the latest ``error`` line of severity ``error``.
    """

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.model: str | None = None
        self.finished = False
        self.failed = False
        self.stats: dict[str, Any] | None = None
        self.last_error: str | None = None
        self._text: list[str] = []

    def feed(self, line: str) -> list[HarnessEvent]:
        """The events of one output line (often none)."""
        try:
            event = json.loads(line)
        except ValueError:
            return []
        if not isinstance(event, dict):
            return []
        match event.get("type"):
            case "init":
                self.session_id = event.get("session_id") or self.session_id
                self.model = event.get("model") or self.model
            case "message" if event.get("role") == "assistant":
                return self._message(event)
            case "tool_use":
                return [*self._flush(), Message(_call_entry(event))]
            case "tool_result":
                return [*self._flush(), Message(_result_entry(event))]
            case "error" if event.get("severity") == "error":
                self.last_error = str(event.get("message") or "unknown error")
            case "result":
                return [*self._flush(), *self._result(event)]
        return []

    def _message(self, event: dict[str, Any]) -> list[HarnessEvent]:
        text = event.get("content")
        if not isinstance(text, str) or not text:
            return []
        if event.get("delta"):
            self._text.append(text)
            return [TextDelta(text)]
        return [*self._flush(), TextDelta(text), Message(Entry(role="assistant", content=text))]

    def _flush(self) -> list[HarnessEvent]:
        """The gathered text deltas as one assistant entry (none when there are none)."""
        text, self._text = "".join(self._text), []
        return [Message(Entry(role="assistant", content=text))] if text else []

    def _result(self, event: dict[str, Any]) -> list[HarnessEvent]:
        self.finished = True
        if isinstance(event.get("stats"), dict):
            self.stats = event["stats"]
        if event.get("status") == "success":
            return []
        self.failed = True
        error = _dict(event.get("error"))
        message = str(error.get("message") or self.last_error or "unknown error")
        api_error = "API Error" in message
        found = _API_STATUS.search(message) if api_error else None
        # Without a code it is one the CLI rewrote in its own words: a 429 or 503.
        retryable = status_is_retryable(int(found.group(1))) if found else True
        text = f"Gemini CLI ended the turn with an error: {message}"
        if not api_error:
            return [Error.of(HarnessError(text))]
        context = {"status": int(found.group(1))} if found else {}
        return [Error.of(UpstreamError(text, context=context, retryable=retryable))]


def parse_lines(lines: list[str]) -> tuple[list[HarnessEvent], GeminiCliParser]:
    """Parse a whole recorded output (for tests and tools)."""
    parser = GeminiCliParser()
    events = [event for line in lines for event in parser.feed(line)]
    return events, parser


def _call_entry(event: dict[str, Any]) -> Entry:
    arguments = _dict(event.get("parameters"))
    call = ToolCallPart(
        id=str(event.get("tool_id")), name=str(event.get("tool_name")), arguments=arguments
    )
    content = f"{call.name} {json.dumps(arguments, ensure_ascii=False)}"
    return Entry(role="assistant", kind="tool_call", content=content, parts=[call])


def _result_entry(event: dict[str, Any]) -> Entry:
    failed = event.get("status") == "error"
    error = _dict(event.get("error"))
    output = event.get("output")
    if not isinstance(output, str) or (failed and not output):
        output = str(error.get("message") or "") if failed else ""
    part = ToolResultPart(tool_call_id=str(event.get("tool_id")), output=output, is_error=failed)
    return Entry(role="tool", kind="tool_result", content=output, parts=[part])


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
