"""What a turn has started and not finished, so a stopped turn leaves a whole transcript.

A turn stopped on purpose (cancelled, or interrupted by a shutdown) may have streamed text
that no :class:`~harnesses.base.Message` completed yet, and tool calls whose results never
came. :class:`Unfinished` watches the harness's events as the gateway persists them and, when
the turn is stopped, gives the entries that close it: the partial text (status ``cancelled``
or ``incomplete``) and an error result for every call left without one (the contract of
:class:`~harnesses.base.Harness`: the transcript never holds a dangling call).
"""

from __future__ import annotations

from cerver.types import Entry, EntryStatus, ToolResultPart
from harnesses.base import HarnessEvent, Message, TextDelta

__all__ = ["Unfinished"]


class Unfinished:
    """The streamed text and open tool calls of one turn, from its events."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[str, str] = {}

    def see(self, event: HarnessEvent) -> None:
        """Account for one event the harness yielded (after it was persisted)."""
        if isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, Message):
            entry = event.entry
            if entry.role == "assistant" and entry.kind == "text":
                self._text.clear()  # the streamed text is now a complete entry
            elif entry.kind == "tool_call" and (call := entry.tool_call) is not None:
                self._calls[call.id] = call.name
            elif (result := entry.tool_result) is not None:
                self._calls.pop(result.tool_call_id, None)

    def closing_entries(self, status: EntryStatus, why: str) -> list[Entry]:
        """The entries that close the turn: partial text with ``status``, then an error result
        (saying ``why``) for each open tool call, in the order the calls were made."""
        closing = []
        if text := "".join(self._text):
            closing.append(Entry(role="assistant", kind="text", content=text, status=status))
        for call_id, name in self._calls.items():
            output = f"{name} did not complete: {why}"
            part = ToolResultPart(tool_call_id=call_id, output=output, is_error=True)
            closing.append(
                Entry(role="tool", kind="tool_result", content=output, parts=[part], status=status)
            )
        self._text.clear()
        self._calls.clear()
        return closing
