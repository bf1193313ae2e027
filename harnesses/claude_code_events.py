"""Claude Code's ``--output-format stream-json`` lines → Cerver harness events (pure).

One JSON object per line (``--verbose``):

* ``system``/``init``: the CLI's session id (for ``--resume``) and model.
* ``stream_event`` (``--include-partial-messages``): the raw SSE events; text deltas become
  :class:`TextDelta` events as the model writes them.
* ``assistant``: a model message (the CLI's own ``<synthetic>`` ones, which repeat an API
  error, are skipped); its content blocks become entries in order: ``text``
  (also streamed as a :class:`TextDelta`), ``thinking`` (a reasoning entry tagged
  ``anthropic``, with its signature, so it can be replayed to Anthropic), ``tool_use`` (a
  tool call: ``Bash``, ``Edit``, ``Write``, …).
* ``user``: the CLI's tool results, as ``tool_result`` entries.
* ``result``: the end. ``is_error`` ends the turn with an :class:`Error` naming the API
  status. ``total_cost_usd`` (Claude Code's own estimate) is kept on the parser
  (:attr:`ClaudeCodeParser.cost_estimate_usd`) but is *not* a :class:`Usage`: the model proxy
  meters and prices every request, and those rows are the run's only charge.

Lines that are not JSON, and event types this module does not know, are ignored.
"""

from __future__ import annotations

import json
from typing import Any

from cerver.errors import HarnessError, UpstreamError
from cerver.types import Entry, ReasoningPart, ToolCallPart, ToolResultPart
from harnesses.base import Error, HarnessEvent, Message, TextDelta
from harnesses.retry import status_is_retryable

__all__ = ["ClaudeCodeParser", "parse_lines"]

_SYNTHETIC = "<synthetic>"


class ClaudeCodeParser:
    """Turns lines into events; :attr:`session_id` and :attr:`finished` track the run.

    Attributes:
        session_id: the CLI's session id, once ``system``/``init`` (or any line) gave it.
        model: the model the CLI reported.
        finished: a ``result`` line was seen.
        failed: that result was an error.
        cost_estimate_usd: Claude Code's own cost estimate from the ``result`` line
            (informational; the proxy's priced rows are what is charged).
    """

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.model: str | None = None
        self.finished = False
        self.failed = False
        self.cost_estimate_usd: float | None = None
        self._streamed = False  # text deltas of the coming assistant message were seen

    def feed(self, line: str) -> list[HarnessEvent]:
        """The events of one output line (often none)."""
        try:
            event = json.loads(line)
        except ValueError:
            return []
        if not isinstance(event, dict):
            return []
        if isinstance(event.get("session_id"), str):
            self.session_id = event["session_id"]
        kind = event.get("type")
        if kind == "system" and event.get("subtype") == "init":
            self.model = event.get("model") or self.model
            return []
        if kind == "stream_event":
            return self._partial(event.get("event") or {})
        if kind == "assistant":
            return self._assistant(event.get("message") or {})
        if kind == "user":
            return self._tool_results(event.get("message") or {})
        if kind == "result":
            return self._result(event)
        return []

    def _partial(self, event: dict[str, Any]) -> list[HarnessEvent]:
        delta = event.get("delta") if event.get("type") == "content_block_delta" else None
        if isinstance(delta, dict) and delta.get("type") == "text_delta" and delta.get("text"):
            self._streamed = True
            return [TextDelta(str(delta["text"]))]
        return []

    def _assistant(self, message: dict[str, Any]) -> list[HarnessEvent]:
        if message.get("model") == _SYNTHETIC:
            return []  # the CLI's own words (an API error): the result line reports them
        self.model = message.get("model") or self.model
        events: list[HarnessEvent] = []
        for block in _blocks(message):
            match block.get("type"):
                case "text" if block.get("text"):
                    text = block["text"]
                    if not self._streamed:  # without partial messages, the text streams whole
                        events.append(TextDelta(text))
                    events.append(Message(_entry("assistant", "text", text)))
                case "thinking":
                    part = ReasoningPart(
                        text=block.get("thinking") or "",
                        provider="anthropic",
                        signature=block.get("signature"),
                    )
                    events.append(Message(_entry("assistant", "reasoning", part.text, part)))
                case "tool_use":
                    arguments = block.get("input") if isinstance(block.get("input"), dict) else {}
                    call = ToolCallPart(
                        id=str(block.get("id")), name=str(block.get("name")), arguments=arguments
                    )
                    content = f"{call.name} {json.dumps(arguments, ensure_ascii=False)}"
                    events.append(Message(_entry("assistant", "tool_call", content, call)))
        self._streamed = False
        return events

    def _tool_results(self, message: dict[str, Any]) -> list[HarnessEvent]:
        events: list[HarnessEvent] = []
        for block in _blocks(message):
            if block.get("type") != "tool_result":
                continue
            output = _result_text(block.get("content"))
            part = ToolResultPart(
                tool_call_id=str(block.get("tool_use_id")),
                output=output,
                is_error=bool(block.get("is_error")),
            )
            events.append(Message(_entry("tool", "tool_result", output, part)))
        return events

    def _result(self, event: dict[str, Any]) -> list[HarnessEvent]:
        self.finished = True
        events: list[HarnessEvent] = []
        cost = event.get("total_cost_usd")
        if isinstance(cost, int | float):  # not charged: the proxy priced each request
            self.cost_estimate_usd = float(cost)
        if event.get("is_error") or event.get("subtype") not in (None, "success"):
            self.failed = True
            status = event.get("api_error_status")
            detail = event.get("result") or event.get("subtype") or "unknown error"
            where = f" (API status {status})" if status else ""
            events.append(
                Error.of(
                    UpstreamError(
                        f"Claude Code ended the turn with an error{where}: {detail}",
                        context={"status": int(status)},
                        retryable=status_is_retryable(int(status)),
                    )
                    if status
                    else HarnessError(f"Claude Code ended the turn with an error: {detail}")
                )
            )
        return events


def parse_lines(lines: list[str]) -> tuple[list[HarnessEvent], ClaudeCodeParser]:
    """Parse a whole recorded output (for tests and tools)."""
    parser = ClaudeCodeParser()
    events = [event for line in lines for event in parser.feed(line)]
    return events, parser


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("text")
        )
    return ""


def _entry(role: str, kind: str, content: str, part: Any = None) -> Entry:
    return Entry(role=role, kind=kind, content=content, parts=[part] if part else [])  # type: ignore[arg-type]
