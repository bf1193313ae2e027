"""The tool loop with the app's own tools: a call of one ends the turn without a result."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import ClassVar

from cerver.types import Entry, ToolCallPart, Usage
from harnesses._loop import StepResult, ToolLoopHarness, text_entry, tool_call_entry
from harnesses.base import Message, TextDelta, TurnContext
from harnesses.tools import CLIENT_TOOL_KEY, ToolSpec

REFUND = ToolSpec("refund", "Refund an order.", {"type": "object", "properties": {}})


class ScriptedHarness(ToolLoopHarness):
    """A test double: each step answers the next scripted list of entries."""

    name: ClassVar[str] = "scripted"
    provider: ClassVar[str] = "scripted"
    default_model: ClassVar[str] = "scripted-1"

    def __init__(self, *steps: list[Entry]) -> None:
        self.steps = list(steps)
        self.seen: list[tuple[list[Entry], list[str]]] = []

    async def _stream_step(
        self, turn: TurnContext, conversation: Sequence[Entry], tools: Sequence[ToolSpec]
    ) -> AsyncGenerator[TextDelta | StepResult, None]:
        self.seen.append((list(conversation), [t.name for t in tools]))
        yield StepResult(self.steps.pop(0), Usage(input_tokens=1, output_tokens=1))


def _turn(**values: object) -> TurnContext:
    base: dict[str, object] = {"session_id": "s", "run_id": "r", "history": [], "input": "hi"}
    return TurnContext(model="scripted-1", **{**base, **values})  # type: ignore[arg-type]


async def test_a_client_tool_call_ends_the_turn_after_the_steps_sandbox_calls() -> None:
    sandbox_call = ToolCallPart(id="t1", name="bash", arguments={"command": "ls"})
    client_call = ToolCallPart(id="c1", name="refund", arguments={"order": "9"})
    harness = ScriptedHarness(
        [text_entry("On it."), tool_call_entry(sandbox_call), tool_call_entry(client_call)]
    )
    events = [e async for e in harness.run(_turn(client_tools=(REFUND,)))]
    entries = [e.entry for e in events if isinstance(e, Message)]
    assert [(e.kind, e.metadata.get(CLIENT_TOOL_KEY)) for e in entries] == [
        ("text", None),
        ("tool_call", None),
        ("tool_call", True),
        ("tool_result", None),  # the sandbox call's result (no sandbox here: an error result)
    ]
    assert entries[3].tool_result is not None and entries[3].tool_result.tool_call_id == "t1"
    assert len(harness.seen) == 1  # no second model call: the app answers the call
    assert harness.seen[0][1] == ["refund"]  # transcript-only: only the app's tool is offered


async def test_a_turn_continues_from_the_apps_results_without_new_input() -> None:
    call = ToolCallPart(id="c1", name="refund")
    history = [
        Entry(role="user", content="Refund 9"),
        tool_call_entry(call).model_copy(update={"metadata": {CLIENT_TOOL_KEY: True}}),
        Entry(role="tool", kind="tool_result", content="done", metadata={CLIENT_TOOL_KEY: True}),
    ]
    harness = ScriptedHarness([text_entry("Refunded.")])
    events = [e async for e in harness.run(_turn(history=history, input=""))]
    assert harness.seen[0][0] == history  # no empty user message appended
    assert [e.entry.content for e in events if isinstance(e, Message)] == ["Refunded."]
