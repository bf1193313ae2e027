"""Property tests: any transcript, written by any mix of harnesses, replays to every
harness's wire format in a form its provider accepts (strict validators in
``wire_validators.py``)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cerver.types import Entry, ReasoningPart, ToolCallPart, ToolResultPart
from harnesses.replay import to_anthropic_messages, to_responses_input
from harnesses.replay_chat import to_chat_messages
from tests.harnesses import wire_validators as v

HARNESSES = ["anthropic", "openai", "litellm", "pydantic-ai"]
PROVIDER = {"anthropic": "anthropic", "openai": "openai", "litellm": "xai", "pydantic-ai": "openai"}

ids = st.sampled_from(["toolu_1", "call_1", "call 2", "x" * 80, "fc_ä", "toolu_1"])
names = st.sampled_from(["bash", "read_file", "Bash Tool", "n" * 70, "exec.command"])
text = st.text(min_size=0, max_size=12)


@st.composite
def entries(draw: st.DrawFn, author: str) -> Entry:
    """One entry as the harness ``author`` would have written it."""
    kind = draw(
        st.sampled_from(
            ["user", "assistant", "call", "result", "reasoning", "system", "switch", "error"]
        )
    )
    provenance = {"harness": author, "provider": PROVIDER[author]}
    if kind == "user":
        return Entry(role="user", content=draw(text))
    if kind == "assistant":
        return Entry(role="assistant", content=draw(text), **provenance)
    if kind == "call":
        call = ToolCallPart(id=draw(ids), name=draw(names), arguments={"command": draw(text)})
        return Entry(role="assistant", kind="tool_call", parts=[call], **provenance)
    if kind == "result":
        result = ToolResultPart(
            tool_call_id=draw(ids), output=draw(text), is_error=draw(st.booleans())
        )
        return Entry(role="tool", kind="tool_result", parts=[result], **provenance)
    if kind == "reasoning":
        part = ReasoningPart(
            text=draw(text),
            provider=PROVIDER[author],
            signature=draw(st.none() | st.just("sig")),
            encrypted=draw(st.none() | st.just("enc")),
        )
        return Entry(role="assistant", kind="reasoning", parts=[part], **provenance)
    if kind == "system":
        return Entry(role="system", content=draw(text))
    return Entry(role="event", kind="harness_switched" if kind == "switch" else "error")


@st.composite
def transcripts(draw: st.DrawFn, source: str) -> list[Entry]:
    """Runs of entries by ``source`` and the other harnesses, switching between them."""
    out: list[Entry] = []
    for _ in range(draw(st.integers(0, 4))):
        author = draw(st.sampled_from([source, *HARNESSES]))
        out.extend(draw(st.lists(entries(author), max_size=6)))
    return out


def replay(target: str, history: list[Entry], *, tools_as_text: bool) -> None:
    """Convert ``history`` (+ a new input) for ``target`` and validate it strictly."""
    if target == "anthropic":
        out = to_anthropic_messages(history, "next", tools_as_text=tools_as_text)
        v.validate_anthropic(out.messages, tools_as_text=tools_as_text)
    elif target == "openai":
        out = to_responses_input(history, "next", tools_as_text=tools_as_text)
        v.validate_responses(out.messages, tools_as_text=tools_as_text)
    elif target == "litellm":
        messages = to_chat_messages(
            history, "next", system_prompt="sys", tools_as_text=tools_as_text
        )
        v.validate_chat(messages, tools_as_text=tools_as_text)
    else:
        pytest.importorskip("pydantic_ai")
        from harnesses.pydantic_ai import PydanticAIHarness

        harness = PydanticAIHarness.__new__(PydanticAIHarness)
        harness._messages = __import__("pydantic_ai.messages", fromlist=["x"])
        messages: list[Any] = harness._history(history, tools_as_text=tools_as_text)
        v.validate_pydantic_ai(messages, tools_as_text=tools_as_text)


@pytest.mark.parametrize(("source", "target"), list(itertools.product(HARNESSES, HARNESSES)))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_transcript_replays_to_every_harness(
    source: str, target: str, data: st.DataObject
) -> None:
    history = data.draw(transcripts(source))
    tools_as_text = data.draw(st.booleans())
    replay(target, history, tools_as_text=tools_as_text)


# The validators must refuse what the providers refuse (else the property proves nothing).

CALL = {"type": "tool_use", "id": "c1", "name": "bash", "input": {}}
RESULT = {"type": "tool_result", "tool_use_id": "c1", "content": "ok"}


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}],
        [
            {"role": "user", "content": [{"type": "text", "text": "a"}]},
            {"role": "user", "content": [{"type": "text", "text": "b"}]},
        ],
        [
            {"role": "user", "content": [{"type": "text", "text": "a"}]},
            {"role": "assistant", "content": [CALL]},
            {"role": "user", "content": [{"type": "text", "text": "no result"}]},
        ],
        [
            {"role": "user", "content": [{"type": "text", "text": "a"}]},
            {"role": "assistant", "content": [CALL]},
            {"role": "user", "content": [{"type": "text", "text": "late"}, RESULT]},
        ],
        [{"role": "user", "content": [RESULT]}],
    ],
    ids=["assistant-first", "no-alternation", "dangling-call", "result-not-first", "orphan"],
)
def test_anthropic_validator_refuses(messages: list[dict[str, Any]]) -> None:
    with pytest.raises(AssertionError):
        v.validate_anthropic(messages, tools_as_text=False)


@pytest.mark.parametrize(
    "items",
    [
        [
            {"type": "function_call_output", "call_id": "c1", "output": "x"},
            _user := {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "u"}],
            },
        ],
        [{"type": "function_call", "call_id": "c1", "name": "bash", "arguments": "{}"}, _user],
        [{"type": "reasoning", "id": "rs", "summary": [], "encrypted_content": "e"}, _user],
    ],
    ids=["orphan-output", "dangling-call", "reasoning-without-output"],
)
def test_responses_validator_refuses(items: list[dict[str, Any]]) -> None:
    with pytest.raises(AssertionError):
        v.validate_responses(items, tools_as_text=False)


CHAT_CALL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}
    ],
}


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "tool", "tool_call_id": "c1", "content": "x"}, {"role": "user", "content": "u"}],
        [CHAT_CALL, {"role": "user", "content": "u"}],
        [{"role": "user", "content": "u"}, {"role": "system", "content": "late"}],
        [{"role": "assistant", "content": ""}, {"role": "user", "content": "u"}],
    ],
    ids=["orphan-tool", "dangling-call", "late-system", "empty-assistant"],
)
def test_chat_validator_refuses(messages: list[dict[str, Any]]) -> None:
    with pytest.raises(AssertionError):
        v.validate_chat(messages, tools_as_text=False)
