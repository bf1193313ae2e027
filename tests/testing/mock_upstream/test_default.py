"""The default behaviour: deterministic replies when the script is empty."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import orjson
import pytest

from cerver.testing.mock_upstream import MockState, MockUpstream, Reply
from cerver.testing.mock_upstream.anthropic import ANTHROPIC
from cerver.testing.mock_upstream.chat import CHAT
from cerver.testing.mock_upstream.default import default_reply, find_command, shell_call
from cerver.testing.mock_upstream.neutral import ToolSpec
from cerver.testing.mock_upstream.responses import RESPONSES


def anthropic_reply(messages: list[dict[str, Any]], tools: list[Any] | None = None) -> Reply:
    body = {"model": "m", "max_tokens": 5, "messages": messages, "tools": tools or []}
    return default_reply(ANTHROPIC.parse(body, MockState()))


def test_tool_result_is_echoed() -> None:
    reply = anthropic_reply(
        [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [{"type": "text", "text": "\n" + "x" * 300}],
                    },
                    # Claude Code appends reminders after tool results; they do not count.
                    {"type": "text", "text": "<system-reminder>be careful</system-reminder>"},
                ],
            },
        ]
    )
    assert reply.text == "[mock upstream] The tool returned: " + "x" * 200
    assert reply.tool_calls == []


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("please run `ls -la`", "ls -la"),
        ("first `pwd` then `ls`", "pwd"),
        ("do this\nrun: echo hi there  \nthanks", "echo hi there"),
        ("RUN: make test", "make test"),
        ("see `x` and\nrun: the line wins", "the line wins"),
        ("no command here", None),
        ("empty `` ticks", None),
        ("my run: is not at the start", None),
    ],
)
def test_find_command(text: str, command: str | None) -> None:
    assert find_command(text) == command


@pytest.mark.parametrize(
    ("tools", "expected"),
    [
        (
            [ToolSpec("Bash", {"properties": {"command": {"type": "string"}}})],
            ("Bash", {"command": "ls"}),
        ),
        (
            [ToolSpec("exec_command", {"properties": {"cmd": {"type": "string"}}})],
            ("exec_command", {"cmd": "ls"}),
        ),
        (
            [ToolSpec("shell", {"properties": {"command": {"type": "array"}}})],
            ("shell", {"command": ["bash", "-lc", "ls"]}),
        ),
        (
            [ToolSpec("local_shell", {"properties": {"cmd": {"type": ["array", "null"]}}})],
            ("local_shell", {"cmd": ["bash", "-lc", "ls"]}),
        ),
        ([ToolSpec("bash")], ("bash", {"command": "ls"})),  # Anthropic's schema-less bash tool
        ([ToolSpec("shell"), ToolSpec("bash")], ("bash", {"command": "ls"})),  # preference order
        ([ToolSpec("read_file")], None),
        ([], None),
    ],
)
def test_shell_call(tools: list[ToolSpec], expected: tuple[str, dict[str, Any]] | None) -> None:
    call = shell_call(tools, "ls")
    assert ((call.name, call.arguments) if call else None) == expected


def test_command_without_shell_tool_gets_the_summary() -> None:
    reply = anthropic_reply([{"role": "user", "content": "run `ls`"}], tools=[{"name": "Read"}])
    assert reply.tool_calls == []
    assert reply.text.startswith('[mock upstream] (m) You said: "run `ls`".')


def test_summary_counts_history_and_skips_injected_context() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "<system-reminder>\ncontext `rm -rf /`\n</system-reminder>",
                },
                {"type": "text", "text": "My name is Ada."},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "  out\n"}],
        },
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "  What is my name?  " + "?" * 300}]},
    ]
    reply = anthropic_reply(messages, tools=[{"name": "Bash"}])
    newest = ("What is my name?  " + "?" * 300)[:200]
    assert reply.text == (
        f'[mock upstream] (m) You said: "{newest}". Earlier in this conversation I can see 4 '
        'messages; the first user message was: "My name is Ada.". '
        'The last tool output I can see: "out".'
    )


def test_counts_follow_each_wire_format() -> None:
    # The same conversation in three wire formats: one text + one tool call.
    anthropic_body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "a"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "b"},
                    {"type": "tool_use", "id": "c1", "name": "f", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "r"}],
            },
            {"role": "user", "content": "d"},
        ],
    }
    responses_body = {
        "model": "m",
        "instructions": "be brief",
        "input": [
            {"role": "developer", "content": "not a turn"},
            {"role": "user", "content": "a"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "b"}],
            },
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "r"},
            {"role": "user", "content": "d"},
        ],
    }
    chat_body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "not a turn"},
            {"role": "user", "content": "a"},
            {
                "role": "assistant",
                "content": "b",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "r"},
            {"role": "user", "content": [{"type": "text", "text": "d"}]},
        ],
    }
    counts = {}
    for dialect, body in [
        (ANTHROPIC, anthropic_body),
        (RESPONSES, responses_body),
        (CHAT, chat_body),
    ]:
        text = default_reply(dialect.parse(body, MockState())).text
        assert 'You said: "d"' in text
        assert 'first user message was: "a"' in text
        assert 'The last tool output I can see: "r"' in text
        counts[dialect.api] = text.split("I can see ")[1].split(" messages")[0]
    assert counts == {"anthropic": "3", "responses": "4", "chat": "3"}


async def test_model_swapped_mid_session_sees_the_history(
    upstream: MockUpstream, claude: anthropic.AsyncAnthropic, oai: openai.AsyncOpenAI
) -> None:
    """A conversation started on an Anthropic model continues on an OpenAI one."""
    first = await claude.messages.create(
        model="claude-a", max_tokens=64, messages=[{"role": "user", "content": "The code is 4417."}]
    )
    replayed = [
        {"role": "user", "content": "The code is 4417."},
        {"role": "assistant", "content": first.content[0].text},
        {"role": "user", "content": "What was the code?"},
    ]
    second = await oai.responses.create(model="gpt-b", input=replayed, store=False)
    assert second.output_text.startswith('[mock upstream] (gpt-b) You said: "What was the code?".')
    assert 'I can see 2 messages; the first user message was: "The code is 4417."' in (
        second.output_text
    )
    assert [entry["model"] for entry in upstream.requests] == ["claude-a", "gpt-b"]


async def test_usage_is_estimated_from_characters(
    upstream: MockUpstream, oai: openai.AsyncOpenAI
) -> None:
    completion = await oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x" * 400}]
    )
    body = upstream.requests[0]["body"]
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == len(orjson.dumps(body["messages"])) // 4
    assert (
        completion.usage.completion_tokens == len(completion.choices[0].message.content or "") // 4
    )
