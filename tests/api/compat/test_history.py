"""Matching a re-sent conversation against the transcript (pure functions)."""

from __future__ import annotations

import pytest

from cerver.api.compat.history import ClientMessage, client_view, reconcile
from cerver.errors import Conflict, InvalidRequest
from cerver.types import Entry, ToolCallPart, ToolResultPart

CALL = ToolCallPart(id="call_1", name="lookup", arguments={"id": "42"})


def _numbered(*entries: Entry) -> list[Entry]:
    return [e.model_copy(update={"seq": i}) for i, e in enumerate(entries, start=1)]


TRANSCRIPT = _numbered(
    Entry(role="user", content="Hi", run_id="run_1"),
    Entry(role="assistant", content="Let me check.", run_id="run_1"),
    Entry(
        role="assistant",
        kind="tool_call",
        parts=[ToolCallPart(id="t1", name="bash", arguments={"command": "ls"})],
        run_id="run_1",
    ),
    Entry(
        role="tool",
        kind="tool_result",
        parts=[ToolResultPart(tool_call_id="t1", output="a.txt")],
        run_id="run_1",
    ),
    Entry(role="assistant", content="There is a.txt.", run_id="run_1"),
    Entry(role="event", kind="harness_switched", run_id="run_2"),
    Entry(role="user", content="Order 42?", run_id="run_2"),
    Entry(
        role="assistant",
        kind="tool_call",
        parts=[CALL],
        run_id="run_2",
        metadata={"client_tool": True},
    ),
)


def test_the_view_is_what_the_client_received() -> None:
    assert client_view(TRANSCRIPT) == [
        ClientMessage("user", "Hi"),
        ClientMessage("assistant", "Let me check.\n\nThere is a.txt."),
        ClientMessage("user", "Order 42?"),
        ClientMessage("assistant", "", (CALL,)),
    ]


def test_failed_turns_show_only_their_user_message() -> None:
    entries = _numbered(
        Entry(role="user", content="Hi", run_id="run_1"),
        Entry(role="assistant", content="half", status="incomplete", run_id="run_1"),
        Entry(role="event", kind="error", run_id="run_1"),
    )
    assert client_view(entries) == [ClientMessage("user", "Hi")]
    retry = reconcile(entries, [ClientMessage("user", "Hi")], source="test")
    assert (retry.input, retry.prelude, retry.next_seq) == ("", [], 4)


def test_tool_results_continue_the_turn() -> None:
    sent = [*client_view(TRANSCRIPT), ClientMessage("tool", "shipped", tool_call_id="call_1")]
    sent = [
        ClientMessage(m.role, m.text, m.tool_calls, m.tool_call_id, index=i)
        for i, m in enumerate(sent)
    ]
    plan = reconcile(TRANSCRIPT, sent, source="test")
    assert plan.input == "" and plan.next_seq == 9
    [result] = plan.prelude
    assert result.tool_result == ToolResultPart(tool_call_id="call_1", output="shipped")
    assert result.metadata == {"client_tool": True, "source": "test"}


def test_a_new_user_message_needs_the_pending_results_first() -> None:
    sent = [*client_view(TRANSCRIPT), ClientMessage("user", "Never mind", index=4)]
    with pytest.raises(InvalidRequest, match="'call_1' have no result"):
        reconcile(TRANSCRIPT, sent, source="test")


def test_a_result_for_a_call_that_is_not_pending_conflicts() -> None:
    sent = [*client_view(TRANSCRIPT), ClientMessage("tool", "x", tool_call_id="call_9", index=4)]
    with pytest.raises(Conflict, match="'call_9', which is not waiting"):
        reconcile(TRANSCRIPT, sent, source="test")


def test_a_contradiction_names_both_sides() -> None:
    sent = [ClientMessage("user", "Hi"), ClientMessage("assistant", "Other", index=1)]
    with pytest.raises(Conflict) as exc:
        reconcile(TRANSCRIPT, [*sent, ClientMessage("user", "x", index=2)], source="test")
    assert "messages[1] contradicts the session's transcript (entry seq 2)" in exc.value.message
    assert "'Other'" in exc.value.message and "'Let me check." in exc.value.message


def test_a_short_history_conflicts() -> None:
    with pytest.raises(Conflict, match="stop before the end"):
        reconcile(TRANSCRIPT, [ClientMessage("user", "Hi")], source="test")


def test_history_for_a_new_session_becomes_the_prelude() -> None:
    sent = [
        ClientMessage("user", "Hi", index=0),
        ClientMessage("assistant", "", (CALL,), index=1),
        ClientMessage("tool", "found", tool_call_id="call_1", index=2),
        ClientMessage("assistant", "Found it.", index=3),
        ClientMessage("user", "Thanks", index=4),
    ]
    plan = reconcile([], sent, source="test")
    assert plan.input == "Thanks"
    assert [(e.role, e.kind) for e in plan.prelude] == [
        ("user", "text"),
        ("assistant", "tool_call"),
        ("tool", "tool_result"),
        ("assistant", "text"),
    ]
    assert client_view(_numbered(*plan.prelude)) == [
        ClientMessage(m.role, m.text, m.tool_calls, m.tool_call_id) for m in sent[:4]
    ]


def test_nothing_new_after_the_answer_is_refused() -> None:
    entries = _numbered(Entry(role="user", content="Hi"), Entry(role="assistant", content="Yo"))
    with pytest.raises(InvalidRequest, match="Nothing to answer"):
        reconcile(entries, client_view(entries), source="test")
