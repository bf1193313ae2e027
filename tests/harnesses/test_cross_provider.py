"""A session whose turns are written by different providers: each replays the other's loop."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from cerver.testing.mock_upstream import MockUpstream
from cerver.types import Entry
from harnesses._loop import ToolLoopHarness
from harnesses.base import Error, Message, TurnContext

if TYPE_CHECKING:
    from cerver.testing.sandbox import ShellSandbox

RunTurn = Callable[[str, list[Entry], str], Any]


@pytest.fixture
def run_turn(make_harness: Callable[[str], ToolLoopHarness], sandbox: ShellSandbox) -> RunTurn:
    """Run one turn with the named harness; return the transcript after it, as the gateway
    would have persisted it (the user's input, then every message the harness yielded)."""

    async def run(name: str, history: list[Entry], text: str) -> list[Entry]:
        async with make_harness(name) as harness:
            turn = TurnContext(
                session_id="sess_x",
                run_id=f"run_{name}",
                history=history,
                input=text,
                model=harness.default_model,
                sandbox=sandbox,
            )
            events = [event async for event in harness.run(turn)]
        assert not any(isinstance(e, Error) for e in events)
        produced = [e.entry for e in events if isinstance(e, Message)]
        return [*history, Entry(role="user", content=text), *produced]

    return run


def last_body(upstream: MockUpstream) -> dict[str, Any]:
    return upstream.requests[-1]["body"]


async def test_anthropic_tool_loop_then_openai(upstream: MockUpstream, run_turn: RunTurn) -> None:
    transcript = await run_turn("anthropic", [], "please run `echo hi > f.txt && cat f.txt`")
    call = next(e.tool_call for e in transcript if e.tool_call)
    assert call is not None and call.id.startswith("toolu_")

    transcript = await run_turn("openai", transcript, "what did it print?")

    body = last_body(upstream)
    assert upstream.requests[-1]["path"] == "/v1/responses"
    items = body["input"]
    assert items[0] == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "please run `echo hi > f.txt && cat f.txt`"}],
    }
    assert items[1] == {
        "type": "function_call",
        "call_id": call.id,
        "name": "bash",
        "arguments": json.dumps({"command": "echo hi > f.txt && cat f.txt"}),
    }
    assert items[2] == {"type": "function_call_output", "call_id": call.id, "output": "hi"}
    assert items[3]["role"] == "assistant"
    assert "The tool returned: hi" in items[3]["content"][0]["text"]
    assert items[4]["content"][0]["text"] == "what did it print?"
    # The mock proves which history it received in its summary.
    assert transcript[-1].provider == "openai"
    assert "what did it print?" in transcript[-1].content


async def test_openai_tool_loop_then_anthropic(upstream: MockUpstream, run_turn: RunTurn) -> None:
    transcript = await run_turn("openai", [], "run `echo from-openai`")
    call = next(e.tool_call for e in transcript if e.tool_call)
    assert call is not None and call.id.startswith("call_")

    await run_turn("anthropic", transcript, "and now?")

    messages = last_body(upstream)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[1]["content"] == [
        {
            "type": "tool_use",
            "id": call.id,
            "name": "bash",
            "input": {"command": "echo from-openai"},
        }
    ]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": call.id, "content": "from-openai"}
    ]
    assert messages[4]["content"] == [{"type": "text", "text": "and now?"}]


async def test_three_turns_alternating_providers(upstream: MockUpstream, run_turn: RunTurn) -> None:
    transcript: list[Entry] = []
    for name, command in [("anthropic", "echo 1"), ("openai", "echo 2"), ("anthropic", "echo 3")]:
        transcript = await run_turn(name, transcript, f"run `{command}`")
    outputs = [e.content for e in transcript if e.kind == "tool_result"]
    assert outputs == ["1", "2", "3"]
    # The last request replayed all three tool loops, each call answered.
    dumped = json.dumps(last_body(upstream)["messages"])
    assert dumped.count('"tool_use"') == 3 and dumped.count('"tool_result"') == 3
