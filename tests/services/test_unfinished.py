"""What a stopped turn leaves: its partial text and a result for every open tool call."""

from __future__ import annotations

from cerver.services.unfinished import Unfinished
from cerver.types import Entry, ToolCallPart, ToolResultPart
from harnesses.base import Message, TextDelta


def _call(call_id: str) -> Message:
    part = ToolCallPart(id=call_id, name="bash", arguments={"command": "sleep 30"})
    return Message(Entry(role="assistant", kind="tool_call", parts=[part]))


def _result(call_id: str) -> Message:
    part = ToolResultPart(tool_call_id=call_id, output="ok")
    return Message(Entry(role="tool", kind="tool_result", content="ok", parts=[part]))


def test_partial_text_and_open_calls_are_closed_in_order() -> None:
    unfinished = Unfinished()
    for event in (TextDelta("done "), TextDelta("text")):
        unfinished.see(event)
    unfinished.see(Message(Entry(role="assistant", content="done text")))
    for event in (_call("c1"), _call("c2"), _result("c1"), TextDelta("half "), TextDelta("way")):
        unfinished.see(event)
    text, result = unfinished.closing_entries("cancelled", "the turn was cancelled first")
    assert (text.role, text.content, text.status) == ("assistant", "half way", "cancelled")
    assert result.tool_result is not None and result.tool_result.tool_call_id == "c2"
    assert result.tool_result.is_error and "cancelled first" in result.content
    assert unfinished.closing_entries("cancelled", "again") == []


def test_a_finished_turn_leaves_nothing_to_close() -> None:
    unfinished = Unfinished()
    for event in (_call("c1"), _result("c1"), TextDelta("all"), Message(Entry(role="assistant"))):
        unfinished.see(event)
    assert unfinished.closing_entries("incomplete", "interrupted") == []
