"""Requests shaped like the ones Claude Code 2.1 and Codex CLI 0.169 send (trimmed from local
runs against this mock), so the default behaviour keeps driving their tool loops."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai

from cerver.testing.mock_upstream import MockUpstream

REMINDER = "<system-reminder>\nEnd commit messages with `Co-Authored-By`.\n</system-reminder>"
CLAUDE_CODE_TOOLS = [
    {"name": "Read", "description": "Read a file.", "input_schema": {"type": "object"}},
    {
        "name": "Bash",
        "description": "Executes a given bash command.",
        "input_schema": {
            "type": "object",
            "properties": {
                "command": {"type": "string"},
                "timeout": {"type": "number"},
                "description": {"type": "string"},
            },
            "required": ["command"],
        },
    },
]
CODEX_TOOLS = [
    {
        "type": "function",
        "name": "exec_command",
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": {
                "cmd": {"type": "string"},
                "prefix_rule": {"type": "array", "items": {"type": "string"}},
                "workdir": {"type": "string"},
            },
            "required": ["cmd"],
        },
    },
    {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}},
    {"type": "web_search"},
]


def text(role: str, value: str) -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": value}]}


async def claude_code_turn(
    client: anthropic.AsyncAnthropic, messages: list[dict[str, Any]]
) -> anthropic.types.Message:
    async with client.messages.stream(
        model="claude-opus-5-5",
        max_tokens=128000,
        system=[{"type": "text", "text": "You are a Claude agent."}],
        tools=CLAUDE_CODE_TOOLS,
        messages=messages,
        thinking={"type": "adaptive"},
        extra_query={"beta": "true"},
    ) as stream:
        return await stream.get_final_message()


async def test_claude_code_tool_loop(
    upstream: MockUpstream, claude: anthropic.AsyncAnthropic
) -> None:
    messages: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": REMINDER},
                {"type": "text", "text": "please run `echo hi`"},
            ],
        },
        # A mid-conversation system message (a Claude Code beta): accepted, not a turn.
        {"role": "system", "content": [{"type": "text", "text": "# Environment\nShell: bash"}]},
    ]
    first = await claude_code_turn(claude, messages)
    (call,) = first.content
    assert (first.stop_reason, call.type, call.name, call.input) == (
        "tool_use",
        "tool_use",
        "Bash",
        {"command": "echo hi"},
    )
    messages += [
        {"role": "assistant", "content": [call.model_dump(exclude_none=True)]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": "hi", "is_error": False},
                {"type": "text", "text": REMINDER},
            ],
        },
    ]
    second = await claude_code_turn(claude, messages)
    assert second.content[0].text == "[mock upstream] The tool returned: hi"
    assert [entry["query"] for entry in upstream.requests] == ["beta=true", "beta=true"]


async def test_claude_code_summary_skips_reminders(
    upstream: MockUpstream, claude: anthropic.AsyncAnthropic
) -> None:
    messages = [
        {
            "role": "user",
            "content": [{"type": "text", "text": REMINDER}, {"type": "text", "text": "hello"}],
        }
    ]
    reply = await claude_code_turn(claude, messages)
    assert reply.content[0].text == (
        '[mock upstream] (claude-opus-5-5) You said: "hello". Earlier in this conversation I can '
        'see 0 messages; the first user message was: "hello".'
    )


async def codex_turn(client: openai.AsyncOpenAI, items: list[dict[str, Any]]) -> list[Any]:
    stream = await client.responses.create(
        model="gpt-5.5",
        input=items,
        tools=CODEX_TOOLS,
        tool_choice="auto",
        parallel_tool_calls=True,
        reasoning={"effort": "medium"},
        store=False,
        include=["reasoning.encrypted_content"],
        stream=True,
    )
    events = [event async for event in stream]
    assert events[-1].type == "response.completed"
    return [e.item for e in events if e.type == "response.output_item.done"]


async def test_codex_tool_loop(upstream: MockUpstream, oai: openai.AsyncOpenAI) -> None:
    items = [
        text("developer", "You are Codex, a coding agent."),
        text("user", "<environment_context>\n  <cwd>/work</cwd>\n</environment_context>"),
        text("user", "please run `ls -la`"),
    ]
    (call,) = await codex_turn(oai, items)
    assert (call.type, call.name, json.loads(call.arguments)) == (
        "function_call",
        "exec_command",
        {"cmd": "ls -la"},
    )
    items += [
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "Output:\nfile.txt\n"},
    ]
    (message,) = await codex_turn(oai, items)
    assert message.content[0].text == "[mock upstream] The tool returned: Output:\nfile.txt"


async def test_codex_summary_counts_context_but_quotes_the_person(
    upstream: MockUpstream, oai: openai.AsyncOpenAI
) -> None:
    items = [
        text("developer", "You are Codex."),
        text("user", "<environment_context>\n  <cwd>/work</cwd>\n</environment_context>"),
        text("user", "hello"),
    ]
    (message,) = await codex_turn(oai, items)
    assert message.content[0].text == (
        '[mock upstream] (gpt-5.5) You said: "hello". Earlier in this conversation I can see 1 '
        'messages; the first user message was: "hello".'
    )
