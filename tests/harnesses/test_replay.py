"""The neutral transcript replayed to the Anthropic Messages API and the OpenAI Responses API."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import pytest

from cerver.types import Entry, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from harnesses.replay import (
    LEADING_USER_TEXT,
    MISSING_RESULT,
    REASONING_ITEM_ID_KEY,
    to_anthropic_messages,
    to_responses_input,
)


def user(text: str) -> Entry:
    return Entry(role="user", content=text)


def assistant(text: str, provider: str = "anthropic") -> Entry:
    return Entry(role="assistant", content=text, provider=provider)


def call(
    call_id: str, command: str = "ls", name: str = "bash", provider: str = "anthropic"
) -> Entry:
    part = ToolCallPart(id=call_id, name=name, arguments={"command": command})
    return Entry(role="assistant", kind="tool_call", parts=[part], provider=provider)


def result(call_id: str, output: str = "ok", *, is_error: bool = False) -> Entry:
    part = ToolResultPart(tool_call_id=call_id, output=output, is_error=is_error)
    return Entry(role="tool", kind="tool_result", content=output, parts=[part])


def reasoning(provider: str, **fields: Any) -> Entry:
    part = ReasoningPart(provider=provider, **fields)
    metadata = {REASONING_ITEM_ID_KEY: "rs_1"} if provider == "openai" else {}
    return Entry(role="assistant", kind="reasoning", parts=[part], metadata=metadata)


def event(kind: str = "harness_switched") -> Entry:
    return Entry(role="event", kind=kind, content="switched")  # type: ignore[arg-type]


# An Anthropic-written tool loop, and the same loop written by OpenAI.
ANTHROPIC_LOOP = [
    user("list the files"),
    reasoning("anthropic", text="I should run ls.", signature="sig-1"),
    assistant("Let me look."),
    call("toolu_01", "ls"),
    result("toolu_01", "a.txt\nb.txt"),
    assistant("There are two files."),
]
OPENAI_LOOP = [
    user("list the files"),
    reasoning("openai", text="plan", encrypted="enc-1"),
    call("call_abc", "ls", provider="openai"),
    result("call_abc", "a.txt\nb.txt"),
    assistant("There are two files.", provider="openai"),
]


def roles(messages: list[dict[str, Any]]) -> list[str]:
    return [m["role"] for m in messages]


def block_types(message: dict[str, Any]) -> list[str]:
    return [b["type"] for b in message["content"]]


def assert_anthropic_valid(messages: list[dict[str, Any]]) -> None:
    """The structural rules the Messages API enforces."""
    assert messages[0]["role"] == "user"
    for before, after in pairwise(messages):
        assert before["role"] != after["role"], "roles must alternate"
    uses = [
        (i, b["id"])
        for i, m in enumerate(messages)
        for b in m["content"]
        if b["type"] == "tool_use"
    ]
    assert len({use_id for _, use_id in uses}) == len(uses), "tool_use ids must be unique"
    for i, use_id in uses:
        following = messages[i + 1]
        results = [b for b in following["content"] if b["type"] == "tool_result"]
        assert use_id in {b["tool_use_id"] for b in results}
        kinds = block_types(following)
        assert kinds[: len(results)] == ["tool_result"] * len(results), "results lead"
    for message in messages:
        for block in message["content"]:
            if block["type"] == "text":
                assert block["text"].strip()


def assert_responses_valid(items: list[dict[str, Any]]) -> None:
    """Every function_call has exactly one later function_call_output, and vice versa."""
    calls = [i["call_id"] for i in items if i["type"] == "function_call"]
    outputs = [i["call_id"] for i in items if i["type"] == "function_call_output"]
    assert sorted(calls) == sorted(outputs)
    assert len(set(calls)) == len(calls)
    for n, item in enumerate(items):
        if item["type"] == "function_call_output":
            assert item["call_id"] in [
                i["call_id"] for i in items[:n] if i["type"] == "function_call"
            ]


# -- Anthropic ---------------------------------------------------------------------------------


def test_anthropic_simple_conversation() -> None:
    replay = to_anthropic_messages([user("hi"), assistant("hello")], "how are you?")
    assert replay.system is None
    assert replay.messages == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
        {"role": "user", "content": [{"type": "text", "text": "how are you?"}]},
    ]


def test_anthropic_own_tool_loop_keeps_thinking_and_merges_assistant_items() -> None:
    messages = to_anthropic_messages(ANTHROPIC_LOOP, "thanks").messages
    assert_anthropic_valid(messages)
    assert roles(messages) == ["user", "assistant", "user", "assistant", "user"]
    assert messages[1]["content"] == [
        {"type": "thinking", "thinking": "I should run ls.", "signature": "sig-1"},
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_01", "name": "bash", "input": {"command": "ls"}},
    ]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_01", "content": "a.txt\nb.txt"}
    ]
    assert messages[4]["content"] == [{"type": "text", "text": "thanks"}]


def test_anthropic_replays_an_openai_tool_loop() -> None:
    messages = to_anthropic_messages(OPENAI_LOOP, "thanks").messages
    assert_anthropic_valid(messages)
    # OpenAI's encrypted reasoning is dropped, not leaked as text.
    assert messages[1]["content"] == [
        {"type": "tool_use", "id": "call_abc", "name": "bash", "input": {"command": "ls"}}
    ]
    assert "enc-1" not in json.dumps(messages) and "plan" not in json.dumps(messages)
    assert messages[2]["content"][0]["tool_use_id"] == "call_abc"


def test_anthropic_redacted_thinking_and_unsigned_thinking() -> None:
    history = [
        user("q"),
        reasoning("anthropic", encrypted="opaque"),
        reasoning("anthropic", text="no signature"),
        assistant("a"),
    ]
    messages = to_anthropic_messages(history).messages
    assert messages[1]["content"] == [
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "a"},
    ]


def test_anthropic_system_entries_and_events() -> None:
    history = [
        Entry(role="system", content="Be brief."),
        event(),
        user("hi"),
        Entry(role="system", content="Answer in French."),
        event("compute_switched"),
        assistant("salut"),
        Entry(role="system", content="Be brief."),
    ]
    replay = to_anthropic_messages(history, "and?", system_prompt="You are Cerver.")
    assert replay.system == "You are Cerver.\n\nBe brief.\n\nAnswer in French."
    assert roles(replay.messages) == ["user", "assistant", "user"]


def test_anthropic_merges_consecutive_user_items_and_results_lead() -> None:
    # A turn died after its tool call; the user then wrote twice.
    history = [user("run it"), call("toolu_1"), user("hello?"), user("anyone?")]
    messages = to_anthropic_messages(history, "please").messages
    assert_anthropic_valid(messages)
    assert block_types(messages[2]) == ["tool_result", "text", "text", "text"]
    synthesized = messages[2]["content"][0]
    assert synthesized == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": MISSING_RESULT,
        "is_error": True,
    }


def test_anthropic_missing_result_at_the_end_is_synthesized() -> None:
    messages = to_anthropic_messages([user("go"), call("toolu_1"), call("toolu_2")]).messages
    assert_anthropic_valid(messages)
    assert [b["tool_use_id"] for b in messages[2]["content"]] == ["toolu_1", "toolu_2"]
    assert all(b["is_error"] for b in messages[2]["content"])


def test_anthropic_orphan_results_are_dropped() -> None:
    history = [user("hi"), result("ghost", "boo"), assistant("hello")]
    messages = to_anthropic_messages(history, "x").messages
    assert "ghost" not in json.dumps(messages)
    assert roles(messages) == ["user", "assistant", "user"]


def test_anthropic_leading_assistant_gets_a_user_placeholder() -> None:
    messages = to_anthropic_messages([assistant("I start"), user("ok")]).messages
    assert messages[0] == {"role": "user", "content": [{"type": "text", "text": LEADING_USER_TEXT}]}
    assert_anthropic_valid(messages)


def test_anthropic_error_results_and_empty_output() -> None:
    history = [user("go"), call("t1"), result("t1", "", is_error=True)]
    messages = to_anthropic_messages(history).messages
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "is_error": True}
    ]


def test_whitespace_only_text_is_skipped() -> None:
    history = [user("hi"), assistant("  \n"), user("there")]
    messages = to_anthropic_messages(history).messages
    assert messages == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "there"}],
        }
    ]


def test_text_from_parts_when_content_is_empty() -> None:
    entry = Entry(role="assistant", parts=[TextPart(text="from "), TextPart(text="parts")])
    messages = to_anthropic_messages([user("q"), entry]).messages
    assert messages[1]["content"] == [{"type": "text", "text": "from parts"}]


# -- OpenAI Responses --------------------------------------------------------------------------


def test_responses_simple_conversation() -> None:
    replay = to_responses_input(
        [Entry(role="system", content="Be brief."), user("hi"), assistant("hello")],
        "bye",
        system_prompt="Sys",
    )
    assert replay.system == "Sys\n\nBe brief."
    assert replay.messages == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "hello"}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "bye"}]},
    ]


def test_responses_own_tool_loop_keeps_encrypted_reasoning() -> None:
    items = to_responses_input(OPENAI_LOOP, "thanks").messages
    assert_responses_valid(items)
    assert [i["type"] for i in items] == [
        "message",
        "reasoning",
        "function_call",
        "function_call_output",
        "message",
        "message",
    ]
    assert items[1] == {
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "plan"}],
        "id": "rs_1",
        "encrypted_content": "enc-1",
    }
    assert items[2] == {
        "type": "function_call",
        "call_id": "call_abc",
        "name": "bash",
        "arguments": json.dumps({"command": "ls"}),
    }
    assert items[3] == {
        "type": "function_call_output",
        "call_id": "call_abc",
        "output": "a.txt\nb.txt",
    }


def test_responses_replays_an_anthropic_tool_loop() -> None:
    items = to_responses_input(ANTHROPIC_LOOP, "thanks").messages
    assert_responses_valid(items)
    assert [i["type"] for i in items] == [
        "message",
        "message",
        "function_call",
        "function_call_output",
        "message",
        "message",
    ]
    # Anthropic's signed thinking is dropped, not leaked as text.
    dumped = json.dumps(items)
    assert "sig-1" not in dumped and "I should run ls." not in dumped
    assert items[2]["call_id"] == "toolu_01" and items[3]["call_id"] == "toolu_01"


def test_responses_reasoning_without_encrypted_content_or_follower_is_dropped() -> None:
    history = [
        user("q"),
        reasoning("openai", text="no encrypted content"),
        assistant("a", provider="openai"),
        user("q2"),
        reasoning("openai", encrypted="dangling"),
    ]
    items = to_responses_input(history).messages
    assert [i["type"] for i in items] == ["message", "message", "message"]


def test_responses_synthesized_and_error_results() -> None:
    history = [user("go"), call("c1"), call("c2"), result("c2", "boom", is_error=True)]
    items = to_responses_input(history, "again").messages
    assert_responses_valid(items)
    outputs = {i["call_id"]: i["output"] for i in items if i["type"] == "function_call_output"}
    assert outputs == {"c1": f"[tool error] {MISSING_RESULT}", "c2": "[tool error] boom"}
    assert items[-1]["role"] == "user"


def test_responses_orphan_results_are_dropped() -> None:
    items = to_responses_input([user("hi"), result("ghost")]).messages
    assert [i["type"] for i in items] == ["message"]


def test_responses_invalid_json_arguments_are_replayed_verbatim() -> None:
    part = ToolCallPart(id="c1", name="bash", arguments={"_invalid_json": '{"command": '})
    history = [user("go"), Entry(role="assistant", kind="tool_call", parts=[part])]
    items = to_responses_input(history).messages
    assert items[1]["arguments"] == '{"command": '


# -- Rules shared by both ----------------------------------------------------------------------


@pytest.mark.parametrize("convert", [to_anthropic_messages, to_responses_input])
def test_reused_call_ids_are_made_unique(convert: Any) -> None:
    # A provider (or a mock) that numbers its calls from 1 in every turn.
    history = [
        user("one"),
        call("call_1", "echo 1"),
        result("call_1", "1"),
        assistant("done"),
        user("two"),
        call("call_1", "echo 2"),
        result("call_1", "2"),
        assistant("done again"),
    ]
    dumped = json.dumps(convert(history, "three").messages)
    assert '"call_1"' in dumped and '"call_1_2"' in dumped
    if convert is to_anthropic_messages:
        assert_anthropic_valid(convert(history, "three").messages)
    else:
        assert_responses_valid(convert(history, "three").messages)


@pytest.mark.parametrize("convert", [to_anthropic_messages, to_responses_input])
def test_unsafe_ids_and_names_are_sanitised(convert: Any) -> None:
    history = [
        user("go"),
        call("exec:1/a", name="mcp.server/tool"),
        result("exec:1/a", "out"),
    ]
    dumped = json.dumps(convert(history).messages)
    assert "exec_1_a" in dumped and "mcp_server_tool" in dumped
    assert "exec:1/a" not in dumped


@pytest.mark.parametrize("convert", [to_anthropic_messages, to_responses_input])
def test_tools_as_text(convert: Any) -> None:
    history = [user("go"), call("c1", "ls"), result("c1", "a.txt"), assistant("one file")]
    dumped = json.dumps(convert(history, "ok", tools_as_text=True).messages)
    for wire_only in ("tool_use", "tool_result", "function_call"):
        assert wire_only not in dumped
    assert "[tool call c1: bash" in dumped and "a.txt" in dumped


@pytest.mark.parametrize("convert", [to_anthropic_messages, to_responses_input])
def test_results_are_moved_next_to_their_calls(convert: Any) -> None:
    # A result recorded after later assistant text still answers its call.
    history = [user("go"), call("c1"), assistant("waiting"), result("c1", "late"), user("next")]
    messages = convert(history).messages
    dumped = json.dumps(messages)
    assert "late" in dumped and MISSING_RESULT not in dumped


def test_new_input_none_and_empty_history() -> None:
    assert to_anthropic_messages([]).messages == []
    assert to_responses_input([], None).messages == []


@pytest.mark.parametrize("convert", [to_anthropic_messages, to_responses_input])
def test_reasoning_that_led_to_no_output_is_dropped(convert: Any) -> None:
    # The step was cut off after its reasoning: nothing to attach it to.
    history = [
        user("q"),
        reasoning("anthropic", text="t", signature="s"),
        reasoning("openai", encrypted="e"),
        user("still there?"),
    ]
    messages = convert(history).messages
    assert {m.get("role") for m in messages} == {"user"}
    assert "reasoning" not in json.dumps(messages) and "thinking" not in json.dumps(messages)
